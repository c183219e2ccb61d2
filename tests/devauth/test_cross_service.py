"""Effects of admission in the other services, observed through their own management APIs."""

from __future__ import annotations

from tests.helpers import Device

INVENTORY = "/api/management/v1/inventory/devices"
BASE = "/api/management/v2/devauth"


def attributes(operator, device_id) -> dict:
    r = operator.get(f"{INVENTORY}/{device_id}")
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.get_json()
    return {(a["scope"], a["name"]): a["value"] for a in r.get_json()["attributes"]}


def test_inventory_follows_identity_and_status(client, operator):
    device = Device(client)
    assert device.auth().status_code == 401
    record = operator.find_device(device)
    attrs = attributes(operator, record["id"])
    assert attrs[("identity", "mac")] == device.identity["mac"]
    assert attrs[("identity", "sn")] == device.identity["sn"]
    assert attrs[("identity", "status")] == attrs[("system", "status")] == "pending"

    operator.accept(device)
    assert attributes(operator, device.id)[("system", "status")] == "accepted"
    aid = record["auth_sets"][0]["id"]
    operator.put(f"{BASE}/devices/{device.id}/auth/{aid}/status", json={"status": "rejected"})
    assert attributes(operator, device.id)[("system", "status")] == "rejected"

    assert operator.delete(f"{BASE}/devices/{device.id}").status_code == 204
    assert operator.get(f"{INVENTORY}/{device.id}").status_code == 404


def test_preauthorized_device_appears_in_inventory(client, operator):
    device = Device(client)
    r = operator.post(f"{BASE}/devices", json={"identity_data": device.identity, "pubkey": device.pubkey})
    device_id = r.headers["Location"].rsplit("/", 1)[1]
    attrs = attributes(operator, device_id)
    assert attrs[("system", "status")] == "preauthorized"
    assert attrs[("identity", "sn")] == device.identity["sn"]
    aid = operator.get(f"{BASE}/devices/{device_id}").get_json()["auth_sets"][0]["id"]
    operator.delete(f"{BASE}/devices/{device_id}/auth/{aid}")
    assert operator.get(f"{INVENTORY}/{device_id}").status_code == 404


def test_decommission_finishes_the_devices_deployments(app, client, operator, device_factory):
    from tests.artifacts.tools import craft
    device, other = device_factory(), device_factory()
    svc = app.extensions["mender"].services
    svc.artifacts.upload("", iter([craft("release-1", device_types=("test-device",))]))
    dep = svc.deployments.create_deployment("", name="d1", artifact_name="release-1",
                                            devices=[device.id, other.id])
    assert operator.delete(f"{BASE}/devices/{device.id}").status_code == 204
    dds, _ = svc.deployments.device_deployments("", dep.id, None)
    statuses = {dd.device_id: dd.status for dd in dds}
    assert statuses[device.id] == "decommissioned"
    assert statuses.get(other.id, "pending") == "pending"
