"""HTTP API of deployments: device, management and internal blueprints."""

from flask import request

from common.app import ctx, services
from deployments.api import render


def base_url() -> str:
    """Scheme and host for links handed out in this request (configurable for proxies)."""
    cfg = ctx().config
    scheme = cfg["DEPLOYMENTS_PRESIGN_URL_SCHEME"] or request.scheme
    host = cfg["DEPLOYMENTS_PRESIGN_URL_HOSTNAME"] or request.host
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
