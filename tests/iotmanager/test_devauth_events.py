"""devauth announces admission changes through iotmanager: the payloads Mender's iot-manager sends
(device-provisioned with the accepted auth set, device-status-changed with id and status,
device-decommissioned with the id), in the order they happened, on every backend."""

from __future__ import annotations

from tests.helpers import Device, Operator
from tests.iotmanager.conftest import HOOKS, add_webhook, drain, service

DEVICES = "/api/management/v2/devauth/devices"


def _received(app, receiver, count):
    drain(app)
    return [(r.json["type"], r.json["data"]) for r in receiver.wait_for(count)]


def _auth_set(operator, device_id):
    (auth_set,) = operator.get(f"{DEVICES}/{device_id}").get_json()["auth_sets"]
    return auth_set


def test_admission_lifecycle_events(hook_app, hook_client, hook_operator, receiver):
    add_webhook(hook_operator, receiver.url)
    device = Device(hook_client)
    assert device.auth().status_code == 401
    record = hook_operator.find_device(device)
    device_id = record["id"]
    assert _received(hook_app, receiver, 1) == [("device-status-changed", {"id": device_id, "status": "pending"})]

    assert device.auth().status_code == 401  # asking again changes nothing: no event
    auth_set = _auth_set(hook_operator, device_id)
    status_url = f"{DEVICES}/{device_id}/auth/{auth_set['id']}/status"
    assert hook_operator.put(status_url, json={"status": "accepted"}).status_code == 204
    events = _received(hook_app, receiver, 3)
    assert len(events) == 3
    kind, data = events[1]
    assert kind == "device-provisioned"
    accepted = _auth_set(hook_operator, device_id)
    assert data == {"id": device_id, "status": "accepted", "created_ts": record["created_ts"],
                    "auth_sets": [accepted]}
    assert accepted["status"] == "accepted" and accepted["identity_data"] == device.identity
    assert accepted["pubkey"].strip() == device.pubkey.strip() and accepted["device_id"] == device_id
    assert events[2] == ("device-status-changed", {"id": device_id, "status": "accepted"})

    assert hook_operator.put(status_url, json={"status": "rejected"}).status_code == 204
    assert hook_operator.put(status_url, json={"status": "accepted"}).status_code == 204  # provisioned once only
    assert hook_operator.delete(f"{DEVICES}/{device_id}").status_code == 204
    assert _received(hook_app, receiver, 6)[3:] == [
        ("device-status-changed", {"id": device_id, "status": "rejected"}),
        ("device-status-changed", {"id": device_id, "status": "accepted"}),
        ("device-decommissioned", {"id": device_id}),
    ]
    assert len(receiver.requests) == 6
    # the events log lists them newest first, all delivered
    events = hook_operator.get(f"{HOOKS}/events").get_json()
    assert [e["type"] for e in events] == ["device-decommissioned", "device-status-changed", "device-status-changed",
                                           "device-status-changed", "device-provisioned", "device-status-changed"]
    assert all(e["delivery_statuses"][0]["state"] == "delivered" for e in events)


def test_preauthorized_devices(hook_app, hook_client, hook_operator, receiver):
    add_webhook(hook_operator, receiver.url)
    device = Device(hook_client)
    r = hook_operator.post(f"{DEVICES}", json={"identity_data": device.identity, "pubkey": device.pubkey})
    assert r.status_code == 201
    device_id = r.headers["Location"].rsplit("/", 1)[1]
    assert device.auth().status_code == 200  # the preauthorized key: accepted at once
    events = _received(hook_app, receiver, 3)
    assert [e[0] for e in events] == ["device-status-changed", "device-provisioned", "device-status-changed"]
    assert events[0][1] == {"id": device_id, "status": "preauthorized"}
    assert events[1][1]["auth_sets"][0]["status"] == "accepted" and events[1][1]["id"] == device_id
    assert events[2][1] == {"id": device_id, "status": "accepted"}

    # a preauthorized device whose only auth set is removed goes away: Mender's special "decommissioned" status
    other = Device(hook_client)
    r = hook_operator.post(f"{DEVICES}", json={"identity_data": other.identity, "pubkey": other.pubkey})
    other_id = r.headers["Location"].rsplit("/", 1)[1]
    auth_set = _auth_set(hook_operator, other_id)
    assert hook_operator.delete(f"{DEVICES}/{other_id}/auth/{auth_set['id']}").status_code == 204
    assert _received(hook_app, receiver, 5)[3:] == [
        ("device-status-changed", {"id": other_id, "status": "preauthorized"}),
        ("device-status-changed", {"id": other_id, "status": "decommissioned"}),
    ]


def test_the_event_commits_with_the_change(make_app, clock, receiver, monkeypatch):
    """SQLite: the event is written in devauth's transaction, so a change that fails after the
    event was recorded leaves neither the change nor the event."""
    app = make_app("sqlite", IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, _CLOCK=clock)
    client = app.test_client()
    operator = Operator.create(app, client)
    add_webhook(operator, receiver.url)
    device = Device(client)
    device.auth()
    drain(app)
    record = operator.find_device(device)
    status_url = f"{DEVICES}/{record['id']}/auth/{record['auth_sets'][0]['id']}/status"
    iot = service(app)
    real_emit = iot.emit

    def emit_then_fail(tenant, kind, data):
        real_emit(tenant, kind, data)
        raise RuntimeError("something after the event failed")
    monkeypatch.setattr(iot, "emit", emit_then_fail)
    assert operator.put(status_url, json={"status": "rejected"}).status_code == 500
    monkeypatch.setattr(iot, "emit", real_emit)
    assert operator.find_device(device)["status"] == "pending"  # the change was rolled back
    assert [e["data"]["status"] for e in operator.get(f"{HOOKS}/events").get_json()] == ["pending"]  # the event too
    assert operator.put(status_url, json={"status": "rejected"}).status_code == 204
    assert [e["data"]["status"] for e in operator.get(f"{HOOKS}/events").get_json()] == ["rejected", "pending"]
