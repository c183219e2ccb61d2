"""HTTP API of deployments: device, management and internal blueprints."""

from flask import request

from common.app import ctx, services
from deployments.api import render


# the links' bases by what they are made of (base_url): a Host header is the client's, so few are kept
_BASES: dict[tuple, str] = {}
_BASES_KEPT = 64


def base_url(req=None, config=None) -> str:
    """Scheme and host for links handed out in this request (configurable for proxies); `req`
    is any werkzeug request (the current Flask request by default). The request's part is
    werkzeug's `scheme` and `host` (its Host header, or the server's address, validated), kept by
    the values they are computed from: werkzeug's host parsing was ~2 % of a 200 poll."""
    cfg = config if config is not None else ctx().config
    scheme = cfg["DEPLOYMENTS_PRESIGN_URL_SCHEME"]
    host = cfg["DEPLOYMENTS_PRESIGN_URL_HOSTNAME"]
    if scheme and host:
        return f"{scheme}://{host}"
    req = req if req is not None else request
    if req.trusted_hosts is not None:  # Flask's TRUSTED_HOSTS: werkzeug checks the host (and may refuse it)
        return f"{scheme or req.scheme}://{host or req.host}"
    key = (scheme, host, req.scheme, req.environ.get("HTTP_HOST"), req.server)
    base = _BASES.get(key)
    if base is None:
        base = f"{scheme or req.scheme}://{host or req.host}"
        if len(_BASES) >= _BASES_KEPT:
            _BASES.clear()
        _BASES[key] = base
    return base


def deployment(dep) -> dict:
    """A deployment as the API shows it, with the status the service tells (`scheduled` too)."""
    return render.deployment(dep, services().deployments.status_of(dep))


def devices_with_image(tenant: str, dds: list) -> list[dict]:
    """Device deployments in the DeviceWithImage shape (each assigned artifact read once)."""
    cache: dict = {}
    svc = services().deployments
    return [render.device_with_image(dd, svc.assigned_artifact(tenant, dd.artifact_id, cache)) for dd in dds]


def history(tenant: str, pairs: list) -> list[dict]:
    """(device deployment, deployment) pairs as DeviceDeploymentV1 entries."""
    cache: dict = {}
    svc = services().deployments
    return [render.history_entry(dd, dep, svc.status_of(dep), svc.assigned_artifact(tenant, dd.artifact_id, cache))
            for dd, dep in pairs]
