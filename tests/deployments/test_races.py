"""Races of the device protocol, made deterministic: a concurrent request is injected at the exact
point between one request's read and its conditional write, on each real store. The counters must
stay exact whoever wins."""

from __future__ import annotations

import pytest

from common.errors import Conflict
from deployments import model as m


def interleave(obj, name: str, action, *, after: bool = False):
    """Run `action()` once, just before (or just after) the next call of `obj.name`: the moment a
    concurrent request lands in the real race."""
    original = getattr(obj, name)
    pending = [action]

    def wrapper(*args, **kwargs):
        if pending and not after:
            pending.pop()()
        result = original(*args, **kwargs)
        if pending and after:
            pending.pop()()
        return result

    setattr(obj, name, wrapper)


def nonzero(stats):
    return {k: v for k, v in stats.items() if v}


def test_two_polls_of_one_device_for_a_static_deployment(env):
    """The second poll read the deployment as a candidate before the first assigned it: its insert
    loses, it gives its slot back and answers with the device deployment the first one made."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    answers = []
    interleave(env.svc.store, "candidate_deployments", lambda: answers.append(env.poll("d1")), after=True)
    answers.append(env.poll("d1"))
    assert [a["id"] for a in answers] == [dep.id, dep.id]
    got = env.dep(dep.id)
    assert got.device_count == 1
    assert nonzero(env.stats(dep.id)) == {"pending": 2}
    env.report("d1", dep.id, "success")
    env.poll("d2")
    env.report("d2", dep.id, "success")
    got = env.dep(dep.id)
    assert got.status == "finished" and got.device_count == 2
    assert nonzero(env.stats(dep.id)) == {"success": 2}


def test_two_polls_of_one_device_for_a_dynamic_deployment(env):
    """Both polls found no device deployment and claimed a slot; the loser's insert fails, its slot
    is released and the device is counted once (in device_count and in the statistics)."""
    env.artifacts.add("app-2")
    device = env.inventory.add(region="eu")
    dep = env.create(filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}],
                     max_devices=5)
    answers = []
    interleave(env.inventory, "device_matches", lambda: answers.append(env.poll(device)), after=True)
    answers.append(env.poll(device))
    assert [a["id"] for a in answers] == [dep.id, dep.id]
    got = env.dep(dep.id)
    assert got.device_count == 1
    assert nonzero(env.stats(dep.id)) == {"pending": 1}
    env.report(device, dep.id, "success")
    assert nonzero(env.stats(dep.id)) == {"success": 1}


def test_the_last_slot_of_a_dynamic_deployment_goes_to_one_device(env):
    """Two devices race for the last slot: the one whose claim comes second is refused and gets nothing."""
    env.artifacts.add("app-2")
    a, b = env.inventory.add(region="eu"), env.inventory.add(region="eu")
    dep = env.create(filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}],
                     max_devices=1)
    won = []
    interleave(env.svc.store, "candidate_deployments", lambda: won.append(env.poll(b)), after=True)
    assert env.poll(a) is None
    assert won[0]["id"] == dep.id
    assert env.dep(dep.id).device_count == 1
    assert env.svc.store.get_device_deployment("", dep.id, a) is None
    env.report(b, dep.id, "success")
    assert env.dep(dep.id).status == "finished"


def test_a_full_dynamic_deployment_is_passed_over_without_choosing_an_artifact(env):
    """The artifact is chosen before a slot is claimed; a dynamic deployment at its max_devices is
    passed over before that, so the 204 polls of the devices it no longer takes read no artifact."""
    env.artifacts.add("app-2")
    a, b = env.inventory.add(region="eu"), env.inventory.add(region="eu")
    dep = env.create(filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}],
                     max_devices=1)
    assert env.poll(a)["id"] == dep.id
    reads = []
    original = env.artifacts.find_by_name
    env.artifacts.find_by_name = lambda *args: reads.append(args) or original(*args)
    assert env.poll(b) is None
    assert reads == [] and env.svc.store.get_device_deployment("", dep.id, b) is None
    assert env.dep(dep.id).device_count == 1


def test_a_full_phase_refuses_the_second_device(env):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(4)]
    dep = env.create(devices=devices, phases=[{"batch_size": 25}, {"start_ts": env.clock.now() + 60}])
    won = []
    interleave(env.svc.store, "candidate_deployments", lambda: won.append(env.poll("d1")), after=True)
    assert env.poll("d0") is None  # the first phase (one device) filled while d0 was deciding
    assert won[0]["id"] == dep.id
    assert [p.device_count for p in env.dep(dep.id).phases] == [1, 0]
    env.clock.advance(60)
    assert env.poll("d0")["id"] == dep.id
    assert [p.device_count for p in env.dep(dep.id).phases] == [1, 1]


def test_a_status_report_that_loses_to_the_same_report(env):
    """The device repeats a report (a client retry): the second's conditional update loses, it reads
    again, finds the status already set and returns; the move is counted once."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.report("d1", dep.id, "downloading")
    interleave(env.svc.store, "get_device_deployment", lambda: env.report("d1", dep.id, "installing"),
               after=True)
    env.report("d1", dep.id, "installing")
    assert env.dd_status(dep.id, "d1") == "installing"
    assert nonzero(env.stats(dep.id)) == {"installing": 1}


def test_a_final_report_that_loses_to_another_final_report(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.report("d1", dep.id, "downloading")
    interleave(env.svc.store, "get_device_deployment", lambda: env.report("d1", dep.id, "failure"),
               after=True)
    with pytest.raises(Conflict):
        env.report("d1", dep.id, "success")  # read `downloading`, lost, read `failure`: too late
    assert env.dd_status(dep.id, "d1") == "failure"
    assert nonzero(env.stats(dep.id)) == {"failure": 1}
    got = env.dep(dep.id)
    assert got.status == "finished" and got.retry_pending == 0


def test_a_report_that_loses_to_an_abort(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    interleave(env.svc.store, "get_device_deployment", lambda: env.svc.abort("", dep.id), after=True)
    with pytest.raises(Conflict):
        env.report("d1", dep.id, "downloading")
    assert env.dd_status(dep.id, "d1") == "aborted"
    assert nonzero(env.stats(dep.id)) == {"aborted": 2}  # d2 never asked: aborted too (issue 20)
    assert env.dep(dep.id).status == "finished"


def test_two_polls_retrying_one_failure(env):
    """Both polls saw the failed device deployment with a retry left; one moves it back to pending,
    the other's conditional move loses: one retry is spent, retry_pending back to zero."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"], retries=1)
    env.poll("d1")
    env.report("d1", dep.id, "failure")
    assert env.dep(dep.id).retry_pending == 1
    won = []
    interleave(env.svc.store, "poll_history", lambda: won.append(env.poll("d1")), after=True)
    env.poll("d1")
    assert won[0]["id"] == dep.id
    dd = env.svc.store.get_device_deployment("", dep.id, "d1")
    assert (dd.status, dd.attempts) == (m.PENDING, 1)
    got = env.dep(dep.id)
    assert got.retry_pending == 0 and nonzero(got.stats) == {"pending": 1}
    assert env.poll("d1")["id"] == dep.id
    env.report("d1", dep.id, "success")
    got = env.dep(dep.id)
    assert got.status == "finished" and nonzero(got.stats) == {"success": 1}
