"""Management API v2: listing, preauthorization, the auth-set transition table, limits, removal."""

from __future__ import annotations

import pytest

from tests.helpers import Device, Operator

BASE = "/api/management/v2/devauth"
VERIFY = "/api/internal/v1/devauth/tokens/verify"


def pending_device(client, **kw) -> Device:
    device = Device(client, **kw)
    assert device.auth().status_code == 401
    return device


def status_url(record, aid=None):
    return f"{BASE}/devices/{record['id']}/auth/{aid or record['auth_sets'][0]['id']}/status"


def test_management_needs_a_user_token(client, device_factory):
    device = device_factory()
    assert client.get(f"{BASE}/devices").status_code == 401
    assert client.get(f"{BASE}/devices", headers=device.headers).status_code == 401


def test_list_filter_page_get_count(client, operator, device_factory):
    accepted = [device_factory() for _ in range(2)]
    pending = [pending_device(client) for _ in range(3)]
    r = operator.get(f"{BASE}/devices")
    assert r.status_code == 200 and len(r.get_json()) == 5
    assert r.headers["X-Total-Count"] == "5"
    ids = [d["id"] for d in r.get_json()]
    assert ids[:2] == [d.id for d in accepted]  # oldest first
    r = operator.get(f"{BASE}/devices?status=pending&per_page=2")
    assert [d["status"] for d in r.get_json()] == ["pending", "pending"]
    assert 'rel="next"' in r.headers["Link"] and r.headers["X-Total-Count"] == "3"
    r = operator.get(f"{BASE}/devices?status=pending&per_page=2&page=2")
    assert len(r.get_json()) == 1 and 'rel="next"' not in r.headers["Link"]
    assert {d["identity_data"]["sn"] for d in operator.get(f"{BASE}/devices?status=pending").get_json()} \
        == {d.identity["sn"] for d in pending}
    r = operator.get(f"{BASE}/devices?id={ids[0]}&id={ids[3]}")
    assert {d["id"] for d in r.get_json()} == {ids[0], ids[3]}
    assert operator.get(f"{BASE}/devices?status=bogus").status_code == 400
    assert operator.get(f"{BASE}/devices?per_page=501").status_code == 400

    client.application.extensions["mender"].services.devauth.check_ins.flush()  # written in batches
    one = operator.get(f"{BASE}/devices/{accepted[0].id}")
    assert one.status_code == 200
    body = one.get_json()
    assert body["status"] == "accepted" and body["decommissioning"] is False
    assert body["identity_data"] == accepted[0].identity and body["created_ts"].endswith("Z")
    assert body["auth_sets"][0]["identity_data"] == accepted[0].identity and "check_in_time" in body
    assert body["auth_sets"][0]["device_id"] == accepted[0].id
    missing = operator.get(f"{BASE}/devices/nope")
    assert missing.status_code == 404 and missing.get_json()["request_id"]

    assert operator.get(f"{BASE}/devices/count").get_json() == {"count": 5}
    assert operator.get(f"{BASE}/devices/count?status=accepted").get_json() == {"count": 2}
    assert operator.get(f"{BASE}/devices/count?status=noauth").get_json() == {"count": 0}
    assert operator.get(f"{BASE}/devices/count?status=x").status_code == 400


def test_search(client, operator, device_factory):
    accepted = device_factory()
    pending = pending_device(client)
    r = operator.post(f"{BASE}/devices/search", json={"status": "accepted"})
    assert r.status_code == 200 and [d["id"] for d in r.get_json()] == [accepted.id]
    r = operator.post(f"{BASE}/devices/search", json={"status": ["accepted", "pending"]})
    assert len(r.get_json()) == 2
    r = operator.post(f"{BASE}/devices/search", json={"id": accepted.id})
    assert [d["id"] for d in r.get_json()] == [accepted.id]
    assert operator.post(f"{BASE}/devices/search?per_page=1", json={}).headers["X-Total-Count"] == "2"
    assert operator.post(f"{BASE}/devices/search", json={"status": [1]}).status_code == 400
    assert operator.post(f"{BASE}/devices/search", json={"status": "nope"}).status_code == 400
    assert operator.post(f"{BASE}/devices/search", json={"bogus": 1}).status_code == 400
    assert operator.post(f"{BASE}/devices/search", data="x", content_type="text/plain").status_code == 415
    assert pending


def test_preauthorize_201_409_400(client, operator):
    device = Device(client, key_kind="rsa2048")
    body = {"identity_data": device.identity, "pubkey": device.pubkey}
    r = operator.post(f"{BASE}/devices", json=body)
    assert r.status_code == 201
    device_id = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"].endswith(f"{BASE}/devices/{device_id}")
    r = operator.post(f"{BASE}/devices", json=body)
    assert r.status_code == 409
    conflict = r.get_json()
    assert conflict["id"] == device_id and conflict["status"] == "preauthorized" and conflict["error"]
    other = Device(client, identity=device.identity)
    r = operator.post(f"{BASE}/devices", json={**body, "pubkey": other.pubkey})
    assert r.status_code == 409
    assert len(operator.get(f"{BASE}/devices/{device_id}").get_json()["auth_sets"]) == 1  # refused: no new set
    r = operator.post(f"{BASE}/devices", json={**body, "pubkey": other.pubkey, "force": True})
    assert r.status_code == 201
    assert len(operator.get(f"{BASE}/devices/{device_id}").get_json()["auth_sets"]) == 2
    for bad in [{"identity_data": "x", "pubkey": device.pubkey}, {"identity_data": {}, "pubkey": device.pubkey},
                {"identity_data": {"a": 1}, "pubkey": "nope"}, {"identity_data": {"a": 1}},
                {"identity_data": {"a": 1}, "pubkey": device.pubkey, "extra": 1}]:
        r = operator.post(f"{BASE}/devices", json=bad)
        assert r.status_code == 400, bad
    assert operator.get(f"{BASE}/devices/count").get_json() == {"count": 1}


# Mender's table, written out independently of service.TRANSITIONS: (from, to) -> HTTP status
EXPECTED = {
    ("pending", "pending"): 204, ("pending", "accepted"): 204, ("pending", "rejected"): 204,
    ("pending", "preauthorized"): 400,
    ("accepted", "pending"): 204, ("accepted", "accepted"): 204, ("accepted", "rejected"): 204,
    ("accepted", "preauthorized"): 400,
    ("rejected", "pending"): 204, ("rejected", "accepted"): 204, ("rejected", "rejected"): 204,
    ("rejected", "preauthorized"): 400,
    ("preauthorized", "pending"): 400, ("preauthorized", "accepted"): 400,
    ("preauthorized", "rejected"): 400, ("preauthorized", "preauthorized"): 204,
}


def _device_in(client, operator, status):
    device = Device(client)
    if status == "preauthorized":
        r = operator.post(f"{BASE}/devices", json={"identity_data": device.identity, "pubkey": device.pubkey})
        assert r.status_code == 201
    else:
        device.auth()
        if status != "pending":
            record = operator.find_device(device)
            assert operator.put(status_url(record), json={"status": status}).status_code == 204
    return device, operator.find_device(device)


@pytest.mark.parametrize("start,target", sorted(EXPECTED), ids=[f"{a}->{b}" for a, b in sorted(EXPECTED)])
def test_transition_table_row(client, operator, start, target):
    device, record = _device_in(client, operator, start)
    assert record["auth_sets"][0]["status"] == start
    r = operator.put(status_url(record), json={"status": target})
    assert r.status_code == EXPECTED[(start, target)], r.get_json()
    now = operator.get(status_url(record)).get_json()["status"]
    assert now == (target if r.status_code == 204 else start)
    assert operator.find_device(device)["status"] == now  # one auth set: the device follows it
    assert (device.auth().status_code == 200) == (now == "accepted" or now == "preauthorized")


def test_leaving_accepted_revokes_tokens(client, operator, device_factory):
    device = device_factory()
    record = operator.find_device(device)
    assert client.post(VERIFY, headers=device.headers).status_code == 200
    assert operator.put(status_url(record), json={"status": "pending"}).status_code == 204
    assert client.post(VERIFY, headers=device.headers).status_code == 401


def test_status_errors(client, operator):
    a, b = pending_device(client), pending_device(client)
    ra, rb = operator.find_device(a), operator.find_device(b)
    assert operator.put(status_url(ra), json={"status": "bogus"}).status_code == 400
    assert operator.put(status_url(ra), json={}).status_code == 400
    assert operator.put(status_url(ra), data="x", content_type="text/plain").status_code == 415
    assert operator.put(status_url(ra, rb["auth_sets"][0]["id"]), json={"status": "accepted"}).status_code == 400
    assert operator.put(f"{BASE}/devices/nope/auth/x/status", json={"status": "accepted"}).status_code == 404
    assert operator.put(status_url(ra, "nope"), json={"status": "accepted"}).status_code == 404
    assert operator.get(status_url(ra, "nope")).status_code == 404


def test_max_devices_limit(app, client, operator):
    assert operator.get(f"{BASE}/limits/max_devices").get_json() == {"limit": -1}
    with app.app_context():
        app.extensions["mender"].services.devauth.set_max_devices("", 1)
    assert operator.get(f"{BASE}/limits/max_devices").get_json() == {"limit": 1}
    first, second = pending_device(client), pending_device(client)
    operator.accept(first)
    r = operator.put(status_url(operator.find_device(second)), json={"status": "accepted"})
    assert r.status_code == 422 and "limit" in r.get_json()["error"]
    assert operator.find_device(second)["status"] == "pending"
    # a preauthorized device beyond the limit is not admitted either
    third = Device(client)
    operator.post(f"{BASE}/devices", json={"identity_data": third.identity, "pubkey": third.pubkey})
    assert third.auth().status_code == 401
    # re-accepting the already accepted device's new key does not count twice
    rotated = pending_device(client, identity=first.identity)
    operator.accept(rotated)
    assert operator.find_device(first)["status"] == "accepted"


def test_delete_auth_set(client, operator, device_factory):
    device = device_factory()
    rotated = pending_device(client, identity=device.identity)
    record = operator.find_device(device)
    accepted_id, pending_id = record["auth_sets"][0]["id"], record["auth_sets"][1]["id"]
    assert operator.delete(f"{BASE}/devices/{record['id']}/auth/{accepted_id}").status_code == 204
    assert client.post(VERIFY, headers=device.headers).status_code == 401
    record = operator.find_device(device)
    assert record["status"] == "pending" and [a["id"] for a in record["auth_sets"]] == [pending_id]
    assert operator.delete(f"{BASE}/devices/{record['id']}/auth/{accepted_id}").status_code == 404
    assert operator.delete(f"{BASE}/devices/nope/auth/{pending_id}").status_code == 404
    assert operator.delete(f"{BASE}/devices/{record['id']}/auth/{pending_id}").status_code == 204
    assert operator.find_device(device)["status"] == "noauth"
    assert rotated.auth().status_code == 401  # a new pending set again

    pre = Device(client)
    r = operator.post(f"{BASE}/devices", json={"identity_data": pre.identity, "pubkey": pre.pubkey})
    pre_id = r.headers["Location"].rsplit("/", 1)[1]
    aid = operator.get(f"{BASE}/devices/{pre_id}").get_json()["auth_sets"][0]["id"]
    assert operator.delete(f"{BASE}/devices/{pre_id}/auth/{aid}").status_code == 204
    assert operator.get(f"{BASE}/devices/{pre_id}").status_code == 404


def test_decommission(client, operator, device_factory):
    device = device_factory()
    assert operator.delete(f"{BASE}/devices/{device.id}").status_code == 204
    assert operator.get(f"{BASE}/devices/{device.id}").status_code == 404
    assert client.post(VERIFY, headers=device.headers).status_code == 401
    assert operator.delete(f"{BASE}/devices/{device.id}").status_code == 404
    # the device comes back as a new pending device
    assert device.auth().status_code == 401
    assert operator.find_device(device)["id"] != device.id


def test_revoke_token_by_id(client, operator, device_factory):
    import base64
    import json
    device = device_factory()
    jti = json.loads(base64.urlsafe_b64decode(device.token.split(".")[1] + "=="))["jti"]
    assert operator.delete(f"{BASE}/tokens/{jti}").status_code == 204
    assert client.post(VERIFY, headers=device.headers).status_code == 401
    assert operator.delete(f"{BASE}/tokens/{jti}").status_code == 404


def test_tenants_are_isolated(app, client, operator, device_factory):
    device = device_factory()
    other = Operator.create(app, client, tenant="tenant-b")
    assert other.get(f"{BASE}/devices").get_json() == []
    assert other.get(f"{BASE}/devices/{device.id}").status_code == 404
    record = operator.find_device(device)
    assert other.put(status_url(record), json={"status": "rejected"}).status_code == 404
    assert other.delete(f"{BASE}/devices/{device.id}").status_code == 404
    assert other.get(f"{BASE}/devices/count").get_json() == {"count": 0}
    assert client.post(VERIFY, headers=device.headers).status_code == 200


def test_interrupted_decommission_is_finished_by_a_retry(app, client, operator, device_factory):
    """A decommission that stopped after flagging the device (e.g. another service failed):
    the device is locked out, shown as decommissioning, and a repeated DELETE completes it."""
    from devauth.store import make_store
    device = device_factory()
    make_store(app.extensions["mender"].db).update_device("", device.id, {"decommissioning": True})
    assert device.auth().status_code == 401
    assert client.post(VERIFY, headers=device.headers).status_code == 401
    assert operator.get(f"{BASE}/devices/{device.id}").get_json()["decommissioning"] is True
    assert operator.delete(f"{BASE}/devices/{device.id}").status_code == 204
    assert operator.get(f"{BASE}/devices/{device.id}").status_code == 404


def test_filter_limits(operator):
    ids = "&".join(f"id=d{i}" for i in range(501))
    r = operator.get(f"{BASE}/devices?{ids}")
    assert r.status_code == 400 and "500" in r.get_json()["error"]
    assert operator.post(f"{BASE}/devices/search", json={"id": [f"d{i}" for i in range(501)]}).status_code == 400
    assert operator.get(f"{BASE}/devices?id={'x' * 129}").status_code == 400
    assert operator.get(f"{BASE}/devices?id=d1&id=d2").get_json() == []


def test_delete_auth_set_of_another_device_is_400(client, operator):
    a, b = pending_device(client), pending_device(client)
    ra, rb = operator.find_device(a), operator.find_device(b)
    r = operator.delete(f"{BASE}/devices/{ra['id']}/auth/{rb['auth_sets'][0]['id']}")
    assert r.status_code == 400
    assert len(operator.find_device(b)["auth_sets"]) == 1


def _status_of(operator, device_id):
    return operator.get(f"{BASE}/devices/{device_id}").get_json()["status"]


def test_bulk_accept_reject_by_filter_and_ids(client, operator):
    """One request moves every selected device by the transition table; devices that cannot move
    are counted and named, never a 5xx; the inventory follows."""
    pending = [pending_device(client, identity={"sn": f"batch-{i}"}) for i in range(4)]
    other = pending_device(client, identity={"sn": "other-1"})
    by_sn = {d["identity_data"]["sn"]: d["id"] for d in operator.get(f"{BASE}/devices").get_json()}
    r = operator.put(f"{BASE}/devices/status", json={"status": "accepted", "text": "batch-"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"matched_count": 4, "updated_count": 4, "failed_count": 0, "failures": []}
    assert all(d.auth().status_code == 200 for d in pending)
    assert _status_of(operator, by_sn["other-1"]) == "pending"
    # accepted again: nothing to do; reject two by ids, then accept a rejected one back
    r = operator.put(f"{BASE}/devices/status", json={"status": "accepted", "filters": [
        {"scope": "identity", "attribute": "sn", "type": "$regex", "value": "batch"}]})
    assert r.get_json()["matched_count"] == 4 and r.get_json()["updated_count"] == 0
    two = [by_sn["batch-0"], by_sn["batch-1"]]
    r = operator.put(f"{BASE}/devices/status", json={"status": "rejected", "device_ids": two})
    assert r.get_json()["updated_count"] == 2
    assert [_status_of(operator, i) for i in two] == ["rejected", "rejected"]
    assert pending[0].auth().status_code == 401
    r = operator.put(f"{BASE}/devices/status", json={"status": "accepted", "device_ids": [two[0]]})
    assert r.get_json()["updated_count"] == 1 and _status_of(operator, two[0]) == "accepted"
    inventory = operator.post("/api/management/v2/inventory/filters/search", json={"filters": [
        {"scope": "identity", "attribute": "status", "type": "$eq", "value": "rejected"}]}).get_json()
    assert [d["id"] for d in inventory] == [two[1]]
    assert other.auth().status_code == 401


def test_bulk_accept_failures_are_summarized(client, operator, app):
    devices = [pending_device(client, identity={"sn": f"lim-{i}"}) for i in range(3)]
    services = app.extensions["mender"].services
    services.devauth.set_max_devices("", 2)
    r = operator.put(f"{BASE}/devices/status", json={"status": "accepted", "text": "lim-"})
    body = r.get_json()
    assert r.status_code == 200 and body["matched_count"] == 3
    assert body["updated_count"] == 2 and body["failed_count"] == 1
    assert "device limit" in body["failures"][0]["error"]
    assert sum(d.auth().status_code == 200 for d in devices) == 2


@pytest.mark.parametrize("body", [
    {"status": "preauthorized", "text": "x"}, {"status": "accepted"}, {"text": "x"},
    {"status": "accepted", "bogus": 1}, ["accepted"], {"status": "accepted", "device_ids": "x"},
])
def test_bulk_status_bad_input(operator, body):
    r = operator.put(f"{BASE}/devices/status", json=body)
    assert r.status_code == 400 and set(r.get_json()) == {"error", "request_id"}


def test_bulk_decommission(client, operator, device_factory):
    keep = device_factory(identity={"sn": "keep-1"})
    gone = [device_factory(identity={"sn": f"gone-{i}"}) for i in range(3)]
    r = operator.delete(f"{BASE}/devices", json={"text": "gone-"})
    assert r.status_code == 200 and r.get_json()["updated_count"] == 3
    assert [operator.get(f"{BASE}/devices/{d.id}").status_code for d in gone] == [404] * 3
    assert operator.get(f"{BASE}/devices/{keep.id}").status_code == 200
    assert operator.get(f"/api/management/v1/inventory/devices/{gone[0].id}").status_code == 404
    assert operator.delete(f"{BASE}/devices", json={}).status_code == 400


def test_bulk_admission_has_its_own_cap(make_app, backend):
    """Accept, reject and decommission go device by device: DEVAUTH_BULK_MAX_DEVICES, not inventory's cap."""
    from tests.helpers import Operator
    app = make_app(backend, DEVAUTH_BULK_MAX_DEVICES=2)
    client = app.test_client()
    operator = Operator.create(app, client)
    for i in range(3):
        pending_device(client, identity={"sn": f"cap-{i}"})
    for method, body in (("put", {"status": "accepted", "text": "cap-"}), ("delete", {"text": "cap-"})):
        r = getattr(operator, method)(f"{BASE}/devices" + ("/status" if method == "put" else ""), json=body)
        assert r.status_code == 400 and "3 devices, more than 2 (DEVAUTH_BULK_MAX_DEVICES)" in r.get_json()["error"]
    r = operator.put(f"{BASE}/devices/status", json={"status": "accepted", "text": "cap-1"})
    assert r.status_code == 200 and r.get_json()["updated_count"] == 1
    # grouping is inventory's: its cap (100,000 by default) lets all three through
    r = operator.patch("/api/management/v2/inventory/groups/g/devices", json={"text": "cap-"})
    assert r.status_code == 200 and r.get_json()["matched_count"] == 3
