"""Multi-step writes of deployments whose steps land one by one on MongoDB (no transaction on a
standalone server): a crash or a concurrent request between two steps leaves a state that is
correct or repaired. The crash or the interleaving is injected, deterministically, on each store."""

from __future__ import annotations

import pytest

from common.errors import Conflict
from deployments import model as m
from common.clock import FrozenClock
from tests.conftest import _backend_params
from tests.deployments.conftest import T0, Env
from tests.deployments.test_crash import Killed, WriteTap, kill_after, nonzero, roll_out


@pytest.fixture(params=[p for p in _backend_params() if p.id != "sqlite"])
def mongo_env(make_app, request):
    """Env on the MongoDB stores only: on SQLite the interleavings below cannot happen (the steps
    are one transaction under the writer lock)."""
    return Env(make_app(request.param, _CLOCK=FrozenClock(T0)))


def test_a_crash_while_creating_a_deployment_leaves_nothing_the_retry_trips_over(env, monkeypatch):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(3)]
    tap = WriteTap(monkeypatch, env.svc.store)
    tap.around(env.svc.store, "insert_deployment", kill_after(1))
    with pytest.raises(Killed):
        env.create(devices=devices)
    env.svc.store.insert_deployment = type(env.svc.store).insert_deployment.__get__(env.svc.store)
    assert env.poll("d0") is None  # nothing half-made is offered
    dep = env.create(devices=devices)  # the operator's retry is not refused as a duplicate
    with pytest.raises(Conflict):  # (while it is unfinished, the same one again is)
        env.create(devices=devices)
    assert roll_out(env, dep.id, devices) == []
    got = env.dep(dep.id)
    assert got.status == "finished" and nonzero(got.stats) == {"success": 3}


@pytest.mark.parametrize("report", ["downloading", "success"])
def test_an_abort_between_a_status_move_and_its_counters(mongo_env, report):
    """A device's status report moves its device deployment, then adds to the statistics; an
    abort that closes and recounts in between must not be followed by the stale increment."""
    env = mongo_env
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.poll("d2")
    store = env.svc.store
    original = store._settle  # the counters of a move that has landed
    done = []

    def abort_then_settle(*args):
        if not done:
            done.append(1)
            env.svc.abort("", dep.id)
        return original(*args)

    store._settle = abort_then_settle
    env.report("d1", dep.id, report)
    store._settle = original
    assert done
    got = env.dep(dep.id)
    counts = store.count_device_statuses("", dep.id)
    assert got.aborted and nonzero(got.stats) == counts
    assert counts == ({m.ABORTED: 2} if report != "success" else {m.SUCCESS: 1, m.ABORTED: 1})


def test_targets_left_active_by_a_failover_are_repaired_and_crowd_nothing_out(mongo_env, monkeypatch):
    """Finishing a deployment deactivates its targets with update_many, which a failover can cut
    short (not retryable): the device's poll repairs them and still finds its newer deployments."""
    from deployments.store import mongo as store_mod
    from deployments.service_protocol import CANDIDATE_BATCH
    env = mongo_env
    env.artifacts.add("app-2")
    store = env.svc.store
    collection = type(store.targets)
    original = collection.update_many

    def lost_on_targets(self, *args, **kwargs):
        if self.name == store_mod.TARGETS:
            raise Killed()  # the primary stepped down: the targets stay active
        return original(self, *args, **kwargs)

    old = []
    for i in range(CANDIDATE_BATCH * 5 + 1):  # more than the window of targets a poll reads
        dep = env.create(name=f"old-{i}", devices=["d1", "d2"])
        env.clock.advance(1)
        monkeypatch.setattr(collection, "update_many", lost_on_targets)
        with pytest.raises(Killed):
            env.svc.abort("", dep.id)
        monkeypatch.setattr(collection, "update_many", original)
        old.append(dep.id)
    assert store.targets.count_documents({"deployment_id": {"$in": old}, "active": True}) == 2 * len(old)
    new = env.create(name="new", devices=["d1"])
    assert env.poll("d1") is None  # this poll met a full window of stale targets and repaired them
    assert env.poll("d1")["id"] == new.id
    assert store.targets.count_documents({"device_id": "d1", "deployment_id": {"$in": old}, "active": True}) == 0


def test_the_history_read_of_a_poll_has_an_index_in_its_sort_order(mongo_env):
    keys = [[k for k, _ in spec["key"]] for spec in mongo_env.svc.store.dds.index_information().values()]
    assert ["tenant_id", "device_id", "created", "_id"] in keys


def test_all_devices_past_the_list_limit_is_refused_with_one_read(env, monkeypatch):
    from common.errors import BadRequest
    env.artifacts.add("app-2")
    for _ in range(4):
        env.inventory.add()
    calls = []
    original = env.inventory.all_device_ids
    monkeypatch.setattr(env.inventory, "all_device_ids", lambda *a, **kw: calls.append(kw) or original(*a, **kw))
    monkeypatch.setattr(m, "MAX_DEVICES_PER_LIST_DEPLOYMENT", 3)
    with pytest.raises(BadRequest):
        env.create(all_devices=True)
    monkeypatch.setattr(m, "MAX_DEVICES_PER_LIST_DEPLOYMENT", 4)
    assert env.create(all_devices=True).max_devices == 4
    assert [c["limit"] for c in calls] == [4, 5]


def test_every_device_of_a_deployment_in_batches_of_the_index(env, monkeypatch):
    """The unpaged device listing reads keyset batches in device id order: none lost or repeated
    across a batch boundary, whatever the backend; an unknown deployment is NotFound up front."""
    from common.errors import NotFound
    from deployments import service_management
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in (5, 1, 4, 2, 3)]
    dep = env.create(devices=devices)
    for d in devices:
        env.poll(d)
    store = env.svc.store
    assert [dd.device_id for dd in store.device_deployments_after("", dep.id, "d2", 2)] == ["d3", "d4"]
    assert store.device_deployments_after("", dep.id, "d5", 2) == []
    assert store.device_deployments_after("other", dep.id, "", 10) == []
    monkeypatch.setattr(service_management, "DEVICE_BATCH", 2)
    batches = list(env.svc.each_device_deployment("", dep.id))
    assert [[dd.device_id for dd in b] for b in batches] == [["d1", "d2"], ["d3", "d4"], ["d5"]]
    with pytest.raises(NotFound):
        env.svc.each_device_deployment("", "nope")


def test_a_status_report_killed_after_any_of_its_writes_counts_once(env, monkeypatch, backend):
    """The device deployment's move and its deployment's counters: one statement on SQLite (a
    trigger counts the move; when the deployment starts with it, one transaction with its start);
    on MongoDB the move carries a note of the counter change, which the device's next request
    applies once. Killed after each of its writes in turn, however many there are on this
    backend, the retried report and the rest count every device once."""
    env.artifacts.add("app-2")
    original = env.svc.store.move_device_deployment
    killed = 0
    for kill_at in range(1, 10):
        devices = [f"d1-{kill_at}", f"d2-{kill_at}"]
        dep = env.create(devices=devices)
        for d in devices:
            env.poll(d)
        tap = WriteTap(monkeypatch, env.svc.store)
        tap.around(env.svc.store, "move_device_deployment", kill_after(kill_at))
        try:
            env.report(devices[0], dep.id, "downloading")
        except Killed:
            killed += 1
        env.svc.store.move_device_deployment = original
        env.report(devices[0], dep.id, "downloading", "installing", "success")  # the client retries, then goes on
        env.report(devices[1], dep.id, "failure")
        got = env.dep(dep.id)
        counts = env.svc.store.count_device_statuses("", dep.id)
        assert counts == {m.SUCCESS: 1, m.FAILURE: 1} and nonzero(got.stats) == counts
        assert got.status == "finished"
        if killed < kill_at:  # the move made fewer writes than kill_at: every one was covered
            break
    assert killed == kill_at - 1 >= 1
