"""An organization with one of everything, made over HTTP as its operators and devices would:
an accepted device with inventory, tags and a group, a pending device, a saved filter, an
artifact (bytes in the storage) in a tagged release, a deployment the device has started and
logged, a second user, a personal access token, settings, a pending direct upload.

And snapshots of every stored row of an organization, on either database: what the isolation
and deletion tests compare."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field

from tests.artifacts.tools import craft
from tests.helpers import Device, Operator

DEVAUTH = "/api/management/v2/devauth"
INVENTORY_V1 = "/api/management/v1/inventory"
INVENTORY_V2 = "/api/management/v2/inventory"
DEPLOYMENTS_V1 = "/api/management/v1/deployments"
DEPLOYMENTS_V2 = "/api/management/v2/deployments"
USERADM = "/api/management/v1/useradm"
DEVICE_DEPLOYMENTS = "/api/devices/v1/deployments/device/deployments"


@dataclass
class OrgData:
    """The ids of an organization's records, and what identifies its data in a response."""

    tenant: str
    admin: Operator
    device: Device
    pending: Device
    pending_id: str
    auth_set_id: str
    pending_auth_set_id: str
    group: str
    filter_id: str
    artifact_id: str
    artifact_name: str
    release: str
    deployment_id: str
    user_id: str
    pat_id: str
    pat: str
    upload_id: str
    device_type: str
    role: str = ""
    session_id: str = ""
    markers: list[str] = field(default_factory=list)  # strings that only this organization's data contains


def _ok(r, *statuses):
    assert r.status_code in (statuses or (200, 201, 202, 204)), (r.status_code, r.get_data(as_text=True)[:500])
    return r


def populate(client, admin: Operator, tenant_token: str, tenant: str, label: str, app=None) -> OrgData:
    """One of everything in the organization of `admin` (label: a short unique word); with `app`,
    also a remote terminal session with its recording (deviceconnect records them only from
    websockets, so they are made through its service)."""
    device_type = f"dt-{label}"
    device = Device(client, tenant_token=tenant_token, device_type=device_type)
    device.auth()
    admin.accept(device)
    record = admin.find_device(device)
    pending = Device(client, tenant_token=tenant_token)
    pending.auth()
    pending_record = admin.find_device(pending)
    _ok(device.request("PATCH", "/api/devices/v1/inventory/device/attributes",
                       json=[{"name": "device_type", "value": device_type}, {"name": "os", "value": f"os-{label}"}]))
    group = f"group-{label}"
    _ok(admin.put(f"{INVENTORY_V1}/devices/{device.id}/group", json={"group": group}))
    _ok(admin.put(f"{INVENTORY_V1}/devices/{device.id}/tags", json=[{"name": "tag", "value": f"tag-{label}"}]))
    saved = _ok(admin.post(f"{INVENTORY_V2}/filters", json={
        "name": f"filter-{label}", "terms": [{"scope": "inventory", "attribute": "os", "type": "$eq",
                                              "value": f"os-{label}"}]})).get_json()

    artifact_name = f"release-{label}"
    data = craft(artifact_name, device_types=(device_type,))
    r = _ok(admin.post(f"{DEPLOYMENTS_V1}/artifacts", content_type="multipart/form-data",
                       data={"size": str(len(data)), "description": f"artifact-{label}",
                             "artifact": (io.BytesIO(data), "a.mender")}), 201)
    artifact_id = r.headers["Location"].rsplit("/", 1)[1]
    _ok(admin.put(f"{DEPLOYMENTS_V2}/deployments/releases/{artifact_name}/tags", json=[f"rtag-{label}"]))
    _ok(admin.patch(f"{DEPLOYMENTS_V2}/deployments/releases/{artifact_name}", json={"notes": f"notes-{label}"}))

    r = _ok(admin.post(f"{DEPLOYMENTS_V1}/deployments", json={
        "name": f"deployment-{label}", "artifact_name": artifact_name, "devices": [device.id]}), 201)
    deployment_id = r.headers["Location"].rsplit("/", 1)[1]
    r = _ok(device.request("GET", f"{DEVICE_DEPLOYMENTS}/next",
                           query_string={"artifact_name": "factory", "device_type": device_type}), 200)
    assert r.get_json()["id"] == deployment_id
    _ok(device.request("PUT", f"{DEVICE_DEPLOYMENTS}/{deployment_id}/status", json={"status": "downloading"}))
    _ok(device.request("PUT", f"{DEVICE_DEPLOYMENTS}/{deployment_id}/log", json={"messages": [
        {"timestamp": "2026-12-01T10:00:00Z", "level": "info", "message": f"log-{label}"}]}))
    _ok(admin.put(f"/api/management/v1/deviceconfig/configurations/device/{device.id}",
                  json={"setting": f"config-{label}"}), 204)
    # the deployment's history (rollout events): paused and resumed by its operator
    _ok(admin.post(f"{DEPLOYMENTS_V2}/deployments/{deployment_id}/pause"), 204)
    _ok(admin.post(f"{DEPLOYMENTS_V2}/deployments/{deployment_id}/resume"), 204)

    email = f"second-{label}-{uuid.uuid4().hex[:6]}@example.com"
    r = _ok(admin.post(f"{USERADM}/users", json={"email": email, "password": "second-user-password"}), 201)
    user_id = r.headers["Location"].rsplit("/", 1)[1]
    pat = _ok(admin.post(f"{USERADM}/settings/tokens", json={"name": f"pat-{label}"}), 200).get_data(as_text=True)
    pat_id = admin.get(f"{USERADM}/settings/tokens").get_json()[0]["id"]
    _ok(admin.post(f"{USERADM}/settings", json={"setting": f"settings-{label}"}))
    _ok(admin.post(f"{USERADM}/settings/me", json={"mine": f"mysettings-{label}"}))
    role = f"role-{label}"
    _ok(admin.post(f"{USERADM}/roles", json={"name": role, "description": f"roledesc-{label}",
                                               "permission_sets_with_scope": [{"name": "ReadReleases"}]}), 201)
    upload = _ok(admin.post(f"{DEPLOYMENTS_V1}/artifacts/directupload"), 200).get_json()
    session_id = _remote_session(app, tenant, admin, device, label) if app is not None else ""
    return OrgData(tenant=tenant, admin=admin, device=device, pending=pending, pending_id=pending_record["id"],
                   auth_set_id=record["auth_sets"][0]["id"],
                   pending_auth_set_id=pending_record["auth_sets"][0]["id"], group=group, filter_id=saved["id"],
                   artifact_id=artifact_id, artifact_name=artifact_name, release=artifact_name,
                   deployment_id=deployment_id, user_id=user_id, pat_id=pat_id, pat=pat, upload_id=upload["id"],
                   device_type=device_type, session_id=session_id, role=role,
                   markers=[*([session_id, f"recorded-{label}"] if session_id else []), device.id, pending_record["id"],
                            group, saved["id"], artifact_id, artifact_name, deployment_id, user_id, pat_id, email,
                            label and f"os-{label}", f"tag-{label}", f"settings-{label}", f"log-{label}", f"roledesc-{label}",
                            f"config-{label}", device.identity["sn"], upload["id"]])


def _remote_session(app, tenant: str, admin: Operator, device: Device, label: str) -> str:
    """A finished, recorded terminal session with the device (which is left disconnected)."""
    services = app.extensions["mender"].services
    if not hasattr(services, "deviceconnect"):
        return ""
    user_id = _ok(admin.get(f"{USERADM}/users/me")).get_json()["id"]
    dc = services.deviceconnect
    with app.app_context():
        version = dc.device_connected(tenant, device.id, "populate")
        session = dc.open_session(tenant, user_id, device.id, "populate")
        chunk = f"recorded-{label}".encode()
        dc.append_recording(session, 0, chunk)
        dc.end_session(session, ["shell"], len(chunk))
        dc.device_disconnected(tenant, device.id, version)
    return session.id


# --------------------------------------------------------------------------- snapshots

def tenant_tables(app) -> list[str]:
    """Every table (collection) that holds organizations' records (those with `tenant_id`)."""
    db = app.extensions["mender"].db
    if db.kind == "sqlite":
        conn = db.conn
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return [n for n in names if any(c[1] == "tenant_id" for c in conn.execute(f"PRAGMA table_info({n})"))]
    return sorted(n for n in db.db.list_collection_names() if db.db[n].find_one({"tenant_id": {"$exists": True}}))


def snapshot(app, tenant: str) -> dict[str, list]:
    """Every stored row (document) of one organization, by table, in a stable order."""
    db = app.extensions["mender"].db
    out: dict[str, list] = {}
    for name in tenant_tables(app):
        if db.kind == "sqlite":
            rows = [tuple(r) for r in db.conn.execute(f"SELECT * FROM {name} WHERE tenant_id = ?", (tenant,))]
        else:
            rows = list(db.db[name].find({"tenant_id": tenant}))
        if rows:
            out[name] = sorted(rows, key=repr)
    return out


def stored_objects(app, prefix: str = "") -> list[str]:
    """Keys of the artifact storage's objects under `prefix` (temp files excluded)."""
    from tests.artifacts.helpers import stored_objects as every_object
    return [k for k in every_object(app) if k.removeprefix("multipart:").startswith(prefix) and ".tmp" not in k]
