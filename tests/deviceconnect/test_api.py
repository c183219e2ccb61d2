"""The HTTP side of deviceconnect (Flask's test client, both backends): connection states, the
internal API, Mender client commands and file transfer refused for a device that is not connected,
the inventory mirror, decommissioning."""

from __future__ import annotations

import uuid

import pytest

from deviceconnect.model import CONNECTED, DISCONNECTED
from deviceconnect.service import INVENTORY_STATUS, OPEN_TERMINAL


BASE = "/api/management/v1/deviceconnect"
INTERNAL = "/api/internal/v1/deviceconnect"


def _inventory_attrs(operator, device_id) -> dict:
    r = operator.get(f"/api/management/v1/inventory/devices/{device_id}")
    assert r.status_code == 200, r.data
    return {(a["scope"], a["name"]): a["value"] for a in r.get_json()["attributes"]}


def test_state_of_unknown_accepted_connected_and_disconnected_devices(client, operator, device_factory, service):
    r = operator.get(f"{BASE}/devices/{uuid.uuid4()}")
    assert r.status_code == 404 and r.get_json()["error"] == "device not found"
    assert "request_id" in r.get_json()

    device = device_factory()
    r = operator.get(f"{BASE}/devices/{device.id}")
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["device_id"] == device.id and body["status"] == "unknown"
    assert body["created_ts"].endswith("Z") and body["updated_ts"].endswith("Z")

    version = service.device_connected("", device.id, "test-holder")
    body = operator.get(f"{BASE}/devices/{device.id}").get_json()
    assert body["status"] == CONNECTED
    assert _inventory_attrs(operator, device.id)[("system", INVENTORY_STATUS)] == CONNECTED

    assert service.device_disconnected("", device.id, version) is True
    assert operator.get(f"{BASE}/devices/{device.id}").get_json()["status"] == DISCONNECTED
    assert _inventory_attrs(operator, device.id)[("system", INVENTORY_STATUS)] == DISCONNECTED


def test_another_tenants_device_is_not_found(app, client, operator, service):
    from tests.helpers import Operator
    other = Operator.create(app, client, tenant="tenant-b")
    device_id = str(uuid.uuid4())
    service.device_connected("tenant-b", device_id, "h")
    assert other.get(f"{BASE}/devices/{device_id}").get_json()["status"] == CONNECTED
    assert operator.get(f"{BASE}/devices/{device_id}").status_code == 404
    assert operator.post(f"{BASE}/devices/{device_id}/check-update").status_code == 404


def test_management_needs_a_user_token(client, device_factory):
    device = device_factory()
    assert client.get(f"{BASE}/devices/{device.id}").status_code == 401
    r = client.get(f"{BASE}/devices/{device.id}", headers=device.headers)
    assert r.status_code == 401


def test_commands_and_file_transfer_need_a_connected_device(operator, device_factory):
    device = device_factory()
    for path in ("check-update", "send-inventory"):
        r = operator.post(f"{BASE}/devices/{device.id}/{path}")
        assert r.status_code == 409 and r.get_json()["error"] == "device not connected"
        assert operator.post(f"{BASE}/devices/{uuid.uuid4()}/{path}").status_code == 404
    r = operator.get(f"{BASE}/devices/{device.id}/download", query_string={"path": "/etc/hostname"})
    assert r.status_code == 409
    r = operator.put(f"{BASE}/devices/{device.id}/upload", data={"path": "/tmp/x", "file": (__import__("io").BytesIO(b"x"), "x")},
                     content_type="multipart/form-data")
    assert r.status_code == 409
    r = operator.get(f"{BASE}/devices/{device.id}/download")
    assert r.status_code == 400 and "path" in r.get_json()["error"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_command_from_a_process_that_holds_no_socket(backend, ctx, operator, device_factory, service):
    """The device's socket is held by another process: this one's hub has not started (no bus
    yet). Regression: the command read the hub's bus before starting it (500)."""
    import asyncio
    device = device_factory()
    service.device_connected("", device.id, "another-process")
    hub = service.relay
    assert not hub.started
    try:
        for path in ("check-update", "send-inventory"):
            assert operator.post(f"{BASE}/devices/{device.id}/{path}").status_code == 202
        assert hub.started
    finally:
        if hub.started:
            asyncio.run_coroutine_threadsafe(hub.stop(), hub.loop).result(10)
            hub.loop.call_soon_threadsafe(hub.loop.stop)


def test_internal_provision_delete_and_tenant(client, operator, service):
    device_id = str(uuid.uuid4())
    r = client.post(f"{INTERNAL}/tenants/t1/devices", json={"device_id": device_id})
    assert r.status_code == 201
    assert service.get_device("t1", device_id).status == "unknown"
    assert client.post(f"{INTERNAL}/tenants/t1/devices", json={}).status_code == 400
    assert client.post(f"{INTERNAL}/tenants/t1/devices", json={"device_id": 5}).status_code == 400
    assert client.post(f"{INTERNAL}/tenants/t1/devices/{device_id}/check-update").status_code == 409
    r = client.delete(f"{INTERNAL}/tenants/t1/devices/{device_id}")
    assert r.status_code == 202
    assert service._store.get_device("t1", device_id) is None
    service.device_connected("t2", device_id, "h")
    assert client.delete(f"{INTERNAL}/tenants/t2").status_code == 204
    assert service._store.get_device("t2", device_id) is None
    assert client.get(f"{INTERNAL}/health").status_code == 204
    assert client.get(f"{INTERNAL}/alive").status_code == 204


def test_decommissioning_forgets_the_device_and_a_late_disconnect_does_not_recreate_it(operator, device_factory,
                                                                                       service):
    device = device_factory()
    version = service.device_connected("", device.id, "h")
    r = operator.delete(f"/api/management/v2/devauth/devices/{device.id}")
    assert r.status_code == 204, r.data
    assert operator.get(f"{BASE}/devices/{device.id}").status_code == 404
    service.device_disconnected("", device.id, version)  # the socket closing afterwards
    assert operator.get(f"/api/management/v1/inventory/devices/{device.id}").status_code == 404


def test_dead_holders_are_released(operator, device_factory, service, ctx):
    device = device_factory()
    service.device_connected("", device.id, "dead-process")
    service._store.beat("dead-process", 1.0)  # its heartbeat ran out long ago
    assert service.release_dead_holders() == 1
    assert operator.get(f"{BASE}/devices/{device.id}").get_json()["status"] == DISCONNECTED
    assert _inventory_attrs(operator, device.id)[("system", INVENTORY_STATUS)] == DISCONNECTED
    assert service.release_dead_holders() == 0


def test_hooks_can_refuse_a_command(operator, device_factory, service):
    from common.errors import Forbidden
    device = device_factory()
    service.device_connected("", device.id, "h")
    seen = []

    def hook(action, tenant, user_id, device_id, details):
        seen.append((action, device_id))
        raise Forbidden("remote terminal permission required")

    service.hooks.register(hook)
    r = operator.post(f"{BASE}/devices/{device.id}/check-update")
    assert r.status_code == 403 and r.get_json()["error"] == "remote terminal permission required"
    assert seen == [("check_update", device.id)]
    assert OPEN_TERMINAL == "open_terminal"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_session_records(service, backend):
    device_id = str(uuid.uuid4())
    from common.errors import NotFound
    with pytest.raises(NotFound):
        service.open_session("", "user", device_id)
    service.device_connected("", device_id, "h")
    session = service.open_session("", "user", device_id)
    assert service.get_session("", session.id).user_id == "user"
    service.end_session(session, ["terminal"], 10)
    assert service.get_session("", session.id).types == ["terminal"]
    with pytest.raises(NotFound):
        service.get_session("other", session.id)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_openapi_lists_the_websocket_endpoints(client, backend):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/devices/v1/deviceconnect/connect", "/api/management/v1/deviceconnect/devices/{id}/connect",
                 "/api/management/v1/deviceconnect/sessions/{session_id}/playback"):
        assert "101" in paths[path]["get"]["responses"], path


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_plain_request_to_a_websocket_route_is_400_not_404(client, operator, device_factory, backend):
    """The websocket routes exist for a request that is not a handshake: Mender's specs answer
    `400` (bad request) to a `GET …/connect` without `Connection: Upgrade`/`Upgrade: websocket`,
    with the `{"error", "request_id"}` body; it was the `404` of a path that does not exist. Other
    paths and methods keep their 404."""
    device = device_factory()
    paths = ("/api/devices/v1/deviceconnect/connect", f"{BASE}/devices/{device.id}/connect",
             f"{BASE}/sessions/{uuid.uuid4()}/playback")
    for path in paths:
        for headers in ({}, device.headers, operator.headers):
            r = client.get(path, headers={**headers, "X-MEN-RequestID": "rid-ws"})
            assert r.status_code == 400, (path, r.data)
            body = r.get_json()
            assert body["request_id"] == "rid-ws" and "websocket" in body["error"]
        assert client.head(path).status_code == 400
    assert client.get(f"{BASE}/devices/{device.id}/connectx").status_code == 404
    assert client.get("/api/devices/v1/deviceconnect/nowhere").status_code == 404
    assert client.post("/api/devices/v1/deviceconnect/connect").status_code == 404
