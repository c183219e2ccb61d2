"""deviceconfig's HTTP API (Flask's test client, both backends): management get/set, the device's
get/report, the internal API, limits and bad input."""

from __future__ import annotations

import json
import uuid

from deviceconfig.model import MAX_ATTRIBUTES

BASE = "/api/management/v1/deviceconfig/configurations/device"
DEVICE = "/api/devices/v1/deviceconfig/configuration"
INTERNAL = "/api/internal/v1/deviceconfig"


def _error(r, status: int, text: str = "") -> dict:
    assert r.status_code == status, r.data
    body = r.get_json()
    assert set(body) == {"error", "request_id"} and text in body["error"], body
    assert r.headers["X-MEN-RequestID"] == body["request_id"]
    return body


def test_desired_and_reported_configuration(operator, device_factory):
    _error(operator.get(f"{BASE}/{uuid.uuid4()}"), 404, "device not found")
    device = device_factory()
    # accepting the device gave it an empty record (devauth provisions it, as Mender's workflow)
    body = operator.get(f"{BASE}/{device.id}").get_json()
    assert (body["id"], body["configured"], body["reported"]) == (device.id, {}, {})
    assert "reported_ts" not in body and "deployment_id" not in body
    assert device.request("GET", DEVICE).get_json() == {}

    r = operator.put(f"{BASE}/{device.id}", json={"timezone": "Europe/Oslo", "hostname": "pump-7"})
    assert r.status_code == 204 and r.data == b"" and "Content-Type" not in r.headers
    body = operator.get(f"{BASE}/{device.id}").get_json()
    assert body["id"] == device.id and body["configured"] == {"hostname": "pump-7", "timezone": "Europe/Oslo"}
    assert body["reported"] == {} and "reported_ts" not in body and "deployment_id" not in body
    assert body["updated_ts"].endswith("Z")

    # the device sees what it should have, and reports what it applied
    r = device.request("GET", DEVICE)
    assert r.status_code == 200 and r.get_json() == {"hostname": "pump-7", "timezone": "Europe/Oslo"}
    assert device.request("PUT", DEVICE, json={"timezone": "Europe/Oslo"}).status_code == 204
    body = operator.get(f"{BASE}/{device.id}").get_json()
    assert body["reported"] == {"timezone": "Europe/Oslo"} and body["reported_ts"].endswith("Z")
    assert body["configured"] == {"hostname": "pump-7", "timezone": "Europe/Oslo"}

    # a new desired configuration replaces the old one; an empty one clears it
    assert operator.put(f"{BASE}/{device.id}", json={}).status_code == 204
    assert operator.get(f"{BASE}/{device.id}").get_json()["configured"] == {}
    assert device.request("PUT", DEVICE, json={}).status_code == 204
    assert operator.get(f"{BASE}/{device.id}").get_json()["reported"] == {}


def test_setting_needs_a_device_of_the_organization(app, client, operator, device_factory):
    from tests.helpers import Operator
    _error(operator.put(f"{BASE}/{uuid.uuid4()}", json={"a": "1"}), 404, "not found")
    device = device_factory()
    assert operator.put(f"{BASE}/{device.id}", json={"a": "1"}).status_code == 204
    other = Operator.create(app, client, tenant="tenant-b")
    _error(other.get(f"{BASE}/{device.id}"), 404)
    _error(other.put(f"{BASE}/{device.id}", json={"a": "2"}), 404)
    _error(other.post(f"{BASE}/{device.id}/deploy", json={}), 404)
    assert operator.get(f"{BASE}/{device.id}").get_json()["configured"] == {"a": "1"}


def test_decommissioning_forgets_the_configuration(operator, device_factory):
    device = device_factory()
    assert operator.put(f"{BASE}/{device.id}", json={"a": "1"}).status_code == 204
    assert operator.delete(f"/api/management/v2/devauth/devices/{device.id}").status_code == 204
    _error(operator.get(f"{BASE}/{device.id}"), 404)
    _error(operator.put(f"{BASE}/{device.id}", json={"a": "1"}), 404)  # and it cannot come back


def test_a_pending_device_can_be_configured_before_it_is_accepted(client, operator):
    from tests.helpers import Device
    device = Device(client)
    assert device.auth().status_code == 401
    record = operator.find_device(device)
    assert operator.put(f"{BASE}/{record['id']}", json={"a": "1"}).status_code == 204
    operator.accept(device)
    assert device.request("GET", DEVICE).get_json() == {"a": "1"}


BAD = [
    (b"[]", 400, "must be a JSON object"),
    (b'"a"', 400, "must be a JSON object"),
    (b'{"a": 1}', 400, "a: the value must be a string"),
    (b'{"a": null}', 400, "a: the value must be a string"),
    (b'{"": "x"}', 400, "a key must not be empty"),
    (b'{"a": "x\\u0000"}', 400, "control character"),
    (b'{"a": ', 400, "malformed JSON"),
    (b"", 400, "missing JSON body"),
    (json.dumps({str(i): "v" for i in range(MAX_ATTRIBUTES + 1)}).encode(), 400, "maximum is 100"),
    (json.dumps({"k": "v" * 4097}).encode(), 400, "longer than 4096"),
]


def test_bad_configurations(operator, device_factory):
    device = device_factory()
    for body, status, text in BAD:
        _error(operator.put(f"{BASE}/{device.id}", data=body, content_type="application/json"), status, text)
        _error(device.request("PUT", DEVICE, data=body, content_type="application/json"), status, text)
    body = operator.get(f"{BASE}/{device.id}").get_json()  # nothing was stored
    assert (body["configured"], body["reported"]) == ({}, {}) and "reported_ts" not in body


def test_not_json_and_too_large(operator, device_factory):
    device = device_factory()
    _error(operator.put(f"{BASE}/{device.id}", data=b'{"a":"1"}', content_type="text/plain"), 415)
    _error(device.request("PUT", DEVICE, data=b'{"a":"1"}', content_type="text/plain"), 415)
    huge = json.dumps({"k": "v" * (2 * 1024 * 1024)})
    _error(operator.put(f"{BASE}/{device.id}", data=huge, content_type="application/json"), 413)
    _error(device.request("PUT", DEVICE, data=huge, content_type="application/json"), 413)
    _error(operator.put(f"{BASE}/{'x' * 129}", json={"a": "1"}), 400, "invalid device id")


def test_each_api_needs_its_own_token(client, operator, device_factory):
    device = device_factory()
    assert client.get(f"{BASE}/{device.id}").status_code == 401
    assert client.get(DEVICE).status_code == 401
    assert client.put(DEVICE, json={"a": "1"}).status_code == 401
    assert client.get(f"{BASE}/{device.id}", headers=device.headers).status_code == 401
    assert client.put(DEVICE, json={"a": "1"}, headers=operator.headers).status_code == 401


def test_internal_api(client, operator, device_factory):
    assert client.get(f"{INTERNAL}/alive").status_code == 204
    assert client.get(f"{INTERNAL}/health").status_code == 204
    assert client.post(f"{INTERNAL}/tenants", json={"tenant_id": "t1"}).status_code == 201
    _error(client.post(f"{INTERNAL}/tenants", json={}), 400, "tenant_id")
    _error(client.post(f"{INTERNAL}/tenants", json={"tenant_id": "t1", "x": 1}), 400, "x")

    device = device_factory()
    assert operator.put(f"{BASE}/{device.id}", json={"a": "1"}).status_code == 204
    for _ in range(2):  # idempotent: an existing record is kept
        assert client.post(f"{INTERNAL}/tenants/default/devices", json={"device_id": device.id}).status_code == 201
    assert operator.get(f"{BASE}/{device.id}").get_json()["configured"] == {"a": "1"}
    assert client.post(f"{INTERNAL}/tenants/default/devices", json={"device_id": "new-one"}).status_code == 201
    body = operator.get(f"{BASE}/new-one").get_json()
    assert (body["configured"], body["reported"]) == ({}, {})
    _error(client.post(f"{INTERNAL}/tenants/default/devices", json={}), 400, "device_id")

    for _ in range(2):
        r = client.delete(f"{INTERNAL}/tenants/default/devices/{device.id}")
        assert r.status_code == 204 and r.data == b""
    _error(operator.get(f"{BASE}/{device.id}"), 404)

    client.post(f"{INTERNAL}/tenants/t1/devices", json={"device_id": "d1"})
    assert client.delete(f"{INTERNAL}/tenants/t1").status_code == 204
    with client.application.app_context():
        assert client.application.extensions["mender"].services.deviceconfig._store.get_device("t1", "d1") is None
