"""Store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import time
import uuid

from deviceconnect.model import CONNECTED, DISCONNECTED, UNKNOWN, Session


def _id() -> str:
    return str(uuid.uuid4())


def test_provision_connect_disconnect_versions(store):
    dev = _id()
    assert store.get_device("", dev) is None
    store.provision_device("", dev, 100.0)
    store.provision_device("", dev, 200.0)  # idempotent: keeps the first
    state = store.get_device("", dev)
    assert (state.status, state.created_ts, state.updated_ts, state.version) == (UNKNOWN, 100.0, 100.0, 0)

    v1 = store.set_connected("", dev, "w1", 300.0)
    v2 = store.set_connected("", dev, "w2", 301.0)  # a newer connection through another process
    assert v2 == v1 + 1
    state = store.get_device("", dev)
    assert (state.status, state.holder, state.updated_ts, state.created_ts) == (CONNECTED, "w2", 301.0, 100.0)
    # the old connection going away does not disconnect the new one
    assert store.set_disconnected("", dev, v1, 302.0) is False
    assert store.get_device("", dev).status == CONNECTED
    assert store.set_disconnected("", dev, v2, 303.0) is True
    state = store.get_device("", dev)
    assert (state.status, state.holder, state.updated_ts) == (DISCONNECTED, None, 303.0)


def test_connect_creates_unknown_device_and_tenants_are_separate(store):
    dev = _id()
    assert store.set_connected("t1", dev, "w1", 10.0) == 1
    assert store.get_device("t1", dev).created_ts == 10.0
    assert store.get_device("", dev) is None
    assert store.get_device("t2", dev) is None
    store.delete_device("t2", dev)
    assert store.get_device("t1", dev) is not None
    store.delete_device("t1", dev)
    store.delete_device("t1", dev)
    assert store.get_device("t1", dev) is None


def test_holders_heartbeat_and_release(store):
    a, b, c = _id(), _id(), _id()
    store.set_connected("", a, "dead", 1.0)
    store.set_connected("t", b, "dead", 1.0)
    store.set_connected("", c, "alive", 1.0)
    store.beat("dead", 50.0)
    store.beat("alive", 50.0)
    store.beat("alive", 150.0)
    assert store.expired_holders(100.0) == ["dead"]
    released = store.release_holders(["dead"], 100.0)
    assert sorted(released) == sorted([("", a), ("t", b)])
    assert store.get_device("", a).status == DISCONNECTED and store.get_device("", a).holder is None
    assert store.get_device("", c).status == CONNECTED
    assert store.release_holders(["dead"], 101.0) == []
    store.delete_holders(["dead"])
    assert store.expired_holders(100.0) == []
    assert store.release_holders([], 1.0) == []


FUTURE = float(int(time.time()) + 86400)  # (MongoDB's TTL index removes what is past its expiry)


def test_sessions_and_recordings(store):
    sid = _id()
    s = Session(sid, "t", "user-1", "dev-1", 1000.0, FUTURE)
    store.insert_session(s)
    assert store.get_session("t", sid) == s
    assert store.get_session("", sid) is None  # another tenant's session is not found
    store.end_session("t", sid, 1010.5, ["terminal"], 42)
    got = store.get_session("t", sid)
    assert (got.end_ts, got.types, got.bytes_recorded) == (1010.5, ["terminal"], 42)
    for seq in range(20):
        store.append_recording("t", sid, seq, bytes([seq]) * 3, FUTURE)
    assert list(store.recording_chunks("t", sid)) == [bytes([i]) * 3 for i in range(20)]
    assert list(store.recording_chunks("", sid)) == []


def test_connected_devices(store):
    tenant = _id()
    on, off, never = _id(), _id(), _id()
    store.set_connected(tenant, on, "w", 1.0)
    version = store.set_connected(tenant, off, "w", 1.0)
    store.set_disconnected(tenant, off, version, 2.0)
    store.provision_device(tenant, never, 1.0)
    store.set_connected(_id(), _id(), "w", 1.0)  # another tenant's
    assert store.connected_devices(tenant) == [on]
    assert store.connected_devices(_id()) == []


def test_purge_and_delete_tenant(store):
    old, new = _id(), _id()
    now = time.time()
    store.insert_session(Session(old, "t", "u", "d", now - 100, now - 10))
    store.insert_session(Session(new, "t", "u", "d", now - 100, FUTURE))
    store.append_recording("t", old, 0, b"x", now - 10)
    store.append_recording("t", new, 0, b"y", FUTURE)
    assert store.purge_expired(now) >= 0  # (MongoDB's TTL monitor may have been first)
    assert store.get_session("t", old) is None and list(store.recording_chunks("t", old)) == []
    assert list(store.recording_chunks("t", new)) == [b"y"]
    dev = _id()
    store.set_connected("t", dev, "w", 1.0)
    store.set_connected("u", dev, "w", 1.0)
    store.delete_tenant("t")
    assert store.get_session("t", new) is None and list(store.recording_chunks("t", new)) == []
    assert store.get_device("t", dev) is None and store.get_device("u", dev) is not None
