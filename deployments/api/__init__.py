"""HTTP API of deployments: device, management and internal blueprints."""

from flask import request

from common.app import ctx, services
from common.clock import rfc3339
from deployments.service import render_deployment


def base_url() -> str:
    """Scheme and host for links handed out in this request (configurable for proxies)."""
    cfg = ctx().config
    scheme = cfg["DEPLOYMENTS_PRESIGN_URL_SCHEME"] or request.scheme
    host = cfg["DEPLOYMENTS_PRESIGN_URL_HOSTNAME"] or request.host
    return f"{scheme}://{host}"


def render(dep: dict) -> dict:
    """A deployment as the API shows it."""
    return render_deployment(dep, services().deployments.status_of(dep))


def device_with_image(dd: dict, cache: dict) -> dict:
    """A device deployment in the DeviceWithImage shape (`cache` memoizes artifact lookups)."""
    out = {"id": dd["device_id"], "status": dd["status"], "created": rfc3339(dd["created"]),
           "device_type": dd.get("device_type") or "", "log": bool(dd.get("log")), "state": dd["status"]}
    for key in ("started", "finished", "deleted"):
        if dd.get(key):
            out[key] = rfc3339(dd[key])
    if dd.get("substate"):
        out["substate"] = dd["substate"]
    image = services().deployments.artifact_image(dd["tenant_id"], dd.get("artifact_id"), cache)
    if image is not None:
        out["image"] = image
    return out


def history_entry(dd: dict, dep: dict, cache: dict) -> dict:
    """One entry of a device's deployment history (DeviceDeploymentV1)."""
    return {"id": dd["id"], "deployment": render(dep), "device": device_with_image(dd, cache)}
