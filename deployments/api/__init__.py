"""HTTP API of deployments: device, management and internal blueprints."""

from flask import request

from common.app import ctx, services
from deployments.api import render


def base_url(req=None, config=None) -> str:
    """Scheme and host for links handed out in this request (configurable for proxies); `req`
    is any werkzeug request (the current Flask request by default)."""
    cfg = config if config is not None else ctx().config
    scheme = cfg["DEPLOYMENTS_PRESIGN_URL_SCHEME"]
    host = cfg["DEPLOYMENTS_PRESIGN_URL_HOSTNAME"]
    if not (scheme and host):
        req = req if req is not None else request
        scheme = scheme or req.scheme
        host = host or req.host
    return f"{scheme}://{host}"


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
