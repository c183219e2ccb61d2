"""Store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import time
import uuid

import pytest

from common.errors import Conflict
from devauth.model import AuthSet, Device, DeviceToken


def _device(tenant="", id_hash=None, status="pending", created=None, **kw):
    now = created if created is not None else time.time()
    return Device(id=str(uuid.uuid4()), tenant_id=tenant, id_data='{"mac":"x"}', id_hash=id_hash or uuid.uuid4().hex,
                  status=status, created_ts=now, updated_ts=now, **kw)


def _auth_set(device, pubkey="PEM", status="pending", ts=None):
    return AuthSet(id=str(uuid.uuid4()), tenant_id=device.tenant_id, device_id=device.id, id_hash=device.id_hash,
                   pubkey=pubkey, status=status, ts=ts or time.time())


def test_device_roundtrip_and_unique_identity(store):
    d = _device(created=1000.5)
    store.insert_device(d)
    got = store.get_device("", d.id)
    assert got == d
    assert store.get_device_by_hash("", d.id_hash) == d
    with pytest.raises(Conflict):
        store.insert_device(_device(id_hash=d.id_hash))
    # the same identity in another tenant is another device
    store.insert_device(_device(tenant="t2", id_hash=d.id_hash))
    assert store.get_device("t2", d.id) is None
    assert store.get_device_by_hash("t2", d.id_hash).id != d.id


def test_update_touch_delete_device(store):
    d = _device()
    store.insert_device(d)
    assert store.update_device("", d.id, {"status": "accepted", "decommissioning": True, "updated_ts": 5.0})
    got = store.get_device("", d.id)
    assert (got.status, got.decommissioning, got.updated_ts) == ("accepted", True, 5.0)
    assert not store.update_device("other", d.id, {"status": "rejected"})
    assert store.touch_check_ins("", [d.id], 100.0, 40.0) == [d.id]
    assert store.touch_check_ins("", [d.id], 120.0, 60.0) == []  # written at 100, not older than 60
    assert store.get_device("", d.id).check_in_time == 100.0
    assert store.touch_check_ins("", [d.id], 200.0, 140.0) == [d.id]
    assert store.get_device("", d.id).check_in_time == 200.0
    # several at once: only devices of the tenant whose time is stale are written, and named
    others = [_device(), _device()]
    for o in others:
        store.insert_device(o)
    ids = [d.id, others[0].id, others[1].id, "ghost"]
    assert sorted(store.touch_check_ins("", ids, 230.0, 180.0)) == sorted(ids[1:3])  # d: 200 is recent
    assert store.touch_check_ins("other", ids, 300.0, 290.0) == []
    assert [store.get_device("", i).check_in_time for i in ids[:3]] == [200.0, 230.0, 230.0]
    assert sorted(store.touch_check_ins("", ids, 300.0, 250.0)) == sorted(ids[:3])
    assert not store.delete_device("other", d.id)
    assert store.delete_device("", d.id)
    assert store.get_device("", d.id) is None
    assert not store.delete_device("", d.id)


def test_list_and_count_devices(store):
    devices = [_device(status=s, created=1000 + i) for i, s in enumerate(["pending", "accepted", "pending",
                                                                           "rejected", "accepted"])]
    for d in reversed(devices):
        store.insert_device(d)
    store.insert_device(_device(tenant="t2", created=1))
    assert [d.id for d in store.list_devices("", limit=100)] == [d.id for d in devices]
    assert [d.id for d in store.list_devices("", skip=1, limit=2)] == [devices[1].id, devices[2].id]
    assert [d.id for d in store.list_devices("", ["pending"])] == [devices[0].id, devices[2].id]
    assert store.count_devices("") == 5
    assert store.count_devices("", ["accepted", "rejected"]) == 3
    assert store.count_devices("", ids=[devices[0].id, devices[3].id, "nope"]) == 2
    assert [d.id for d in store.list_devices("", ["pending"], ids=[devices[2].id, devices[1].id])] \
        == [devices[2].id]
    assert store.count_devices("t2") == 1


def test_auth_sets(store):
    d = _device()
    store.insert_device(d)
    a1 = _auth_set(d, "K1", "accepted", ts=10.0)
    a2 = _auth_set(d, "K2", "pending", ts=20.0)
    store.insert_auth_set(a2)
    store.insert_auth_set(a1)
    with pytest.raises(Conflict):
        store.insert_auth_set(_auth_set(d, "K1"))
    assert store.get_auth_set("", a1.id) == a1
    assert store.get_auth_set("t2", a1.id) is None
    assert store.get_auth_set_by_key("", d.id_hash, "K2") == a2
    assert store.get_auth_set_by_key("", d.id_hash, "K3") is None
    assert [a.id for a in store.list_auth_sets("", [d.id])] == [a1.id, a2.id]
    assert store.list_auth_sets("", []) == []
    assert store.set_auth_set_status("", a2.id, "accepted")
    assert not store.set_auth_set_status("t2", a2.id, "rejected")
    assert store.replace_auth_set_status("", d.id, "accepted", "rejected", except_id=a2.id) == 1
    assert store.get_auth_set("", a1.id).status == "rejected"
    assert store.get_auth_set("", a2.id).status == "accepted"
    assert store.delete_auth_set("", a1.id)
    assert not store.delete_auth_set("", a1.id)
    assert store.delete_auth_sets_of_device("", d.id) == 1
    assert store.list_auth_sets("", [d.id]) == []


def _token(device, auth_set_id, iat, exp, jti=None):
    return DeviceToken(id=jti or str(uuid.uuid4()), tenant_id=device.tenant_id, device_id=device.id,
                       auth_set_id=auth_set_id, iat=float(iat), exp=float(exp), token_hash=uuid.uuid4().hex)


def test_tokens_context_revocation_and_pruning(store):
    d = _device(tenant="t1")
    store.insert_device(d)
    a = _auth_set(d, status="accepted")
    store.insert_auth_set(a)
    base = float(int(time.time()))  # whole seconds, as tokens carry them (MongoDB's TTL index drops tokens whose exp has passed)
    t = _token(d, a.id, base, base + 1000)
    store.insert_token(t)
    assert store.get_token(t.id) == t
    ctx = store.get_token_context(t.id)
    assert ctx.auth_set_status == "accepted" and ctx.device_decommissioning is False
    assert ctx.tenant_id == "t1" and ctx.device_id == d.id and ctx.check_in_time is None
    assert ctx.token_hash == t.token_hash
    store.update_device("t1", d.id, {"decommissioning": True})
    assert store.get_token_context(t.id).device_decommissioning is True
    store.delete_auth_set("t1", a.id)
    store.delete_device("t1", d.id)
    ctx = store.get_token_context(t.id)
    assert ctx.auth_set_status is None and ctx.device_decommissioning is None
    assert store.get_token_context("nope") is None
    assert not store.delete_token("", t.id)  # other tenant
    assert store.delete_token("t1", t.id)
    assert store.get_token(t.id) is None

    # pruning: expired ones go, and only the newest `keep` stay
    tokens = [_token(d, a.id, base + i, base + (500 if i == 0 else 10_000)) for i in range(6)]
    for tok in tokens:
        store.insert_token(tok)
    assert store.prune_tokens("t1", d.id, now=base + 600.0, keep=3) == 3
    assert {tok.id for tok in tokens if store.get_token(tok.id)} == {tok.id for tok in tokens[3:]}
    other = _device(tenant="t1")
    store.insert_device(other)
    store.insert_token(_token(other, "x", base, base + 10_000))
    assert store.delete_tokens("t1", d.id) == 3
    assert store.delete_tokens("t1") == 1


def test_an_issued_token_prunes_the_devices_others(store):
    """issue_token: the token is recorded and, as of its issue time, the device's expired tokens
    go and all but the `keep` newest (this one included); other devices' tokens stay, and
    insert_token alone prunes nothing. (On SQLite one statement: a trigger of migration 6.)"""
    d, other = _device(tenant="t1"), _device(tenant="t1")
    store.insert_device(d)
    store.insert_device(other)
    base = float(int(time.time()))
    expired = _token(d, "a", base, base + 5)
    old = [_token(d, "a", base + i, base + 10_000) for i in range(1, 4)]
    theirs = _token(other, "b", base, base + 10_000)
    for tok in (expired, *old, theirs):
        store.insert_token(tok)
    assert all(store.get_token(t.id) for t in (expired, *old, theirs))  # insert_token alone pruned nothing
    new = _token(d, "a", base + 10, base + 10_000)
    store.issue_token(new, keep=3)
    kept = {t.id for t in (expired, *old, new, theirs) if store.get_token(t.id)}
    assert kept == {old[1].id, old[2].id, new.id, theirs.id}
    assert store.get_token(new.id) == new


def test_limits(store):
    assert store.get_limit("", "max_devices") is None
    store.set_limit("", "max_devices", 5)
    store.set_limit("", "max_devices", 7)
    store.set_limit("t2", "max_devices", 0)
    assert store.get_limit("", "max_devices") == 7
    assert store.get_limit("t2", "max_devices") == 0
    store.delete_limit("", "max_devices")
    store.delete_limit("", "max_devices")
    assert store.get_limit("", "max_devices") is None


def test_mark_provisioned_once(store):
    d = _device(created=1000.5)
    store.insert_device(d)
    assert store.mark_provisioned("", d.id)
    assert not store.mark_provisioned("", d.id)  # only the first acceptance announces the device
    assert not store.mark_provisioned("t2", d.id)
    assert not store.mark_provisioned("", "no-such-device")
    assert store.get_device("", d.id) == d  # the flag is not part of the record


def test_import_devices_in_bulk_skips_known_identities(store):
    existing = _device(id_hash="known", created=999.5)
    store.insert_device(existing)
    pairs = []
    for i in range(1203):  # more than one chunk on either backend
        d = _device(id_hash=f"h{i}", status="accepted", created=1000.5)
        pairs.append((d, _auth_set(d, pubkey=f"PEM{i}", status="accepted", ts=1000.25)))
    twin = _device(id_hash="h5", status="accepted")  # the same identity twice in one import
    clash = _device(id_hash="known", status="accepted")
    pairs += [(twin, _auth_set(twin, pubkey="other")), (clash, _auth_set(clash))]
    inserted = store.import_devices("", pairs)
    assert inserted == [d.id for d, _ in pairs[:1203]]
    assert store.count_devices("", ["accepted"]) == 1203
    d7, a7 = pairs[7]
    assert store.get_device("", d7.id) == d7
    assert store.get_auth_set_by_key("", "h7", "PEM7") == a7
    assert store.list_auth_sets("", [twin.id, clash.id]) == []
    assert store.get_device_by_hash("", "known") == existing
    # repeated (as after a crash): nothing twice
    assert store.import_devices("", pairs[:10]) == []
    assert store.count_devices("") == 1204
    assert len(store.list_auth_sets("", [d.id for d, _ in pairs[:10]])) == 10


def test_counts_by_status_follow_every_write(store):
    """Counts by status (on SQLite a table the triggers keep) equal the devices after inserts,
    status changes by either path, deletions and bulk imports, per tenant."""
    import random
    rnd = random.Random(3)
    statuses = ["pending", "accepted", "rejected", "preauthorized", "noauth"]
    devices = []
    for i in range(40):
        d = _device(tenant=rnd.choice(["", "t2"]), status=rnd.choice(statuses))
        store.insert_device(d)
        devices.append(d)
    for d in rnd.sample(devices, 15):
        store.update_device(d.tenant_id, d.id, {"status": rnd.choice(statuses)})
    for i, d in enumerate(rnd.sample(devices, 10)):
        store.set_device_status(d.tenant_id, d.id, rnd.choice(statuses), 100 + i, time.time())
    for d in rnd.sample(devices, 8):
        store.delete_device(d.tenant_id, d.id)
    store.import_devices("t2", [(d, _auth_set(d)) for d in (_device(tenant="t2", status="accepted") for _ in range(5))])
    for tenant in ("", "t2", "t3"):
        listed = store.list_devices(tenant, limit=1000)
        assert store.count_devices(tenant) == len(listed)
        for status in statuses:
            assert store.count_devices(tenant, [status]) == sum(d.status == status for d in listed), (tenant, status)
        assert store.count_devices(tenant, ["accepted", "pending", "accepted"]) == sum(
            d.status in ("accepted", "pending") for d in listed)
