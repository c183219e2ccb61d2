"""Rollout safety on both real stores: failure thresholds that pause or abort, success thresholds
that gate phases, resume/continue, maintenance windows (frozen clock), the deployment's history,
and threshold crossings under concurrent reports."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from common.errors import BadRequest, Conflict, NotFound
from deployments import model as m
from tests.deployments.conftest import T0
from tests.deployments.test_races import interleave


def events(env, dep_id):
    return [(e.type, e.actor, e.detail.get("reason")) for e in env.svc.events("", dep_id, 0, 100)[0]]


def start(env, dep_id, *devices):
    for d in devices:
        assert env.poll(d)["id"] == dep_id
        env.report(d, dep_id, "downloading")


def test_failure_threshold_pauses_and_resume_accepts_the_failures_so_far(env):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(10)]
    dep = env.create(devices=devices, failure_threshold=20)  # 2 of 10
    start(env, dep.id, "d0", "d1", "d2")
    assert env.poll("d3")["id"] == dep.id          # handed out, not started yet
    env.report("d0", dep.id, "failure")
    assert not env.dep(dep.id).paused
    env.report("d1", dep.id, "failure")             # 2 of 10 = 20 %: crossed
    got = env.dep(dep.id)
    assert got.paused and got.paused_reason == "failure_threshold" and got.paused_ts == T0
    assert got.status == "inprogress"               # Mender's status values stay
    assert env.poll("d4") is None                   # no new device
    assert env.poll("d3") is None                   # handed out but not started: waits too
    env.report("d2", dep.id, "installing", "success")  # a device already installing finishes
    assert env.dd_status(dep.id, "d2") == "success"
    with pytest.raises(Conflict):
        env.svc.pause("", dep.id, "op")             # already paused

    env.svc.resume("", dep.id, "op")
    got = env.dep(dep.id)
    assert not got.paused and got.paused_reason is None and got.failure_ack["all"] == 2
    with pytest.raises(Conflict):
        env.svc.resume("", dep.id, "op")
    assert env.poll("d3")["id"] == dep.id and env.poll("d4")["id"] == dep.id
    env.report("d3", dep.id, "downloading", "failure")
    assert not env.dep(dep.id).paused                # one failure since the resume: 10 % < 20 %
    env.report("d4", dep.id, "downloading", "failure")
    assert env.dep(dep.id).paused                    # two more since the resume
    assert events(env, dep.id) == [("started", "system", None), ("paused", "system", "failure_threshold"),
                                   ("resumed", "op", None), ("paused", "system", "failure_threshold")]
    paused = env.svc.events("", dep.id, 0, 100)[0][1]
    assert paused.detail == {"reason": "failure_threshold", "phase": None, "failed": 2, "devices": 10,
                             "failure_threshold": 20}


def test_failure_action_abort_ends_the_deployment(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["a", "b", "c", "d"], failure_threshold=50, failure_action="abort")
    start(env, dep.id, "a", "b", "c")
    env.report("a", dep.id, "failure")
    assert env.dep(dep.id).status == "inprogress"
    env.report("b", dep.id, "failure")
    got = env.dep(dep.id)
    assert got.status == "finished" and got.aborted and not got.paused
    assert env.dd_status(dep.id, "c") == "aborted"
    # c was aborted, d never asked: aborted too (issue 20: aborting never drops devices from the counts)
    assert {k: v for k, v in got.stats.items() if v} == {"failure": 2, "aborted": 2}
    assert env.poll("d") is None
    kinds = events(env, dep.id)
    assert kinds[-1] == ("aborted", "system", "failure_threshold")
    aborted = env.svc.events("", dep.id, 0, 100)[0][-1]
    assert aborted.detail["statistics"]["failure"] == 2


def test_a_deployment_that_finishes_records_its_counts(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["a", "b"], failure_threshold=100)
    start(env, dep.id, "a", "b")
    env.report("a", dep.id, "success")
    env.report("b", dep.id, "failure")              # the last device: finished, not paused
    got = env.dep(dep.id)
    assert got.status == "finished" and not got.paused
    last = env.svc.events("", dep.id, 0, 100)[0][-1]
    assert last.type == "finished" and last.detail == {"statistics": {"success": 1, "failure": 1}}


def test_phase_thresholds_success_gate_and_continue(env):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(8)]
    dep = env.create(devices=devices, phases=[
        {"batch_size": 25, "start_ts": T0, "success_threshold": 100, "failure_threshold": 50},
        {"batch_size": 25, "start_ts": T0 + 3600},
        {"start_ts": T0 + 7200}], failure_threshold=90)
    start(env, dep.id, "d0", "d1")
    assert env.poll("d2") is None                    # phase 0 (2 devices) is full
    env.clock.advance(3600)
    assert env.poll("d2") is None                    # phase 1's time came, but phase 0 has no successes yet
    env.report("d0", dep.id, "success")
    assert env.poll("d2") is None                    # 50 % < 100 %
    env.report("d1", dep.id, "failure")              # 1 of 2 = 50 %: phase 0's own threshold
    assert env.dep(dep.id).paused
    env.svc.resume("", dep.id, "op")
    assert env.poll("d2") is None                    # still gated on phase 0's successes
    assert env.svc.continue_phase("", dep.id, "op") == 1
    assert env.poll("d2")["id"] == dep.id            # the operator opened phase 1 early
    assert env.svc.store.get_device_deployment("", dep.id, "d2").phase == 1
    env.clock.advance(3600)                           # phase 2's time: phase 1 has no success threshold
    start(env, dep.id, "d3")
    assert env.poll("d4")["id"] == dep.id
    assert env.dep(dep.id).current_phase == 2
    with pytest.raises(Conflict):
        env.svc.continue_phase("", dep.id, "op")     # no phase after the last
    kinds = [(e.type, e.detail.get("phase")) for e in env.svc.events("", dep.id, 0, 100)[0]]
    assert ("phase_continued", 1) in kinds and ("phase_promoted", 2) in kinds
    assert kinds.count(("phase_promoted", 2)) == 1


def test_operator_pause_and_errors(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["a", "b"])
    env.svc.pause("", dep.id, "op")
    got = env.dep(dep.id)
    assert got.paused and got.paused_reason == "operator" and got.status == "pending"
    assert env.poll("a") is None
    env.svc.resume("", dep.id, "op")
    assert env.dep(dep.id).failure_ack == {}         # an operator's pause accepts nothing
    assert env.poll("a")["id"] == dep.id
    with pytest.raises(Conflict):
        env.svc.continue_phase("", dep.id, "op")     # no phases
    env.svc.abort("", dep.id, "op")
    for action in (env.svc.pause, env.svc.resume, env.svc.continue_phase):
        with pytest.raises(Conflict):
            action("", dep.id, "op")
    with pytest.raises(NotFound):
        env.svc.pause("", "nope", "op")
    assert events(env, dep.id)[-1] == ("aborted", "op", "operator")


@pytest.mark.parametrize("kwargs", [
    {"failure_threshold": 0}, {"failure_threshold": 101}, {"failure_action": "stop"},
    {"success_threshold": True}, {"maintenance_window": {"start": "24:00", "end": "01:00"}},
    {"maintenance_window": {"start": "01:00", "end": "01:00"}},
    {"maintenance_window": {"start": "01:00", "end": "02:00", "timezone": "Mars/Olympus"}},
    {"phases": [{"batch_size": 50, "failure_threshold": 0}]},
    {"update_control_map": {"priority": 11}},
    {"update_control_map": {"states": {"ArtifactDownload_Enter": {"action": "pause"}}}},
    {"update_control_map": {"states": {"ArtifactInstall_Enter": {"action": "wait"}}}},
    {"update_control_map": {"states": {"ArtifactInstall_Enter": {"on_map_expire": "pause"}}}},
])
def test_rules_are_validated(env, kwargs):
    env.artifacts.add("app-2")
    with pytest.raises(BadRequest):
        env.create(devices=["a", "b"], **kwargs)


def test_maintenance_window_with_a_frozen_clock(env):
    """22:00–04:00 in Oslo: devices that have not started get nothing outside it; started ones go on."""
    env.artifacts.add("app-2")
    oslo = ZoneInfo("Europe/Oslo")
    env.clock.t = datetime(2027, 1, 15, 12, 0, tzinfo=oslo).timestamp()
    dep = env.create(devices=["a", "b", "c"],
                     maintenance_window={"start": "22:00", "end": "04:00", "timezone": "Europe/Oslo"})
    assert env.poll("a") is None
    env.clock.t = datetime(2027, 1, 15, 21, 59, tzinfo=oslo).timestamp()
    assert env.poll("a") is None
    env.clock.t = datetime(2027, 1, 15, 22, 0, tzinfo=oslo).timestamp()
    assert env.poll("a")["id"] == dep.id
    env.report("a", dep.id, "downloading")
    env.clock.t = datetime(2027, 1, 16, 3, 59, tzinfo=oslo).timestamp()  # after midnight, still inside
    assert env.poll("b")["id"] == dep.id
    env.clock.t = datetime(2027, 1, 16, 4, 0, tzinfo=oslo).timestamp()
    assert env.poll("b") is None                     # handed out, never started: waits for the next window
    assert env.poll("c") is None
    assert env.poll("a")["id"] == dep.id             # started: goes on outside the window
    env.report("a", dep.id, "installing", "success")
    assert env.dep(dep.id).window.timezone == "Europe/Oslo"


def test_window_keeps_local_hours_across_daylight_saving(env):
    env.artifacts.add("app-2")
    oslo = ZoneInfo("Europe/Oslo")
    dep = env.create(devices=["a", "b"], maintenance_window={"start": "02:30", "end": "03:30",
                                                             "timezone": "Europe/Oslo"})
    env.clock.t = datetime(2027, 7, 1, 2, 45, tzinfo=oslo).timestamp()   # summer time (UTC+2)
    assert env.poll("a")["id"] == dep.id
    env.clock.t = datetime(2027, 1, 1, 1, 45, tzinfo=oslo).timestamp()   # winter, 01:45 local
    assert env.poll("b") is None


def test_concurrent_failures_cross_the_threshold_once(env):
    """Twelve devices fail at once from as many threads: the deployment is paused exactly once
    and the counters stay exact."""
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(24)]
    dep = env.create(devices=devices, failure_threshold=25)   # 6 of 24
    start(env, dep.id, *devices[:12])
    barrier = threading.Barrier(12)
    errors = []

    def fail(device):
        try:
            barrier.wait()
            env.report(device, dep.id, "failure")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=fail, args=(d,)) for d in devices[:12]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = env.dep(dep.id)
    assert got.paused and got.stats["failure"] == 12
    assert [t for t, _, _ in events(env, dep.id)].count("paused") == 1


def test_two_reports_crossing_together_pause_once(env):
    """Worker A's failure is counted; before A decides, worker B's failure is counted and B
    decides. Each decides on the count its own update produced: B crosses and pauses, A (who saw
    the crossing too) finds it paused; one event."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["a", "b", "c", "d"], failure_threshold=50)
    start(env, dep.id, "a", "b", "c")
    env.report("a", dep.id, "failure")
    if env.ctx.db.kind != "sqlite":  # (on SQLite one transaction: B cannot land in between)
        interleave(env.svc.store, "move_device_deployment", lambda: env.report("c", dep.id, "failure"), after=True)
    env.report("b", dep.id, "failure")
    got = env.dep(dep.id)
    assert got.paused and got.stats["failure"] >= 2
    assert [t for t, _, _ in events(env, dep.id)].count("paused") == 1


def test_a_count_read_before_another_report_is_not_missed(env):
    """A's count (1 of 4, below 50 %) is read; B's report lands after it and counts 2: B's own
    update returns 2, so B pauses — nobody misses the crossing."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["a", "b", "c", "d"], failure_threshold=50)
    start(env, dep.id, "a", "b")
    if env.ctx.db.kind != "sqlite":
        interleave(env.svc.store, "move_device_deployment", lambda: env.report("b", dep.id, "failure"), after=True)
        env.report("a", dep.id, "failure")
    else:
        env.report("a", dep.id, "failure")
        env.report("b", dep.id, "failure")
    assert env.dep(dep.id).paused


def test_dynamic_deployment_threshold_counts_the_devices_given_so_far(env):
    env.artifacts.add("app-2")
    a, b = env.inventory.add(region="eu"), env.inventory.add(region="eu")
    dep = env.create(filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}],
                     failure_threshold=50)
    start(env, dep.id, a, b)
    env.report(a, dep.id, "failure")                 # 1 of 2 given so far
    assert env.dep(dep.id).paused


def test_update_control_map_per_deployment_and_device(env):
    env.artifacts.add("app-2")
    ucm = {"priority": 1, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}
    dep = env.create(devices=["a", "b"], update_control_map=ucm)
    env.clock.advance(1)
    plain = env.create(name="plain", devices=["a"], artifact_name="app-2", force_installation=True)
    instructions = env.svc.next_deployment("", "a", {"artifact_name": "app-1", "device_type": "dt"}, "https://x")
    assert instructions.update_control_map == {"id": dep.id, **ucm}
    assert env.svc.update_control_map("", "a", dep.id) == {"id": dep.id, **ucm}
    with pytest.raises(NotFound):
        env.svc.update_control_map("", "b", dep.id)  # b has not been given it
    env.report("a", dep.id, "downloading", "pause_before_installing")
    go = {"priority": 1, "states": {"ArtifactInstall_Enter": {"action": "continue"}}}
    env.svc.set_control_map("", dep.id, go, "op")
    assert env.svc.update_control_map("", "a", dep.id)["states"] == go["states"]
    fail = {"states": {"ArtifactInstall_Enter": {"action": "fail"}}}
    env.svc.set_control_map("", dep.id, fail, "op", device_id="a")
    assert env.svc.update_control_map("", "a", dep.id) == {"id": dep.id, "priority": 0, **fail}
    with pytest.raises(NotFound):
        env.svc.set_control_map("", dep.id, fail, "op", device_id="b")
    with pytest.raises(Conflict):
        env.svc.set_control_map("", plain.id, go, "op")  # created without a map
    env.report("a", dep.id, "failure")
    with pytest.raises(NotFound):
        env.svc.update_control_map("", "a", dep.id)  # finished for the device
    assert [e.type for e in env.svc.events("", dep.id, 0, 10)[0]].count(m.EVENT_CONTROL_MAP) == 2


def test_automatic_decisions_reach_the_audit_log_and_operator_actions_stay_the_requests(env):
    from auditlogs.model import EntryFilter
    env.artifacts.add("app-2")
    dep = env.create(devices=["d0", "d1", "d2", "d3"], failure_threshold=25, failure_action="abort")
    start(env, dep.id, "d0")
    env.svc.pause("", dep.id, "op")                  # an operator's action: the request's entry, not this one
    env.svc.resume("", dep.id, "op")
    env.report("d0", dep.id, "failure")              # 1 of 4 = 25 %: aborted by the threshold
    entries, total = env.ctx.services.auditlogs.list("", EntryFilter(object_id=dep.id), newest_first=False)
    got = [(e.action, e.actor.type, e.object_type, e.object_name) for e in entries]
    assert ("started", "system", "deployment", "rollout") in got
    assert ("aborted", "system", "deployment", "rollout") in got
    assert all(actor == "system" for _, actor, _, _ in got) and total == len(got)
    aborted = next(e for e in entries if e.action == "aborted")
    assert "failure_threshold: 25" in aborted.change and "failed: 1" in aborted.change
