"""Deployment rules on both real stores: targeting, artifact choice, the device protocol,
phases, retries, abort, decommission, counters under concurrency."""

import threading
from dataclasses import replace

import pytest

from common.errors import BadRequest, Conflict, NotFound, Unprocessable
from deployments import model as m
from deployments.api import render
from deployments.model import Deployment
from deployments.service_management import _status_filter
from deployments.store import DeploymentQuery
from inventory.model import Filter
from tests.deployments.conftest import BASE, T0


def nonzero(stats):
    return {k: v for k, v in stats.items() if v}


# ---------------------------------------------------------------- creation

def test_create_to_device_list(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2", "d2"])
    got = env.dep(dep.id)
    assert got.max_devices == 2 and got.status == "pending"
    assert nonzero(env.stats(dep.id)) == {"pending": 2}
    assert sorted(env.svc.device_ids("", dep.id)) == ["d1", "d2"]


def test_create_errors(env):
    with pytest.raises(Unprocessable):
        env.create(devices=["d1"])  # no artifact with that name
    env.artifacts.add("app-2")
    with pytest.raises(BadRequest):
        env.create()  # no target
    with pytest.raises(BadRequest):
        env.create(devices=["d1"], all_devices=True)  # two targets
    with pytest.raises(BadRequest):
        env.create(name="x" * 257, devices=["d1"])
    with pytest.raises(BadRequest):
        env.create(all_devices=True)  # no accepted device
    with pytest.raises(BadRequest):
        env.create(group="empty")
    with pytest.raises(BadRequest):
        env.create(devices=["d1"], retries=101)
    with pytest.raises(NotFound):
        env.create(filter_id="nope")


def test_identical_active_deployment_conflicts_until_finished(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    with pytest.raises(Conflict):
        env.create(devices=["d1"])
    env.svc.abort("", dep.id)
    env.create(devices=["d1"])  # allowed once the first one is finished


def test_all_devices_and_group_expand_accepted_devices(env):
    env.artifacts.add("app-2")
    a = env.inventory.add(group="g1")
    b = env.inventory.add(group="g2")
    env.inventory.add(group="g1", status="pending")
    dep = env.create(all_devices=True)
    assert sorted(env.svc.device_ids("", dep.id)) == sorted([a, b])
    dep = env.create(name="g", group="g1")
    assert env.svc.device_ids("", dep.id) == [a]
    assert env.dep(dep.id).groups == ["g1"]


# ---------------------------------------------------------------- the device protocol

def test_full_success_cycle_as_the_real_client_reports(env):
    small = env.artifacts.add("app-2", size=6000)
    env.artifacts.add("app-2", size=9000)
    env.artifacts.add("app-2", device_types=("other",), size=10)
    dep = env.create(devices=["d1"])
    assert env.poll("d2") is None  # not a target
    instr = env.poll("d1")
    assert instr["id"] == dep.id
    assert instr["artifact"]["id"] == small.id  # smallest compatible
    assert instr["artifact"]["artifact_name"] == "app-2"
    assert instr["artifact"]["source"]["uri"].startswith(BASE)
    assert instr["artifact"]["device_types_compatible"] == ["dt"]
    assert env.poll("d1")["id"] == dep.id  # asked again: the same deployment
    env.report("d1", dep.id, "downloading", "downloading", "downloading", "installing")
    assert env.dep(dep.id).status == "inprogress"
    env.report("d1", dep.id, "installing", "success")
    assert nonzero(env.stats(dep.id)) == {"success": 1}
    got = env.dep(dep.id)
    assert got.status == "finished" and got.finished == T0
    assert got.total_size == 6000
    assert env.poll("d1", artifact_name="app-2") is None


def test_reboot_sequence_and_pause_states(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.report("d1", dep.id, "downloading", "pause_before_installing", "installing", "rebooting",
               "installing", "pause_before_committing", "success")
    assert env.dd_status(dep.id, "d1") == "success"


@pytest.mark.parametrize("current,new", [
    ("installing", "downloading"), ("rebooting", "downloading"), ("pause_before_committing", "rebooting"),
])
def test_out_of_order_reports_are_refused(env, current, new):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    path = {"installing": ["installing"], "rebooting": ["installing", "rebooting"],
            "pause_before_committing": ["installing", "pause_before_committing"]}[current]
    env.report("d1", dep.id, *path)
    with pytest.raises(BadRequest):
        env.report("d1", dep.id, new)
    assert env.dd_status(dep.id, "d1") == current


def test_transition_table_rows(env):
    """Every row of the device transition table is accepted from a device deployment in that state."""
    env.artifacts.add("app-2")
    routes = {
        "pending": [], "downloading": ["downloading"], "pause_before_installing": ["pause_before_installing"],
        "installing": ["installing"], "pause_before_rebooting": ["installing", "pause_before_rebooting"],
        "rebooting": ["installing", "rebooting"],
        "pause_before_committing": ["installing", "pause_before_committing"],
    }
    n = 0
    for current, allowed in m.TRANSITIONS.items():
        for new in sorted(allowed):
            n += 1
            device = f"dev-{n}"
            dep = env.create(name=f"row-{n}", devices=[device])
            env.poll(device)
            env.report(device, dep.id, *routes[current])
            assert env.dd_status(dep.id, device) == current
            env.report(device, dep.id, new)
            assert env.dd_status(dep.id, device) == new
    assert n > 30


def test_reports_after_the_end(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.report("d1", dep.id, "failure")
    env.report("d1", dep.id, "failure")  # repeated final status: no-op
    with pytest.raises(Conflict):
        env.report("d1", dep.id, "success")
    with pytest.raises(NotFound):
        env.report("d2", dep.id, "downloading")  # d2 has not been assigned it yet
    with pytest.raises(NotFound):
        env.report("intruder", dep.id, "success")
    with pytest.raises(BadRequest):
        env.report("d1", dep.id, "aborted")  # not a device status


def test_noartifact_when_no_compatible_artifact(env):
    env.artifacts.add("app-2", device_types=("other",))
    dep = env.create(devices=["d1"])
    reads = []
    original = env.artifacts.find_by_name
    env.artifacts.find_by_name = lambda *args: reads.append(args) or original(*args)
    assert env.poll("d1") is None
    assert env.dd_status(dep.id, "d1") == "noartifact"
    assert env.dep(dep.id).status == "finished"
    # the poll that found no artifact fitting at the assignment does not look again
    assert len(reads) == 1


def test_a_started_deployment_is_not_read_again_at_each_devices_first_report(env):
    """Once started a deployment never returns to pending: after the report that started it, the
    first reports of the other devices do not read the deployment to find that out."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2", "d3"])
    for device in ("d1", "d2", "d3"):
        env.poll(device)
    env.report("d1", dep.id, "downloading")  # reads it: pending, so this report starts it
    reads = []
    original = env.svc.store.get_deployment
    env.svc.store.get_deployment = lambda *args, **kw: reads.append(args) or original(*args, **kw)
    env.report("d2", dep.id, "downloading")
    env.report("d3", dep.id, "downloading")
    env.svc.store.get_deployment = original
    assert reads == []
    assert env.dep(dep.id).status == "inprogress"
    assert {k: v for k, v in env.stats(dep.id).items() if v} == {"downloading": 3}


def test_depends_must_be_satisfied_by_provides(env):
    needs = env.artifacts.add("app-2", size=100, depends={"rootfs-image.version": ["v1"]})
    plain = env.artifacts.add("app-2", size=5000)
    dep = env.create(devices=["d1", "d2"])
    assert env.poll("d1", **{"rootfs-image.version": "v1"})["artifact"]["id"] == needs.id
    assert env.poll("d2", **{"rootfs-image.version": "v0"})["artifact"]["id"] == plain.id


def test_already_installed_and_force(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    assert env.poll("d1", artifact_name="app-2") is None
    assert env.dd_status(dep.id, "d1") == "already-installed"
    assert nonzero(env.stats(dep.id)) == {"already-installed": 1}
    forced = env.create(name="forced", devices=["d2"], force_installation=True)
    assert env.poll("d2", artifact_name="app-2")["id"] == forced.id


def test_poll_needs_device_type_and_artifact_name(env):
    with pytest.raises(BadRequest):
        env.svc.next_deployment("", "d1", {"artifact_name": "x"}, BASE)
    with pytest.raises(BadRequest):
        env.svc.next_deployment("", "d1", {"device_type": "x"}, BASE)


def test_the_links_base_url_is_asked_for_only_when_there_is_a_link(env):
    """The API passes a function for the links' scheme and host: a poll that answers nothing
    (the fleet's usual poll) never calls it, one with instructions calls it once."""
    calls = []

    def base():
        calls.append(1)
        return BASE

    provides = {"artifact_name": "app-1", "device_type": "dt"}
    assert env.svc.next_deployment("", "d1", provides, base) is None
    env.artifacts.add("app-2")
    env.create(devices=["d1"])
    assert env.svc.next_deployment("", "d2", provides, base) is None
    assert calls == []
    instructions = render.instructions(env.svc.next_deployment("", "d1", provides, base))
    assert calls == [1] and instructions["artifact"]["source"]["uri"].startswith(BASE + "/")


def test_the_instructions_body_is_their_compact_json_whether_kept_or_not():
    """render.instructions_json: json.dumps(render.instructions(...), compact) byte for byte, for
    bodies it keeps (the same deployment, artifact and link: devices polling in the same second)
    and for any change of what a body is made of (another link, expiry, name, device type,
    deployment; a control map, never kept); names that JSON must escape included."""
    import json

    from deployments.artifacts.model import ArtifactBrief, Link
    from deployments.model import Instructions

    def expected(i, with_map=False):
        return json.dumps(render.instructions(i, with_map), separators=(",", ":")).encode()

    base = Instructions("dep-1", ArtifactBrief("a-1", "app-2", ["dt"], 10), Link(BASE + "/x?s=1", T0))
    variants = [
        base,
        replace(base, link=Link(BASE + "/x?s=2", T0)),
        replace(base, link=Link(BASE + "/x?s=1", T0 + 1)),
        replace(base, deployment_id="dep-2"),
        replace(base, artifact=ArtifactBrief("a-1", 'app "2" \\ é\n', ["dt"], 10)),
        replace(base, artifact=ArtifactBrief("a-1", "app-2", ["dt", "dt-2"], 10)),
        replace(base, artifact=ArtifactBrief("a-1", "app-2", [], 10)),
        replace(base, artifact=ArtifactBrief("a-1", "app-2", ["d\u00e9", "x\"y"], 10)),
    ]
    for _ in range(2):  # built, then kept
        for i in variants:
            assert render.instructions_json(i) == render.instructions_json(i, True) == expected(i)
    mapped = replace(base, update_control_map={"id": "dep-1", "priority": 1, "states": {}})
    assert render.instructions_json(mapped, True) == expected(mapped, True) != expected(base)
    assert render.instructions_json(mapped) == expected(base)


def test_oldest_deployment_first_and_never_an_older_one_after_a_newer(env):
    env.artifacts.add("app-2")
    env.artifacts.add("app-3")
    old = env.create(name="old", devices=["d1", "d2"])
    env.clock.advance(10)
    new = env.create(name="new", artifact_name="app-3", devices=["d1", "d2"])
    assert env.poll("d1")["id"] == old.id
    env.report("d1", old.id, "success")
    assert env.poll("d1", artifact_name="app-2")["id"] == new.id
    # d2 takes the newer one first (say the old one was aborted for it): the old one is not offered after
    env.svc.store.insert_device_deployment(replace(env.svc._new_device_deployment(env.dep(new.id), "d2", "dt", None),
                                                   status="success", finished=T0))
    assert env.poll("d2") is None


def test_logs(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.report("d1", dep.id, "failure")
    env.svc.upload_log("", "d1", dep.id, [{"timestamp": "2026-01-01T00:00:00Z", "level": "error",
                                               "message": "module failed"}])
    assert render.log_text(env.svc.device_log("", dep.id, "d1")) == "2026-01-01T00:00:00Z error: module failed\n"
    dds, _ = env.svc.device_deployments("", dep.id, None)
    assert dds[0].log is True
    with pytest.raises(NotFound):
        env.svc.upload_log("", "d2", dep.id, [])
    with pytest.raises(NotFound):
        env.svc.device_log("", dep.id, "d2")


# ---------------------------------------------------------------- abort, decommission, history

def test_abort(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2", "d3"])
    env.poll("d1")
    env.report("d1", dep.id, "success")
    env.poll("d2")
    env.report("d2", dep.id, "downloading")
    env.svc.abort("", dep.id)
    got = env.dep(dep.id)
    assert got.status == "finished" and got.aborted
    # regression: d3 never asked; it is counted as aborted, not dropped from the counts
    assert nonzero(env.stats(dep.id)) == {"success": 1, "aborted": 2}
    with pytest.raises(Conflict):
        env.report("d2", dep.id, "installing")  # the real client rolls back on this 409
    assert env.poll("d3") is None  # never starts
    with pytest.raises(Unprocessable):
        env.svc.abort("", dep.id)
    with pytest.raises(NotFound):
        env.svc.abort("", "nope")


def test_abort_counts_devices_that_never_asked(env):
    """Regression (issue 20): aborting made pending devices vanish (pending 2 → 0, aborted 0)."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    assert nonzero(env.stats(dep.id)) == {"pending": 2}
    env.svc.abort("", dep.id)
    assert nonzero(env.stats(dep.id)) == {"aborted": 2}
    listed = env.svc.statistics_list("", [dep.id])[0].stats
    assert listed["aborted"] == 2 and listed["pending"] == 0
    dynamic = env.create(name="dyn", filter_terms=[{"scope": "inventory", "attribute": "x", "type": "$eq",
                                                     "value": "y"}])
    env.svc.abort("", dynamic.id)  # a filter names no devices that never asked: none invented
    assert nonzero(env.stats(dynamic.id)) == {}


def test_target_is_recorded_as_chosen(env):
    env.artifacts.add("app-2")
    env.inventory.add("d1", group="lab")
    env.inventory.add("d2", group="lab")
    assert env.create(devices=["d1", "d2"]).target == {"type": "devices", "device_count": 2}
    assert env.create(name="g", group="lab").target == {"type": "group", "group": "lab"}
    assert env.create(name="a", all_devices=True).target == {"type": "all_devices"}
    terms = [{"scope": "inventory", "attribute": "x", "type": "$eq", "value": "y"}]
    assert env.create(name="f", filter_terms=terms).target == {"type": "filter"}
    got = env.dep(env.create(name="n", devices=["d3"]).id)
    assert got.target == {"type": "devices", "device_count": 1}
    assert render.deployment(got, "pending")["target"] == got.target
    # deployments made before the target was recorded: inferred
    old = Deployment(id="x", tenant_id="", name="n", artifact_name="a", created=T0)
    assert replace(old, groups=["lab"], max_devices=5).chosen_target() == {"type": "group", "group": "lab"}
    assert replace(old, groups=["lab"], max_devices=1).chosen_target() == {"type": "devices", "device_count": 1}
    assert replace(old, filter={"id": "f1", "name": "arm", "terms": terms}).chosen_target()["filter_name"] == "arm"


def test_phase_statistics(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2", "d3", "d4"],
                     phases=[{"batch_size": 50}, {"start_ts": T0 + 3600}])
    env.poll("d1")
    env.report("d1", dep.id, "success")
    env.poll("d2")
    env.report("d2", dep.id, "failure")
    assert env.poll("d3") is None  # phase 1 is full, phase 2 has not started
    phases = env.svc.phase_statistics("", dep.id)
    assert [(p.device_limit, p.device_count) for p, _ in phases] == [(2, 2), (2, 0)]
    assert nonzero(phases[0][1]) == {"success": 1, "failure": 1} and nonzero(phases[1][1]) == {}
    env.clock.advance(3601)
    env.poll("d3")
    assert nonzero(env.svc.phase_statistics("", dep.id)[1][1]) == {"pending": 1}
    assert env.svc.phase_statistics("", env.create(name="flat", devices=["d9"]).id) == []


def test_decommission_device(env):
    env.artifacts.add("app-2")
    env.artifacts.add("app-3")
    a = env.create(devices=["d1", "d2"])
    env.clock.advance(1)
    b = env.create(name="b", artifact_name="app-3", devices=["d1"])
    env.poll("d1")
    env.report("d1", a.id, "downloading")
    env.svc.decommission_device("", "d1")
    env.svc.decommission_device("", "d1")  # idempotent
    assert env.dd_status(a.id, "d1") == "decommissioned"
    assert env.dd_status(b.id, "d1") == "decommissioned"
    assert env.dep(b.id).status == "finished"
    with pytest.raises(Conflict):
        env.report("d1", a.id, "installing")
    env.poll("d2")
    env.report("d2", a.id, "success")
    assert env.dep(a.id).status == "finished"
    assert env.dep(a.id).stats["decommissioned"] == 1


def test_abort_device_and_reset_history(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.svc.abort_device("", "d1")
    assert env.dd_status(dep.id, "d1") == "aborted"
    pairs, total = env.svc.device_history("", "d1", None, 0, 20)
    assert total == 1 and pairs[0][1].id == dep.id
    again = env.create(name="again", devices=["d1"])
    env.svc.reset_history("", "d1")
    assert env.poll("d1")["id"] == again.id


def test_artifact_in_use(env):
    art = env.artifacts.add("app-2")
    other = env.artifacts.add("other")
    dep = env.create(devices=["d1"])
    assert env.svc.artifact_in_use("", art.id)
    assert not env.svc.artifact_in_use("", other.id)
    assert not env.svc.artifact_in_use("", "unknown")
    env.svc.abort("", dep.id)
    assert not env.svc.artifact_in_use("", art.id)


# ---------------------------------------------------------------- phases, retries, dynamic

def test_phases(env):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(10)]
    dep = env.create(devices=devices, phases=[{"batch_size": 30}, {"start_ts": T0 + 3600}])
    got = env.dep(dep.id)
    assert [p.device_limit for p in got.phases] == [3, 7]
    assert env.svc.status_of(got) == "pending"
    served = [d for d in devices if env.poll(d)]
    assert served == devices[:3]
    env.clock.advance(3600)
    served = [d for d in devices[3:] if env.poll(d)]
    assert served == devices[3:]
    assert [p.device_count for p in env.dep(dep.id).phases] == [3, 7]


def test_scheduled_until_the_first_phase_starts(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"], phases=[{"start_ts": T0 + 60}])
    assert env.svc.status_of(env.dep(dep.id)) == "scheduled"
    assert env.poll("d1") is None
    found, total = env.svc.find_deployments("", DeploymentQuery(status="scheduled"))
    assert total == 1 and found[0].id == dep.id
    env.clock.advance(61)
    assert env.svc.status_of(env.dep(dep.id)) == "pending"
    assert env.poll("d1")["id"] == dep.id


@pytest.mark.parametrize("phases", [
    [{"batch_size": 5}, {"start_ts": T0 + 10}],                 # 5% of 11 devices is no device
    [{"batch_size": 60}, {"batch_size": 50, "start_ts": T0 + 10}],  # more than 100%
    [{"batch_size": 50, "start_ts": T0 - 3600}, {"start_ts": T0 + 10}],  # in the past
    [{"batch_size": 50}, {"start_ts": None}],                   # later phase without a start
    [{"batch_size": 50, "start_ts": T0 + 20}, {"start_ts": T0 + 10}],  # not increasing
])
def test_bad_phases(env, phases):
    env.artifacts.add("app-2")
    with pytest.raises(BadRequest):
        env.create(devices=[f"d{i}" for i in range(11)], phases=phases)


def test_last_phase_that_rounds_to_nothing(env):
    env.artifacts.add("app-2")
    with pytest.raises(BadRequest):
        env.create(devices=[f"d{i}" for i in range(10)],
                   phases=[{"batch_size": 50}, {"batch_size": 50, "start_ts": T0 + 10}, {"start_ts": T0 + 20}])


def test_retries(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"], retries=1)
    env.poll("d1")
    env.report("d1", dep.id, "downloading", "failure")
    assert env.dep(dep.id).status == "inprogress"  # a retry is still due
    assert env.poll("d1")["id"] == dep.id  # the retry
    assert env.dd_status(dep.id, "d1") == "pending"
    env.report("d1", dep.id, "downloading", "failure")
    assert env.poll("d1") is None  # no retries left
    assert env.dep(dep.id).status == "finished"
    assert nonzero(env.stats(dep.id)) == {"failure": 1}


def test_a_device_with_a_long_history_gets_its_next_deployment_and_its_retry(env):
    """The poll decides by the device's newest final device deployment and its active ones alone
    (store.poll_device_deployments): after 30 deployments ended every way, the device still gets
    the next one and a failure with retries left is retried."""
    env.artifacts.add("app-2")
    outcomes = ["success", "failure", "already-installed"]
    for i in range(30):
        env.clock.advance(1)
        dep = env.create(name=f"old-{i}", devices=["d1"])
        assert env.poll("d1")["id"] == dep.id
        if i % 4 == 3:
            env.svc.abort("", dep.id)
        else:
            env.report("d1", dep.id, outcomes[i % 3])
    env.clock.advance(1)
    retried = env.create(name="retried", devices=["d1"], retries=2)
    assert env.poll("d1")["id"] == retried.id
    env.report("d1", retried.id, "downloading", "failure")
    assert env.poll("d1")["id"] == retried.id  # the retry, after 30 final ones
    env.report("d1", retried.id, "downloading", "success")
    assert env.poll("d1") is None
    env.clock.advance(1)
    last = env.create(name="last", devices=["d1"])
    assert env.poll("d1")["id"] == last.id
    assert nonzero(env.stats(retried.id)) == {"success": 1}


def test_dynamic_deployment_by_filter(env):
    env.artifacts.add("app-2")
    a = env.inventory.add(region="eu")
    env.inventory.add(region="us")
    dep = env.create(filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}],
                     max_devices=2)
    assert env.dep(dep.id).initial_device_count == 1
    late = env.inventory.add(region="eu")  # matches later: also gets it
    third = env.inventory.add(region="eu")
    us = [i for i, d in env.inventory.devices.items() if d["attrs"]["region"] == "us"][0]
    assert env.poll(us) is None
    assert env.poll(a)["id"] == dep.id
    assert env.poll(late)["id"] == dep.id
    assert env.poll(third) is None  # max_devices reached
    env.report(a, dep.id, "success")
    env.report(late, dep.id, "failure")
    assert env.dep(dep.id).status == "finished"


def test_saved_filter(env):
    env.artifacts.add("app-2")
    env.inventory.filters["f1"] = Filter(id="f1", name="eu", terms=[
        {"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}])
    a = env.inventory.add(region="eu")
    dep = env.create(filter_id="f1")
    assert env.dep(dep.id).filter["name"] == "eu"
    assert env.poll(a)["id"] == dep.id


# ---------------------------------------------------------------- concurrency

def test_concurrent_reports_keep_counters_exact(env):
    env.artifacts.add("app-2")
    devices = [f"d{i}" for i in range(40)]
    dep = env.create(devices=devices)
    for d in devices:
        env.poll(d)
    errors = []

    def device_run(d, final):
        try:
            for s in ("downloading", "downloading", "installing", "installing", final):
                env.report(d, dep.id, s)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=device_run, args=(d, "success" if i % 4 else "failure"))
               for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert nonzero(env.stats(dep.id)) == {"success": 30, "failure": 10}
    assert env.dep(dep.id).status == "finished"


def test_candidate_deployments_in_one_query_match_the_two_lists(env):
    # the SQLite store answers with one query; it must equal the static and dynamic lists merged
    env.artifacts.add("app-2")
    d1 = env.inventory.add(region="eu")
    static_old = env.create(name="s-old", devices=[d1, "other"])
    env.clock.advance(5)
    dynamic = env.create(name="dyn", filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq",
                                                   "value": "eu"}], max_devices=5)
    env.clock.advance(5)
    static_new = env.create(name="s-new", devices=[d1])
    env.create(name="s-elsewhere", devices=["other"])
    store = env.svc.store
    for after in (0.0, T0 + 1, T0 + 6, T0 + 11):
        merged = store.candidate_deployments("", d1, after, 50, 50)
        expected = sorted(store.candidate_static_deployments("", d1, after, 50)
                          + store.unfinished_dynamic_deployments("", after, 50), key=lambda d: (d.created, d.id))
        assert [d.id for d in merged] == [d.id for d in expected]
    assert [d.id for d in store.candidate_deployments("", d1, 0.0, 50, 50)] == \
        [static_old.id, dynamic.id, static_new.id]
    assert [d.id for d in store.candidate_deployments("", d1, 0.0, 1, 1)] == \
        [static_old.id, dynamic.id]  # each list keeps its own limit
    assert env.poll(d1)["id"] == static_old.id  # taken: no longer a candidate
    assert [d.id for d in store.candidate_deployments("", d1, 0.0, 50, 50)] == [dynamic.id, static_new.id]


def test_the_device_list_total_is_its_rows_through_a_deployment_life(env, monkeypatch):
    """devices/list's X-Total-Count (device_deployments' total) equals the rows counted, for every
    status filter, through a deployment's life; the rows are counted only where the deployment's
    counters cannot tell (a static deployment's pending and aborted: its devices that never asked
    have no row)."""
    env.artifacts.add("app-2")
    store = env.svc.store
    counted = []
    listing = store.list_device_deployments

    def spy(*args, count=True):
        counted.append(count)
        return listing(*args, count=count)

    monkeypatch.setattr(store, "list_device_deployments", spy)
    filters = [None, *m.DEVICE_STATUSES, *m.STATUS_GROUPS]

    def check(dep_id, dynamic):
        for status in filters:
            del counted[:]
            statuses = _status_filter(status)
            rows, total = listing("", dep_id, statuses, 0, None)
            assert env.svc.device_deployments("", dep_id, status, 0, 1)[1] == len(rows) == total, status
            assert counted == [not dynamic and bool({m.PENDING, m.ABORTED} & (statuses or {m.PENDING}))], status

    for dynamic in (False, True):
        region = "eu" if dynamic else "us"
        devices = [env.inventory.add(region=region) for _ in range(6)]
        if dynamic:
            dep = env.create(name="dyn", filter_terms=[{"scope": "inventory", "attribute": "region", "type": "$eq",
                                                        "value": region}])
        else:
            dep = env.create(devices=devices)
        check(dep.id, dynamic)  # nobody asked yet
        for d in devices[:5]:
            assert env.poll(d)["id"] == dep.id
        check(dep.id, dynamic)
        env.report(devices[0], dep.id, "downloading")
        env.report(devices[1], dep.id, "downloading", "installing", "rebooting", "success")
        env.report(devices[2], dep.id, "downloading", "failure")
        check(dep.id, dynamic)
        env.svc.decommission_device("", devices[3])  # asked: its row becomes decommissioned
        env.svc.decommission_device("", devices[5])  # never asked (listed: a row is written)
        check(dep.id, dynamic)
        env.svc.abort("", dep.id)
        check(dep.id, dynamic)
        for d in devices:
            env.svc.reset_history("", d)
        check(dep.id, dynamic)
