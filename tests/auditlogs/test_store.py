"""Store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import time
import uuid

from auditlogs.model import Actor, AuditEntry, EntryFilter


# recent times: MongoDB's TTL index (and mongomock's, at once) removes entries past the retention
NOW = float(int(time.time()))


def entry(tenant="", t=100.0, **kw) -> AuditEntry:
    fields = dict(id=str(uuid.uuid4()), tenant_id=tenant, time=NOW + t, actor=Actor("user", "u1", "a@example.com", "tok1"),
                  action="create", object_type="user", object_id="o1", object_name="n", object_extra={"k": "v"},
                  change="email: a → b", request_id="r1", client="10.0.0.1")
    fields.update(kw)
    return AuditEntry(**fields)


def test_insert_and_list_round_trip(store):
    e = entry(t=0.123)
    store.insert([e])
    got, total = store.list("", EntryFilter())
    assert total == 1 and len(got) == 1
    g = got[0]
    assert (g.id, g.tenant_id, g.actor, g.action, g.object_type, g.object_id, g.object_name, g.object_extra,
            g.change, g.request_id, g.client) == (e.id, "", e.actor, "create", "user", "o1", "n", {"k": "v"},
                                                   "email: a → b", "r1", "10.0.0.1")
    assert abs(g.time - e.time) < 0.001
    bare = entry(actor=Actor("system", ""), object_name=None, object_extra={}, t=1000.0)
    store.insert([bare])
    got, _ = store.list("", EntryFilter(object_id="o1"), newest_first=True, limit=1)
    assert got[0].id == bare.id and got[0].actor == Actor("system", "") and got[0].object_name is None
    assert got[0].object_extra == {}


def test_tenants_are_separate(store):
    store.insert([entry("t1"), entry("t2"), entry("t2")])
    assert store.list("t1", EntryFilter())[1] == 1
    assert store.list("t2", EntryFilter())[1] == 2
    assert store.list("", EntryFilter())[1] == 0
    store.delete_tenant("t2")
    assert store.list("t2", EntryFilter())[1] == 0 and store.list("t1", EntryFilter())[1] == 1


def test_filters_sort_and_paging(store):
    t = "tf-" + uuid.uuid4().hex[:6]
    entries = [
        entry(t, 100.0, actor=Actor("user", "alice", "alice@example.com"), object_type="device", object_id="d1"),
        entry(t, 200.0, actor=Actor("user", "bob", "bob@example.com"), object_type="deployment", object_id="x",
              object_name="nightly"),
        entry(t, 300.0, actor=Actor("device", "d1"), object_type="deployment", object_id="y", object_name="other"),
        entry(t, 400.0, actor=Actor("user", "alice", "alice@example.com"), object_type="user", object_id="bob"),
    ]
    store.insert(entries)

    def ids(**kw):
        return [e.object_id for e in store.list(t, EntryFilter(**kw))[0]]

    assert ids() == ["bob", "y", "x", "d1"]  # newest first
    assert [e.object_id for e in store.list(t, EntryFilter(), newest_first=False)[0]] == ["d1", "x", "y", "bob"]
    assert ids(actor_id="alice") == ["bob", "d1"]
    assert ids(actor_email="bob@example.com") == ["x"]
    assert ids(actor_type="device") == ["y"]
    assert ids(object_type="deployment") == ["y", "x"]
    assert ids(object_id="d1") == ["d1"]
    assert ids(object_deployment_name="nightly") == ["x"]
    assert ids(object_deployment_name="nightly", object_type="user") == []
    assert ids(created_after=NOW + 200.0, created_before=NOW + 300.0) == ["y", "x"]  # both bounds inclusive
    page, total = store.list(t, EntryFilter(), skip=1, limit=2)
    assert [e.object_id for e in page] == ["y", "x"] and total == 4


def test_after_walks_every_entry_once_across_equal_times(store):
    t = "ta-" + uuid.uuid4().hex[:6]
    entries = [entry(t, 100.0 + (i // 3)) for i in range(10)]  # groups of equal times
    store.insert(entries)
    for newest_first in (True, False):
        seen, cursor = [], None
        while True:
            batch = store.after(t, EntryFilter(), newest_first=newest_first, cursor=cursor, limit=4)
            seen += batch
            if len(batch) < 4:
                break
            cursor = (batch[-1].time, batch[-1].id)
        assert sorted(e.id for e in seen) == sorted(e.id for e in entries) and len(seen) == 10
        times = [e.time for e in seen]
        assert times == sorted(times, reverse=newest_first)


def test_prune_removes_only_older_entries_in_batches(store):
    t = "tp-" + uuid.uuid4().hex[:6]
    store.insert([entry(t, 10.0) for _ in range(5)] + [entry(t, 1000.0)])
    assert store.prune(NOW + 500.0, batch=3) == 3
    assert store.prune(NOW + 500.0, batch=3) == 2
    assert store.prune(NOW + 500.0, batch=3) == 0
    assert [e.time for e in store.list(t, EntryFilter())[0]] == [NOW + 1000.0]
