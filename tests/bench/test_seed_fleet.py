"""bench/seed_fleet.py: the seeded fleet is what the server serves (both backends)."""

from __future__ import annotations

from bench.seed_fleet import seed, seeded_device_id, seeded_identity, seeded_key
from tests.helpers import Device, Operator


def test_seeded_devices_are_accepted_searchable_and_sign_in(app):
    ctx = app.extensions["mender"]
    result = seed(ctx, 30, batch_size=20)
    assert result["created"] == 30
    assert seed(ctx, 35, batch_size=20)["created"] == 5  # repeatable: only the further five are new
    client = app.test_client()
    operator = Operator.create(app, client)
    r = operator.request("GET", "/api/management/v2/devauth/devices?status=accepted&per_page=100")
    assert r.status_code == 200 and len(r.get_json()) == 35
    device = seeded_device_id(7)
    r = operator.request("GET", f"/api/management/v1/inventory/devices/{device}")
    assert r.status_code == 200
    attrs = r.get_json()["attributes"]
    assert len(attrs) == 30
    assert {(a["scope"], a["name"]) for a in attrs} >= {("identity", "mac"), ("system", "group"), ("tags", "site")}
    r = operator.request("POST", "/api/management/v2/inventory/filters/search", json={
        "filters": [{"scope": "system", "attribute": "group", "type": "$eq", "value": "group-7"}]})
    assert r.status_code == 200 and device in [d["id"] for d in r.get_json()]
    # the simulator signs as the seeded device: the real auth path gives it a token
    sim = Device(client, identity=seeded_identity(7), key=seeded_key(7))
    assert sim.auth().status_code == 200 and sim.id == device
    r = sim.request("POST", "/api/devices/v2/deployments/device/deployments/next",
                    json={"device_provides": {"device_type": "board-1", "artifact_name": "release-1"}})
    assert r.status_code == 204
