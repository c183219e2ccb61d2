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
    original = store.update_device_deployment
    done = []

    def move_then_abort(*args):
        moved = original(*args)
        if moved and not done:
            done.append(1)
            env.svc.abort("", dep.id)
        return moved

    store.update_device_deployment = move_then_abort
    env.report("d1", dep.id, report)
    store.update_device_deployment = original
    got = env.dep(dep.id)
    counts = store.count_device_statuses("", dep.id)
    assert got.aborted and nonzero(got.stats) == counts
    assert counts == ({m.ABORTED: 2} if report != "success" else {m.SUCCESS: 1, m.ABORTED: 1})
