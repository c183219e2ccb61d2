"""Store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import json
import uuid

import pytest

from common.errors import Conflict
from iotmanager.model import DELIVERED, FAILED, PENDING, Attempt, Event, HTTPCredentials, Integration
from iotmanager.store import make_store

T = 1_800_000_000.0


@pytest.fixture
def store(ctx):
    return make_store(ctx.db)


def _integration(tenant="", url="https://hooks.example.com/x", secret=b"\x01\x02", created=T, provider="webhook"):
    return Integration(id=str(uuid.uuid4()), tenant_id=tenant, provider=provider,
                       credentials=HTTPCredentials(url=url, secret=secret), description="d", created_ts=created)


def _event(tenant="", kind="device-status-changed", t=T):
    event_id = str(uuid.uuid4())
    body = json.dumps({"id": event_id, "type": kind, "data": {"id": "dev"}, "time": "x"})
    return Event(id=event_id, tenant_id=tenant, type=kind, time=t, body=body)


def _queue(store, integration, n, t=T):
    events = [_event(integration.tenant_id, t=t) for _ in range(n)]
    for e in events:
        assert store.enqueue(e, [integration.id], t, t + 3600, t + 86400) == [integration.id]
    return events


def _attempt(t, ok=True, code=200):
    return Attempt(ts=t, duration_ms=12, success=ok, status_code=code, error=None if ok else f"HTTP {code}")


def test_integrations_roundtrip_limit_and_tenant_scope(store):
    a = _integration(created=T)
    b = _integration(created=T + 1, secret=None)
    store.insert_integration(a, limit=2)
    store.insert_integration(b, limit=2)
    with pytest.raises(Conflict):
        store.insert_integration(_integration(), limit=2)
    store.insert_integration(_integration(tenant="t2"), limit=2)  # the limit is per organization
    assert store.get_integration("", a.id) == a
    assert store.get_integration("t2", a.id) is None
    assert [i.id for i in store.list_integrations("")] == [a.id, b.id]
    assert [i.id for i in store.list_integrations("", skip=1, limit=1)] == [b.id]
    assert store.count_integrations("") == 2
    assert store.webhook_ids("") == [a.id, b.id]

    assert store.set_credentials("", b.id, HTTPCredentials(url="http://new.example.com", secret=b"\xff"))
    assert store.get_integration("", b.id).credentials == HTTPCredentials("http://new.example.com", b"\xff")
    assert not store.set_credentials("t2", b.id, HTTPCredentials(url="http://x.example.com"))
    assert not store.delete_integration("t2", a.id, T)
    assert store.delete_integration("", a.id, T)
    assert store.get_integration("", a.id) is None
    assert not store.delete_integration("", a.id, T)
    assert store.has_integrations()


def test_enqueue_list_events_newest_first_with_deliveries(store):
    a, b = _integration(created=T), _integration(created=T + 1)
    store.insert_integration(a, 10)
    store.insert_integration(b, 10)
    assert store.enqueue(_event(), [], T, T + 1, T + 2) == []
    assert store.enqueue(_event(), [str(uuid.uuid4())], T, T + 1, T + 2) == []  # no such integration: nothing kept
    assert store.list_events("") == []
    e1, e2 = _event(t=T), _event(t=T + 1)
    assert store.enqueue(e1, [a.id, b.id], T, T + 3600, T + 86400) == [a.id, b.id]
    assert store.enqueue(e2, [b.id], T + 1, T + 3601, T + 86401) == [b.id]
    events = store.list_events("")
    assert [e.id for e in events] == [e2.id, e1.id]
    assert events[1].body == e1.body and events[1].type == e1.type and events[1].time == e1.time
    assert sorted(d.integration_id for d in events[1].deliveries) == sorted([a.id, b.id])
    d = events[0].deliveries[0]
    assert (d.state, d.next_attempt_ts, d.deadline_ts, d.attempts, d.attempt_count) == (PENDING, T + 1, T + 3601, [], 0)
    assert [e.id for e in store.list_events("", integration_id=a.id)] == [e1.id]
    assert [e.id for e in store.list_events("", integration_id=b.id, skip=1, limit=1)] == [e1.id]
    assert store.list_events("t2") == []
    assert store.list_events("t2", integration_id=a.id) == []


def test_claim_is_exclusive_until_the_lease_expires(store):
    a = _integration()
    store.insert_integration(a, 10)
    assert store.claim("w1", T, T + 40) is None  # nothing queued: not due
    _queue(store, a, 1)
    first = store.claim("w1", T, T + 40)
    assert (first.tenant_id, first.integration_id, first.owner) == ("", a.id, "w1")
    assert store.claim("w2", T + 39, T + 79) is None  # held
    assert store.renew(first, T + 80)
    assert store.claim("w2", T + 79, T + 119) is None  # renewed
    second = store.claim("w2", T + 81, T + 121)  # expired: taken over
    assert second.owner == "w2"
    assert not store.renew(first, T + 200)  # the first holder knows it lost it
    store.release(first, T)  # a release by a former holder changes nothing
    assert store.claim("w3", T + 82, T + 122) is None
    store.release(second, T + 500)
    assert store.claim("w3", T + 499, T + 539) is None  # next due at T+500
    assert store.claim("w3", T + 500, T + 540).owner == "w3"


def test_idle_queue_becomes_due_when_an_event_is_queued(store):
    a = _integration()
    store.insert_integration(a, 10)
    _queue(store, a, 1)
    claim = store.claim("w", T, T + 40)
    store.set_idle(claim)
    store.release(claim, None)
    assert store.claim("w", T + 1000, T + 1040) is None  # idle: never due
    _queue(store, a, 1, t=T + 1000)
    claim = store.claim("w", T + 1000, T + 1040)
    assert claim is not None
    store.release(claim, T + 5000)  # the head waits for a retry
    assert store.claim("w", T + 1001, T + 1041) is None
    _queue(store, a, 1, t=T + 1001)  # a new event makes the queue due (the worker finds the head waiting)
    assert store.claim("w", T + 1001, T + 1041) is not None


def test_queue_head_order_and_conditional_attempts(store):
    a, other = _integration(), _integration()
    store.insert_integration(a, 10)
    store.insert_integration(other, 10)
    events = _queue(store, a, 3)
    _queue(store, other, 1)
    head = store.queue_head("", a.id)
    assert head.event_id == events[0].id and head.body == events[0].body and head.attempt_count == 0
    assert store.queue_head("t2", a.id) is None
    assert store.record_attempt(head, _attempt(T, ok=False, code=500), PENDING, T + 5, keep=2)
    assert not store.record_attempt(head, _attempt(T), DELIVERED, T, keep=2)  # stale read: refused
    head = store.queue_head("", a.id)
    assert (head.event_id, head.attempt_count, head.next_attempt_ts) == (events[0].id, 1, T + 5)
    assert head.attempts == [_attempt(T, ok=False, code=500)]
    assert store.record_attempt(head, _attempt(T + 5, ok=False, code=502), PENDING, T + 15, keep=2)
    head = store.queue_head("", a.id)
    assert store.record_attempt(head, _attempt(T + 15), DELIVERED, T + 15, keep=2)
    done = next(e for e in store.list_events("") if e.id == events[0].id).deliveries[0]
    assert done.state == DELIVERED and done.attempt_count == 3
    assert [x.status_code for x in done.attempts] == [502, 200]  # the newest `keep`
    assert store.queue_head("", a.id).event_id == events[1].id


def test_deleting_an_integration_gives_up_its_pending_deliveries(store):
    a = _integration()
    store.insert_integration(a, 10)
    events = _queue(store, a, 2)
    assert store.delete_integration("", a.id, T + 1)
    for event in store.list_events(""):
        assert [(d.state, d.error) for d in event.deliveries] == [(FAILED, "integration removed")]
    assert store.queue_head("", a.id) is None
    assert len(events) == 2


def _remove_integration_row(ctx, integration_id):
    """Delete the integration behind the store's back (as a deletion racing an enqueue leaves it)."""
    if ctx.db.kind == "sqlite":
        ctx.db.conn.execute("DELETE FROM iotmanager_integrations WHERE id = ?", (integration_id,))
    else:
        ctx.db.db["iotmanager_integrations"].delete_one({"_id": integration_id})


def test_orphans_failed_and_expired_events_pruned(store, ctx):
    a, b = _integration(), _integration()
    store.insert_integration(a, 10)
    store.insert_integration(b, 10)
    _queue(store, a, 2)
    kept = _queue(store, b, 1)
    _remove_integration_row(ctx, a.id)
    assert store.fail_orphans(T + 3599, 100) == 0  # not past their deadline yet
    assert store.fail_orphans(T + 3601, 100) == 2
    states = {e.id: e.deliveries[0].state for e in store.list_events("")}
    assert states[kept[0].id] == PENDING and sorted(states.values()) == [FAILED, FAILED, PENDING]
    assert store.prune(T + 86399, 100) == 0
    assert store.prune(T + 86401, 100) == 3
    assert store.list_events("") == []
    assert store.queue_head("", b.id) is None


def test_delete_tenant(store):
    a, other = _integration(tenant="t1"), _integration(tenant="t2")
    store.insert_integration(a, 10)
    store.insert_integration(other, 10)
    _queue(store, a, 1)
    _queue(store, other, 1)
    store.delete_tenant("t1")
    assert store.list_integrations("t1") == [] and store.list_events("t1") == []
    assert len(store.list_events("t2")) == 1 and store.get_integration("t2", other.id) is not None
