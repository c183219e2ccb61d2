"""Contract tests of the useradm store, on every backend."""

from __future__ import annotations

import uuid

import pytest

from common.errors import Conflict, PreconditionFailed
from useradm.model import PAT, SESSION, Token, User


def user(tenant="", email=None, ts=1000.0):
    return User(id=str(uuid.uuid4()), tenant_id=tenant, email=email or f"{uuid.uuid4().hex[:8]}@x.io",
                password_hash="h", created_ts=ts, updated_ts=ts)


def token(u, kind=SESSION, name=None, ts=1000.0, exp=None):
    return Token(id=str(uuid.uuid4()), tenant_id=u.tenant_id, user_id=u.id, kind=kind, name=name, created_ts=ts,
                 exp=exp)


def test_user_round_trip_and_tenant_scope(store):
    u = user(email="a@x.io")
    store.insert_user(u)
    assert store.get_user("", u.id) == u
    assert store.get_user("other", u.id) is None
    assert store.get_user_by_email("", "a@x.io").id == u.id
    assert store.get_user_by_email("other", "a@x.io") is None


def test_email_unique_on_the_server(store):
    store.insert_user(user(email="dup@x.io"))
    with pytest.raises(Conflict):
        store.insert_user(user(email="dup@x.io"))
    with pytest.raises(Conflict):  # in another organization too: login needs no organization
        store.insert_user(user(tenant="t2", email="dup@x.io", ts=2000.0))
    store.insert_user(user(tenant="t2", email="other@x.io", ts=2000.0))
    cands = store.find_login_candidates("dup@x.io", 5)
    assert [c.tenant_id for c in cands] == [""]
    assert [c.tenant_id for c in store.find_login_candidates("other@x.io", 5)] == ["t2"]
    b = store.list_users("", limit=5)[0][0]
    with pytest.raises(Conflict):
        store.update_user("t2", store.list_users("t2")[0][0].id, {"email": b.email})


def test_list_users_of_every_organization_and_delete_tenant(store):
    store.insert_user(user(email="a@x.io"))
    store.insert_user(user(tenant="t2", email="b@x.io", ts=2000.0))
    store.insert_user(user(tenant="t3", email="c@x.io", ts=3000.0))
    users, total = store.list_users(None, skip=0, limit=10)
    assert total == 3 and [u.email for u in users] == ["a@x.io", "b@x.io", "c@x.io"]
    assert [u.tenant_id for u in store.list_users(None, emails=["c@x.io"])[0]] == ["t3"]
    b = store.list_users("t2")[0][0]
    store.insert_token(token(b, "session"))
    store.put_settings("t2", "", {"a": 1}, "e1", None)
    store.put_settings("t2", b.id, {"b": 2}, "e2", None)
    store.delete_tenant("t2")
    store.delete_tenant("t2")
    assert store.list_users("t2") == ([], 0)
    assert store.list_tokens("t2", b.id, "session") == []
    assert store.get_settings("t2", "") is None and store.get_settings("t2", b.id) is None
    assert store.list_users(None)[1] == 2


def test_update_user(store):
    a, b = user(email="a@x.io"), user(email="b@x.io")
    store.insert_user(a)
    store.insert_user(b)
    assert store.update_user("", a.id, {"email": "c@x.io", "updated_ts": 2000.0})
    got = store.get_user("", a.id)
    assert got.email == "c@x.io" and got.updated_ts == 2000.0 and got.created_ts == 1000.0
    with pytest.raises(Conflict):
        store.update_user("", a.id, {"email": "b@x.io"})
    assert not store.update_user("", "nope", {"login_ts": 5.0})
    assert not store.update_user("other", a.id, {"login_ts": 5.0})


def test_list_users_filters_and_paging(store):
    users = [user(ts=1000.0 + i) for i in range(5)]
    for u in users:
        store.insert_user(u)
    store.insert_user(user(tenant="t2"))
    got, total = store.list_users("")
    assert [u.id for u in got] == [u.id for u in users] and total == 5
    got, total = store.list_users("", skip=1, limit=2)
    assert [u.id for u in got] == [users[1].id, users[2].id] and total == 5
    got, total = store.list_users("", ids=[users[0].id, users[3].id, "missing"])
    assert total == 2
    got, total = store.list_users("", emails=[users[4].email])
    assert [u.id for u in got] == [users[4].id]
    got, _ = store.list_users("", created_after=1001.0, created_before=1004.0)
    assert [u.id for u in got] == [users[2].id, users[3].id]
    got, _ = store.list_users("", updated_after=1003.0)
    assert [u.id for u in got] == [users[4].id]
    got, _ = store.list_users("", updated_before=1001.0)
    assert [u.id for u in got] == [users[0].id]


def test_delete_user_removes_tokens_and_settings(store):
    u = user()
    store.insert_user(u)
    t = token(u)
    store.insert_token(t)
    store.put_settings("", u.id, {"a": 1}, "e1", None)
    assert store.get_live_token("", t.id, u.id).id == t.id
    assert store.delete_user("", u.id)
    assert not store.delete_user("", u.id)
    assert store.get_live_token("", t.id, u.id) is None
    assert store.get_settings("", u.id) is None


def test_live_token_needs_user_and_matching_owner(store):
    u, v = user(), user()
    store.insert_user(u)
    store.insert_user(v)
    t = token(u)
    store.insert_token(t)
    assert store.get_live_token("", t.id, v.id) is None
    assert store.get_live_token("other", t.id, u.id) is None
    # a token row whose user is gone (a login racing a deletion) is not live
    orphan = token(user())
    store.insert_token(orphan)
    assert store.get_live_token("", orphan.id, orphan.user_id) is None


def test_pat_names_unique_per_user(store):
    u, v = user(), user()
    store.insert_user(u)
    store.insert_user(v)
    store.insert_token(token(u, PAT, "ci"))
    with pytest.raises(Conflict):
        store.insert_token(token(u, PAT, "ci"))
    store.insert_token(token(v, PAT, "ci"))
    store.insert_token(token(u, SESSION))
    store.insert_token(token(u, SESSION))  # sessions have no name: no conflict
    assert store.count_tokens("", u.id, PAT) == 1
    assert store.count_tokens("", u.id, SESSION) == 2
    assert [t.name for t in store.list_tokens("", u.id, PAT)] == ["ci"]


def test_delete_token_restrictions(store):
    u, v = user(), user()
    store.insert_user(u)
    store.insert_user(v)
    t = token(u, PAT, "x")
    store.insert_token(t)
    assert not store.delete_token("", t.id, user_id=v.id)
    assert not store.delete_token("", t.id, kind=SESSION)
    assert not store.delete_token("other", t.id)
    assert store.delete_token("", t.id, user_id=u.id, kind=PAT)
    assert not store.delete_token("", t.id)


def test_delete_user_tokens(store):
    u, v = user(), user()
    store.insert_user(u)
    store.insert_user(v)
    keep = token(u)
    for t in (keep, token(u), token(u, PAT, "p"), token(v)):
        store.insert_token(t)
    assert store.delete_user_tokens("", u.id, except_id=keep.id) == 2
    assert [t.id for t in store.list_tokens("", u.id, SESSION)] == [keep.id]
    assert store.delete_user_tokens("other") == 0
    assert store.delete_user_tokens("") == 2
    assert store.count_tokens("", v.id, SESSION) == 0


def test_trim_sessions_keeps_newest(store):
    u = user()
    store.insert_user(u)
    sessions = [token(u, ts=1000.0 + i) for i in range(5)]
    for t in sessions:
        store.insert_token(t)
    store.insert_token(token(u, PAT, "p", ts=1.0))
    assert store.trim_sessions("", u.id, 2) == 3
    assert [t.id for t in store.list_tokens("", u.id, SESSION)] == [s.id for s in sessions[3:]]
    assert store.count_tokens("", u.id, PAT) == 1
    assert store.trim_sessions("", u.id, 2) == 0


def test_touch_token_and_times(store):
    u = user()
    store.insert_user(u)
    t = token(u, PAT, "p", exp=4000000000.5)  # in the future: MongoDB's TTL index removes past ones
    store.insert_token(t)
    store.touch_token("", t.id, 1234.5)
    got = store.list_tokens("", u.id, PAT)[0]
    assert got.last_used == 1234.5 and got.exp == 4000000000.5 and got.created_ts == 1000.0


def test_any_user(store):
    assert not store.any_user()
    store.insert_user(user(tenant="t9"))
    assert store.any_user()


def test_settings_etag(store):
    assert store.get_settings("", "") is None
    with pytest.raises(PreconditionFailed):
        store.put_settings("", "", {"a": 1}, "e1", "whatever")  # nothing stored yet
    store.put_settings("", "", {"a": 1, "$odd.key": [1]}, "e1", None)
    assert store.get_settings("", "") == ({"a": 1, "$odd.key": [1]}, "e1")
    with pytest.raises(PreconditionFailed):
        store.put_settings("", "", {"a": 2}, "e2", "wrong")
    store.put_settings("", "", {"a": 3}, "e3", "e1")
    assert store.get_settings("", "") == ({"a": 3}, "e3")
    assert store.get_settings("", "u1") is None
    assert store.get_settings("other", "") is None
    store.put_settings("", "u1", {"mine": True}, "e4", None)
    assert store.get_settings("", "u1") == ({"mine": True}, "e4")
    assert store.get_settings("", "")[1] == "e3"


def test_rate_counters_fixed_window(store):
    t = 4_000_000_000.0  # in the future: MongoDB's TTL index removes ended windows on its own
    assert store.rate_get("k", t) is None
    assert store.rate_hit("k", 1, 60.0, t) == 1
    assert store.rate_hit("k", 2, 60.0, t + 10) == 3
    assert store.rate_get("k", t + 20) == (3, t + 60)
    assert store.rate_hit("other", 1, 60.0, t + 20) == 1
    # the window ended: a new one starts
    assert store.rate_get("k", t + 60) is None
    assert store.rate_hit("k", 1, 60.0, t + 61) == 1
    assert store.rate_get("k", t + 62) == (1, t + 121)
    store.rate_clear("k")
    assert store.rate_get("k", t + 62) is None
    assert store.rate_reset() == 1
    assert store.rate_get("other", t + 30) is None


def test_rate_counter_concurrent_processes(make_app, tmp_path):
    """Four processes hit one counter 25 times each: the count is exactly 100 (SQLite)."""
    import multiprocessing
    app = make_app("sqlite")
    ctx_ = app.extensions["mender"]
    ctx_.ensure_migrated()
    path = ctx_.db.path
    mp = multiprocessing.get_context("fork")
    barrier = mp.Barrier(4)

    def worker():
        from common.db import SqliteDatabase
        from useradm.store.sqlite import SqliteUseradmStore
        s = SqliteUseradmStore(SqliteDatabase(path))
        barrier.wait()
        for _ in range(25):
            s.rate_hit("shared", 1, 3600.0, 4_000_000_000.0)

    procs = [mp.Process(target=worker) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert ctx_.services.useradm._store.rate_get("shared", 4_000_000_001.0) == (100, 4_000_003_600.0)
