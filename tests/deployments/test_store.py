"""Contract of the deployments store: every backend (SQLite, the MongoDB store on mongomock, a real
MongoDB with TEST_MONGO_URL) answers every query the same way."""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace

import pytest

from deployments import model as m
from deployments.model import Deployment, DeviceDeployment, Phase
from deployments.store import ASSIGNED, EXISTS, NO_SLOT, DeploymentQuery, DuplicateDeployment

T0 = 1_800_000_000.0


@pytest.fixture
def store(make_app, backend):
    ctx = make_app(backend).extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.deployments.store


def view(record) -> dict:
    """A record's fields by name (the test reads records through this one door)."""
    return asdict(record)


def nonzero(stats: dict) -> dict:
    return {k: v for k, v in stats.items() if v}


def ids(records) -> list[str]:
    return [view(r)["id"] for r in records]


def deployment(tenant="", *, name="rollout", artifact_name="app-2", created=T0, dynamic=False, max_devices=0,
               phases=None, start_ts=None, checksum=None, targets=0, retries=0, status=m.DEPLOYMENT_PENDING):
    """A deployment record as the service builds one (statistics: `targets` devices pending)."""
    stats = {s: 0 for s in m.DEVICE_STATUSES}
    stats[m.PENDING] = targets
    return Deployment(
        id=str(uuid.uuid4()), tenant_id=tenant, name=name, artifact_name=artifact_name, created=created,
        status=status, start_ts=start_ts, dynamic=dynamic, max_devices=max_devices,
        filter={"terms": [{"scope": "inventory", "attribute": "a", "type": "$eq", "value": 1}]} if dynamic else None,
        phases=[Phase(id=str(uuid.uuid4()), batch_size=b, start_ts=s, device_limit=lim) for b, s, lim in phases or []],
        retries=retries, artifacts=["a1"], initial_device_count=targets, stats=stats,
        checksum=checksum or uuid.uuid4().hex)


def insert(store, dep: Deployment, targets: list[str] | None = None) -> Deployment:
    store.insert_deployment(dep, targets)
    return dep


def device_deployment(dep: Deployment, device_id: str, *, status=m.PENDING, created=None, phase=None,
                      artifact_id=None, finished=None, deleted=None, attempts=0) -> DeviceDeployment:
    return DeviceDeployment(id=str(uuid.uuid4()), tenant_id=dep.tenant_id, deployment_id=dep.id, device_id=device_id,
                            created=dep.created if created is None else created, finished=finished, status=status,
                            device_type="dt", artifact_id=artifact_id, attempts=attempts, retries=dep.retries,
                            deleted=deleted, phase=phase)


def add_dd(store, dep, device_id, **kw) -> DeviceDeployment:
    dd = device_deployment(dep, device_id, **kw)
    assert store.insert_device_deployment(dd)
    return dd


OWN_FIELDS = ("id", "tenant_id", "name", "artifact_name", "created", "finished", "status", "start_ts", "dynamic",
              "max_devices", "device_count", "retry_pending", "aborted", "groups", "filter", "retries",
              "force_installation", "artifacts", "initial_device_count", "type", "total_size", "checksum")


# ---------------------------------------------------------------- deployments

def test_insert_get_roundtrip_and_tenant_scope(store):
    dep = insert(store, deployment("t1", targets=2, phases=[(50, T0, 1), (None, T0 + 60, None)], start_ts=T0),
                 ["d1", "d2"])
    got = view(store.get_deployment("t1", dep.id))
    assert {k: got[k] for k in OWN_FIELDS} == {k: view(dep)[k] for k in OWN_FIELDS}
    assert got["stats"] == dep.stats
    assert [(p["id"], p["batch_size"], p["start_ts"], p["device_limit"], p["device_count"]) for p in got["phases"]] \
        == [(p.id, p.batch_size, p.start_ts, p.device_limit, 0) for p in dep.phases]
    brief = view(store.get_deployment("t1", dep.id, counts=False))
    assert {k: brief[k] for k in OWN_FIELDS} == {k: view(dep)[k] for k in OWN_FIELDS}
    assert store.get_deployment("t2", dep.id) is None
    assert store.get_deployment("t1", "nope") is None
    assert store.get_deployments("t2", [dep.id]) == []


def test_get_deployments_by_ids(store):
    a, b = insert(store, deployment()), insert(store, deployment())
    insert(store, deployment())
    assert sorted(ids(store.get_deployments("", [a.id, b.id, "nope"]))) == sorted([a.id, b.id])
    assert store.get_deployments("", []) == []


def test_an_identical_unfinished_deployment_is_a_duplicate_until_it_finishes(store):
    first = insert(store, deployment(checksum="same"))
    with pytest.raises(DuplicateDeployment):
        store.insert_deployment(deployment(checksum="same"), ["d1"])
    assert store.deployment_device_ids("", first.id, 0, 10) == []  # the refused one left no targets
    insert(store, deployment("other-tenant", checksum="same"))  # another tenant's is another deployment
    assert store.set_deployment_status("", first.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED,
                                       finished=T0 + 5)
    insert(store, deployment(checksum="same"))


def test_find_deployments_filters_sorting_and_paging(store):
    now = T0 + 100
    deps = [insert(store, deployment(name=f"Rollout {i}", artifact_name=f"app-{i}", created=T0 + i))
            for i in range(5)]
    scheduled = insert(store, deployment(name="later", created=T0 + 10, start_ts=now + 60))
    started = insert(store, deployment(name="begun", created=T0 + 11, start_ts=now - 60))
    insert(store, deployment("t2", name="Rollout 0", created=T0))
    store.set_deployment_status("", deps[1].id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
    store.set_deployment_status("", deps[2].id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED, finished=now)

    def find(**kw):
        kw.setdefault("limit", 100)
        found, total = store.find_deployments("", DeploymentQuery(now=now, **kw))
        return ids(found), total

    everything = [started.id, scheduled.id] + [d.id for d in reversed(deps)]
    assert find() == (everything, 7)  # newest first by default
    assert find(sort_desc=False) == (everything[::-1], 7)
    assert find(skip=2, limit=2) == (everything[2:4], 7)
    assert find(status="scheduled") == ([scheduled.id], 1)
    assert find(status="pending") == ([started.id, deps[4].id, deps[3].id, deps[0].id], 4)
    assert find(status="inprogress") == ([deps[1].id], 1)
    assert find(status="finished") == ([deps[2].id], 1)
    assert find(search="rollout 3") == ([deps[3].id], 1)  # the name, case-insensitive
    assert find(search="APP-4") == ([deps[4].id], 1)     # the artifact name
    assert find(search="(") == ([], 0)                      # a literal substring, not a pattern
    assert find(ids=[deps[0].id, deps[1].id, "nope"]) == ([deps[1].id, deps[0].id], 2)
    assert find(names=["Rollout 2", "later"]) == ([scheduled.id, deps[2].id], 2)
    assert find(created_after=T0 + 3, created_before=T0 + 10) == ([scheduled.id, deps[4].id, deps[3].id], 3)


def test_device_ids_of_a_static_and_a_dynamic_deployment(store):
    static = insert(store, deployment(targets=3), ["d3", "d1", "d2"])
    assert store.deployment_device_ids("", static.id, 0, 10) == ["d1", "d2", "d3"]
    assert store.deployment_device_ids("", static.id, 1, 1) == ["d2"]
    assert store.deployment_device_ids("t2", static.id, 0, 10) == []
    dynamic = insert(store, deployment(dynamic=True))
    assert store.deployment_device_ids("", dynamic.id, 0, 10) == []
    for device in ("e2", "e1"):
        add_dd(store, dynamic, device)
    assert store.deployment_device_ids("", dynamic.id, 0, 10) == ["e1", "e2"]  # the devices it was given to


def test_unfinished_deployment_with_artifact(store):
    dep = insert(store, deployment(artifact_name="app-9"))
    assert store.unfinished_deployment_with_artifact("", "app-9")
    assert not store.unfinished_deployment_with_artifact("", "app-8")
    assert not store.unfinished_deployment_with_artifact("t2", "app-9")
    store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED, finished=T0)
    assert not store.unfinished_deployment_with_artifact("", "app-9")


def test_set_deployment_status_is_conditional(store):
    dep = insert(store, deployment())
    assert not store.set_deployment_status("", dep.id, (m.DEPLOYMENT_INPROGRESS,), m.DEPLOYMENT_FINISHED,
                                           finished=T0)  # not in progress: a lost race changes nothing
    assert view(store.get_deployment("", dep.id))["status"] == m.DEPLOYMENT_PENDING
    assert not store.set_deployment_status("t2", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
    assert store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
    assert not store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
    assert store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                       m.DEPLOYMENT_FINISHED, finished=T0 + 7, aborted=True)
    got = view(store.get_deployment("", dep.id))
    assert (got["status"], got["finished"], got["aborted"]) == (m.DEPLOYMENT_FINISHED, T0 + 7, True)


def test_adjust_and_replace_stats(store):
    dep = insert(store, deployment(targets=3), ["d1", "d2", "d3"])
    after = view(store.adjust_stats("", dep.id, {m.PENDING: -1, m.DOWNLOADING: 1}))
    assert (after["stats"][m.PENDING], after["stats"][m.DOWNLOADING]) == (2, 1)
    assert store.adjust_stats("", dep.id, {m.DOWNLOADING: -1, m.FAILURE: 1}, retry_pending=1, total_size=500,
                              fetch=False) in (None, store.get_deployment("", dep.id))
    got = view(store.get_deployment("", dep.id))
    assert (got["stats"][m.DOWNLOADING], got["stats"][m.FAILURE], got["retry_pending"], got["total_size"]) \
        == (0, 1, 1, 500)
    after = view(store.adjust_stats("", dep.id, {}, retry_pending=-1))
    assert after["retry_pending"] == 0 and after["stats"][m.FAILURE] == 1
    store.replace_stats("", dep.id, {s: 0 for s in m.DEVICE_STATUSES} | {m.ABORTED: 3})
    assert {k: v for k, v in view(store.get_deployment("", dep.id))["stats"].items() if v} == {m.ABORTED: 3}
    assert store.adjust_stats("t2", dep.id, {m.PENDING: 1}) is None  # another tenant's: nothing to return
    assert view(store.get_deployment("", dep.id))["stats"][m.PENDING] == 0


# ---------------------------------------------------------------- assignment (slots)

def assign(store, dep, device_id, phase=None, tenant=""):
    return store.assign_device(tenant, dep, phase, device_deployment(dep, device_id, phase=phase))


def test_assign_device_counts_the_phases(store):
    dep = insert(store, deployment(targets=4, phases=[(34, T0, 1), (None, T0 + 60, 2)]), ["d1", "d2", "d3", "d4"])
    outcome, dd = assign(store, dep, "d1", 0)
    assert outcome == ASSIGNED and view(store.get_device_deployment("", dep.id, "d1")) == view(dd)
    assert view(dd)["phase"] == 0
    assert assign(store, dep, "d2", 0) == (NO_SLOT, None)  # the first phase holds one device
    assert store.get_device_deployment("", dep.id, "d2") is None  # a refused assignment writes nothing
    assert assign(store, dep, "d2", 1)[0] == ASSIGNED and assign(store, dep, "d3", 1)[0] == ASSIGNED
    assert assign(store, dep, "d4", 1) == (NO_SLOT, None)
    outcome, existing = assign(store, dep, "d1", 1)  # d1 has it already: nothing changes
    assert outcome == EXISTS and view(existing)["id"] == view(dd)["id"]
    assert assign(store, dep, "d4", 1, tenant="t2")[0] == NO_SLOT
    got = view(store.get_deployment("", dep.id))
    assert got["device_count"] == 3 and [p["device_count"] for p in got["phases"]] == [1, 2]
    assert nonzero(got["stats"]) == {m.PENDING: 4}  # a static deployment counted its devices when created
    assert got["assigning"] == []


def test_a_static_deployment_without_phases_has_no_slot_limit_but_a_finished_one_takes_none(store):
    dep = insert(store, deployment(targets=2, max_devices=2), ["d1", "d2"])
    for device in ("d1", "d2", "d3"):
        assert assign(store, dep, device)[0] == ASSIGNED
    assert view(store.get_deployment("", dep.id))["device_count"] == 3
    store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED, finished=T0)
    assert assign(store, dep, "d4") == (NO_SLOT, None)
    assert view(store.get_deployment("", dep.id))["device_count"] == 3


def test_dynamic_max_devices_caps_assignments_and_a_refused_one_leaves_the_phase_count(store):
    dep = insert(store, deployment(dynamic=True, max_devices=2, phases=[(None, T0, None)]))
    assert assign(store, dep, "a", 0)[0] == ASSIGNED and assign(store, dep, "b", 0)[0] == ASSIGNED
    assert assign(store, dep, "c", 0) == (NO_SLOT, None)  # max_devices reached (the phase itself is unlimited)
    outcome, existing = assign(store, dep, "a", 0)  # the device's own: EXISTS, not NO_SLOT
    assert outcome == EXISTS and view(existing)["device_id"] == "a"
    got = view(store.get_deployment("", dep.id))
    assert got["device_count"] == 2 and got["phases"][0]["device_count"] == 2
    assert nonzero(got["stats"]) == {m.PENDING: 2}  # a dynamic deployment counts devices as they come
    unlimited = insert(store, deployment(dynamic=True, max_devices=0))
    for device in "vwxyz":
        assert assign(store, unlimited, device)[0] == ASSIGNED
    assert view(store.get_deployment("", unlimited.id))["device_count"] == 5


def test_assign_artifact_once(store):
    dep = insert(store, deployment(targets=1), ["d1"])
    _, dd = assign(store, dep, "d1")
    assert store.assign_artifact("", dd, "art-1", "dt-x", 700)
    assert not store.assign_artifact("", dd, "art-2", "dt-y", 900)  # a concurrent poll chose one first
    got = view(store.get_device_deployment("", dep.id, "d1"))
    assert (got["artifact_id"], got["device_type"]) == ("art-1", "dt-x")
    assert view(store.get_deployment("", dep.id))["total_size"] == 700
    assert not store.assign_artifact("t2", replace(dd, artifact_id=None), "art-3", "dt", 5)


# ---------------------------------------------------------------- device deployments

def test_device_deployment_roundtrip_and_one_per_device_and_deployment(store):
    dep = insert(store, deployment(targets=1), ["d1"])
    dd = device_deployment(dep, "d1", phase=None)
    assert store.insert_device_deployment(dd)
    assert store.get_device_deployment("", dep.id, "d1") == dd
    assert not store.insert_device_deployment(device_deployment(dep, "d1"))  # one per device and deployment
    assert store.get_device_deployment("t2", dep.id, "d1") is None
    assert store.get_device_deployment("", dep.id, "d2") is None
    other = add_dd(store, dep, "d2")
    assert sorted(ids(store.device_deployments_by_ids("", [dd.id, other.id, "nope"]))) \
        == sorted([dd.id, other.id])
    assert store.device_deployments_by_ids("t2", [dd.id]) == []
    assert store.device_deployments_by_ids("", []) == []


def test_update_device_deployment_is_conditional_on_the_status(store):
    dep = insert(store, deployment(targets=1), ["d1"])
    dd = add_dd(store, dep, "d1")
    assert store.update_device_deployment("", dd.id, m.PENDING, {"status": m.DOWNLOADING, "started": T0 + 1})
    # a second writer that read `pending` loses: nothing of its update lands
    assert not store.update_device_deployment("", dd.id, m.PENDING, {"status": m.FAILURE, "substate": "x"})
    got = view(store.get_device_deployment("", dep.id, "d1"))
    assert (got["status"], got["started"], got["substate"]) == (m.DOWNLOADING, T0 + 1, None)
    assert store.update_device_deployment("", dd.id, m.DOWNLOADING, {"log": True, "artifact_id": "a1"})
    got = view(store.get_device_deployment("", dep.id, "d1"))
    assert got["log"] is True and got["artifact_id"] == "a1"
    assert not store.update_device_deployment("t2", dd.id, m.DOWNLOADING, {"status": m.SUCCESS})
    assert store.update_device_deployment("", dd.id, m.DOWNLOADING, {})  # nothing to change


def test_poll_history_reads_the_active_deployments_beside_the_history(store):
    """poll_history: poll_device_deployments (the newest final device deployment first, then the
    active ones), and the deployment of each active one as get_deployment(counts=False) reads it;
    none for final ones, other devices or tenants."""
    old = insert(store, deployment(created=T0), ["d1"])
    mid = insert(store, deployment(created=T0 + 1, phases=[(50, T0 + 1, 1), (None, T0 + 2, None)]), ["d1"])
    new = insert(store, deployment(created=T0 + 2), ["d1"])
    a = add_dd(store, old, "d1", status=m.SUCCESS, finished=T0 + 5)
    b = add_dd(store, mid, "d1", status=m.DOWNLOADING, phase=1)
    c = add_dd(store, new, "d1")
    add_dd(store, old, "d2")
    recent, deployments, briefs = store.poll_history("", "d1", 10)
    assert briefs == {}  # no artifact assigned
    assert [view(d) for d in recent] == [view(d) for d in store.poll_device_deployments("", "d1", 10)]
    assert ids(recent[:1]) == [a.id] and sorted(ids(recent[1:])) == sorted([b.id, c.id])
    assert sorted(deployments) == sorted([mid.id, new.id])
    for dep_id, dep in deployments.items():
        assert view(dep) == view(store.get_deployment("", dep_id, counts=False))
    assert view(deployments[mid.id])["phases"] == view(store.get_deployment("", mid.id, counts=False))["phases"]
    assert ids(store.poll_history("", "d1", 1)[0]) == [a.id]  # the final one comes first
    assert store.poll_history("t2", "d1", 10) == ([], {}, {})
    store.update_device_deployment("", b.id, m.DOWNLOADING, {"deleted": T0 + 10})
    assert sorted(store.poll_history("", "d1", 10)[1]) == [new.id]


def test_a_poll_reads_the_newest_final_device_deployment_and_the_active_ones_alone(store):
    """Whatever a device's past, a poll reads its newest final device deployment (by `created`,
    then id; not a deleted one) and its active ones, in every active status: not the 40 older
    final ones (a device that installed 75 deployments read 75 rows on every poll)."""
    deps = [insert(store, deployment(created=T0 + i), ["d1"]) for i in range(50)]
    finals = [m.SUCCESS, m.FAILURE, m.ABORTED, m.NOARTIFACT, m.ALREADY_INSTALLED, m.DECOMMISSIONED]
    for i, dep in enumerate(deps[:40]):
        add_dd(store, dep, "d1", status=finals[i % len(finals)], finished=T0 + 100 + i)
    active = [add_dd(store, dep, "d1", status=status)
              for dep, status in zip(deps[40:], sorted(m.ACTIVE))]  # older and newer than a final one
    newest_final = add_dd(store, deps[47], "d1", status=m.FAILURE, created=T0 + 45.5)
    tie = add_dd(store, deps[48], "d1", status=m.SUCCESS, created=T0 + 45.5)  # the same time: the larger id wins
    add_dd(store, deps[49], "d1", status=m.SUCCESS, created=T0 + 60, deleted=T0 + 61)  # deleted: not read
    add_dd(store, deps[49], "d2", status=m.SUCCESS, created=T0 + 70)  # another device
    got = store.poll_device_deployments("", "d1", 100)
    expected_final = max([newest_final, tie], key=lambda d: d.id)
    assert ids(got[:1]) == [expected_final.id]
    assert sorted(ids(got[1:])) == sorted(ids(active))
    assert {view(d)["status"] for d in got[1:]} == set(m.ACTIVE)
    assert ids(store.poll_device_deployments("", "d1", 3)[:1]) == [expected_final.id]
    assert len(store.poll_device_deployments("", "d1", 3)) == 3
    assert store.poll_device_deployments("", "nobody", 100) == []
    assert store.poll_device_deployments("t2", "d1", 100) == []


def test_poll_history_gives_each_poll_its_own_record_of_the_row_as_it_is(store):
    """A device polling again gets its deployment as the row is at that poll (SQLite keeps the
    records it built by the row's values): equal to get_deployment(counts=False), a changed row
    at the next poll, and nothing mutable shared between two polls' records (phases, window,
    filter, control map, lists)."""
    from deployments.model import MaintenanceWindow
    dep = deployment(created=T0, dynamic=True, max_devices=5, phases=[(50, T0 + 1, 1), (None, T0 + 2, None)])
    dep.window = MaintenanceWindow("22:00", "04:00", "Europe/Oslo")
    dep.update_control_map = {"priority": 1, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}
    dep.groups = ["g1"]
    insert(store, dep)
    plain = insert(store, deployment(created=T0 + 1, name="plain"), ["d1"])
    add_dd(store, dep, "d1", status=m.DOWNLOADING, phase=0)
    add_dd(store, plain, "d2")

    def polled(device="d1", dep_id=dep.id):
        return store.poll_history("", device, 10)[1][dep_id]

    first, second = polled(), polled()
    expected = view(store.get_deployment("", dep.id, counts=False))
    assert view(first) == view(second) == expected
    assert first is not second
    # the service may change what it was given: the next poll does not see it
    first.phases[0].device_count = 99
    first.window.start = "00:00"
    first.filter["terms"].append({"changed": True})
    first.update_control_map["states"].clear()
    first.groups.append("g2")
    first.artifacts.append("a2")
    first.current_phase = 7
    assert view(polled()) == expected
    assert view(polled("d2", plain.id)) == view(store.get_deployment("", plain.id, counts=False))
    # a changed row: the next poll reads it
    assert store.pause_deployment("", dep.id, "operator", T0 + 3)
    assert store.promote_phase("", dep.id, 1)
    again = view(polled())
    assert again == view(store.get_deployment("", dep.id, counts=False)) != expected
    assert (again["paused"], again["paused_reason"], again["current_phase"]) == (True, "operator", 1)


def test_poll_history_reads_the_assigned_artifacts_of_active_device_deployments(make_app, backend):
    """poll_history's briefs: what the artifacts service's get_for_device answers for the artifact
    assigned to an active device deployment, read in the same statement where the backend can
    (SQLite; MongoDB leaves them to the artifacts service); never one of a final device
    deployment, of another organization, or one deleted (then the service decides)."""
    from deployments.artifacts.model import Artifact
    ctx = make_app(backend).extensions["mender"]
    ctx.ensure_migrated()
    store, artifacts = ctx.services.deployments.store, ctx.services.artifacts

    def artifact(tenant, name, artifact_id=None):
        a = Artifact(id=artifact_id or str(uuid.uuid4()), name=name, description="", device_types=["dt", "dt2"],
                     update_types=["single-file"], info={"format": "mender", "version": 3}, signed=False,
                     updates=[], provides={"artifact_name": name}, depends={"device_type": ["dt", "dt2"]},
                     clears_provides=[], depends_idx=[], size=4096, modified=T0, storage_key=f"{name}.key")
        artifacts.store.insert_artifact(tenant, a)
        return a

    current, old = artifact("", "app-2"), artifact("", "app-1")
    artifact("t2", "other-org", artifact_id=current.id)  # the same id in another organization
    add_dd(store, insert(store, deployment(created=T0), ["d1"]), "d1", status=m.SUCCESS, finished=T0 + 5,
           artifact_id=old.id)
    active = add_dd(store, insert(store, deployment(created=T0 + 1, name="r2"), ["d1"]), "d1",
                    status=m.DOWNLOADING, artifact_id=current.id)
    recent, deployments, briefs = store.poll_history("", "d1", 10)
    assert ids(recent)[1:] == [active.id] and sorted(deployments) == [active.deployment_id]
    expected = {current.id: artifacts.get_for_device("", current.id)}
    assert briefs == (expected if backend == "sqlite" else {})
    assert view(expected[current.id]) == {"id": current.id, "name": "app-2", "device_types": ["dt", "dt2"],
                                          "size": 4096, "storage_key": "app-2.key"}
    assert store.poll_history("t2", "d1", 10) == ([], {}, {})
    artifacts.store.delete_artifact("", current.id)
    assert store.poll_history("", "d1", 10)[2] == {}


def test_device_history_queries(store):
    old = insert(store, deployment(created=T0), ["d1"])
    mid = insert(store, deployment(created=T0 + 1), ["d1"])
    new = insert(store, deployment(created=T0 + 2), ["d1"])
    a = add_dd(store, old, "d1", status=m.SUCCESS, finished=T0 + 5)
    b = add_dd(store, mid, "d1", status=m.DOWNLOADING)
    c = add_dd(store, new, "d1")
    add_dd(store, old, "d2")
    assert view(store.oldest_active_device_deployment("", "d1"))["id"] == b.id
    assert store.oldest_active_device_deployment("t2", "d1") is None
    assert ids(store.poll_device_deployments("", "d1", 10)[:1]) == [a.id]
    assert sorted(ids(store.poll_device_deployments("", "d1", 10)[1:])) == sorted([c.id, b.id])
    found, total = store.device_deployments_of_device("", "d1", None, False, 0, 10)
    assert (ids(found), total) == ([c.id, b.id, a.id], 3)
    found, total = store.device_deployments_of_device("", "d1", frozenset(m.ACTIVE), False, 1, 1)
    assert (ids(found), total) == ([b.id], 2)
    assert ids(store.last_device_deployments("", ["d1", "d2", "d1", "nobody"])) \
        == [c.id, view(store.get_device_deployment("", old.id, "d2"))["id"]]
    # soft delete: only finished ones; they leave the history unless asked for
    store.soft_delete_history("", "d1", T0 + 9)
    assert view(store.get_device_deployment("", old.id, "d1"))["deleted"] == T0 + 9
    assert view(store.get_device_deployment("", mid.id, "d1"))["deleted"] is None
    assert sorted(ids(store.poll_device_deployments("", "d1", 10))) == sorted([c.id, b.id])  # a is deleted
    assert store.device_deployments_of_device("", "d1", None, False, 0, 10)[1] == 2
    assert store.device_deployments_of_device("", "d1", None, True, 0, 10)[1] == 3
    store.update_device_deployment("", b.id, m.DOWNLOADING, {"deleted": T0 + 10})
    assert view(store.oldest_active_device_deployment("", "d1"))["id"] == c.id  # deleted ones are skipped


def test_candidate_deployments(store):
    static_old = insert(store, deployment(created=T0), ["d1", "d2"])
    dynamic = insert(store, deployment(created=T0 + 1, dynamic=True, max_devices=5))
    static_new = insert(store, deployment(created=T0 + 2), ["d1"])
    insert(store, deployment(created=T0 + 3), ["d2"])
    done = insert(store, deployment(created=T0 + 4), ["d1"])
    store.set_deployment_status("", done.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED, finished=T0)
    insert(store, deployment("t2", created=T0), ["d1"])
    assert ids(store.candidate_static_deployments("", "d1", 0.0, 10)) == [static_old.id, static_new.id]
    assert ids(store.candidate_static_deployments("", "d1", T0, 10)) == [static_new.id]  # strictly after
    assert ids(store.candidate_static_deployments("", "d1", 0.0, 1)) == [static_old.id]
    assert ids(store.unfinished_dynamic_deployments("", 0.0, 10)) == [dynamic.id]
    assert ids(store.unfinished_dynamic_deployments("", T0 + 1, 10)) == []
    assert ids(store.candidate_deployments("", "d1", 0.0, 10, 10)) \
        == [static_old.id, dynamic.id, static_new.id]
    assert ids(store.candidate_deployments("", "d1", 0.0, 1, 1)) == [static_old.id, dynamic.id]
    assert ids(store.static_deployments_listing("", "d1")) == [static_old.id, static_new.id]
    add_dd(store, static_old, "d1")  # taken: no longer a candidate
    assert ids(store.candidate_deployments("", "d1", 0.0, 10, 10)) == [dynamic.id, static_new.id]
    assert ids(store.static_deployments_listing("", "d1")) == [static_new.id]
    store.set_deployment_status("", dynamic.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED, finished=T0)
    assert ids(store.candidate_deployments("", "d1", 0.0, 10, 10)) == [static_new.id]
    assert store.candidate_deployments("t3", "d1", 0.0, 10, 10) == []


def test_device_deployments_of_a_deployment_and_their_counts(store):
    dep = insert(store, deployment(targets=4), ["d1", "d2", "d3", "d4"])
    for device, status in (("d3", m.SUCCESS), ("d1", m.PENDING), ("d4", m.DOWNLOADING), ("d2", m.FAILURE)):
        add_dd(store, dep, device, status=status)
    found, total = store.list_device_deployments("", dep.id, None, 0, None)
    assert ([view(d)["device_id"] for d in found], total) == (["d1", "d2", "d3", "d4"], 4)
    found, total = store.list_device_deployments("", dep.id, frozenset(m.TERMINAL), 1, 1)
    assert ([view(d)["device_id"] for d in found], total) == (["d3"], 2)
    found, total = store.list_device_deployments("", dep.id, frozenset(m.TERMINAL), 1, 1, count=False)
    assert ([view(d)["device_id"] for d in found], total) == (["d3"], None)  # the page only
    assert store.count_device_statuses("", dep.id) == {m.SUCCESS: 1, m.PENDING: 1, m.DOWNLOADING: 1,
                                                          m.FAILURE: 1}
    assert store.count_device_statuses("t2", dep.id) == {}
    store.close_active_device_deployments("", dep.id, m.ABORTED, T0 + 3)
    assert store.count_device_statuses("", dep.id) == {m.SUCCESS: 1, m.ABORTED: 2, m.FAILURE: 1}
    assert view(store.get_device_deployment("", dep.id, "d4"))["finished"] == T0 + 3
    assert view(store.get_device_deployment("", dep.id, "d3"))["finished"] is None  # final ones untouched


def test_device_deployment_uses_artifact(store):
    dep = insert(store, deployment(targets=2), ["d1", "d2"])
    dd = add_dd(store, dep, "d1", artifact_id="art-1", status=m.DOWNLOADING)
    add_dd(store, dep, "d2", artifact_id="art-2", status=m.SUCCESS)
    assert store.device_deployment_uses_artifact("", "art-1")
    assert not store.device_deployment_uses_artifact("", "art-2")  # only active ones count
    assert not store.device_deployment_uses_artifact("t2", "art-1")
    store.update_device_deployment("", dd.id, m.DOWNLOADING, {"status": m.FAILURE})
    assert not store.device_deployment_uses_artifact("", "art-1")


def test_logs(store):
    dep = insert(store, deployment(targets=1), ["d1"])
    assert store.get_log("", dep.id, "d1") is None
    first = [{"timestamp": "2026-01-01T00:00:00Z", "level": "info", "message": "one"}]
    store.save_log("", dep.id, "d1", first)
    assert store.get_log("", dep.id, "d1") == first
    second = first + [{"timestamp": "2026-01-01T00:00:01Z", "level": "error", "message": "two"}]
    store.save_log("", dep.id, "d1", second)  # replaced, not appended
    assert store.get_log("", dep.id, "d1") == second
    assert store.get_log("t2", dep.id, "d1") is None


def test_a_transaction_groups_calls(store):
    dep = insert(store, deployment(targets=1), ["d1"])
    with store.transaction():
        dd = add_dd(store, dep, "d1")
        store.update_device_deployment("", dd.id, m.PENDING, {"status": m.DOWNLOADING})
        store.adjust_stats("", dep.id, {m.PENDING: -1, m.DOWNLOADING: 1}, fetch=False)
    assert view(store.get_device_deployment("", dep.id, "d1"))["status"] == m.DOWNLOADING
    assert view(store.get_deployment("", dep.id))["stats"][m.DOWNLOADING] == 1


# ---------------------------------------------------------------- rollout control

def test_rollout_rules_and_state_round_trip(store):
    from deployments.model import DeploymentEvent, MaintenanceWindow
    dep = deployment(targets=4, max_devices=4, phases=[(50, T0, 2), (50, T0 + 60, None)])
    dep.failure_threshold, dep.failure_action, dep.success_threshold = 20, m.FAILURE_ABORT, 75
    dep.phases[0].failure_threshold, dep.phases[1].success_threshold = 10, 90
    dep.window = MaintenanceWindow("22:00", "04:00", "Europe/Oslo")
    dep.update_control_map = {"priority": 1, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}
    insert(store, dep)
    got = store.get_deployment("", dep.id)
    assert (got.failure_threshold, got.failure_action, got.success_threshold) == (20, "abort", 75)
    assert got.window == dep.window and got.update_control_map == dep.update_control_map
    assert got.phases[0].failure_threshold == 10 and got.phases[1].success_threshold == 90
    assert (got.paused, got.paused_reason, got.current_phase, got.failure_ack) == (False, None, 0, {})

    after = store.adjust_stats("", dep.id, {m.PENDING: -1, m.FAILURE: 1}, phase=0,
                               phase_outcomes={"failed": 1, "succeeded": 0})
    assert after.phases[0].failed == 1 and after.stats[m.FAILURE] == 1
    after = store.adjust_stats("", dep.id, {m.PENDING: -1, m.SUCCESS: 1}, phase=1,
                               phase_outcomes={"failed": 0, "succeeded": 1})
    assert (after.phases[0].failed, after.phases[1].succeeded) == (1, 1)

    assert not store.pause_deployment("", dep.id, "failure_threshold", T0, failed_at_least=(0, 2))
    assert not store.pause_deployment("", dep.id, "failure_threshold", T0, failed_at_least=(None, 2))
    assert store.pause_deployment("", dep.id, "failure_threshold", T0 + 1, failed_at_least=(0, 1))
    assert not store.pause_deployment("", dep.id, "operator", T0 + 2)  # already paused
    got = store.get_deployment("", dep.id)
    assert (got.paused, got.paused_reason, got.paused_ts) == (True, "failure_threshold", T0 + 1)
    assert store.resume_deployment("", dep.id, {"0": 1})
    assert not store.resume_deployment("", dep.id, {"0": 2})
    got = store.get_deployment("", dep.id)
    assert (got.paused, got.paused_reason, got.paused_ts, got.failure_ack) == (False, None, None, {"0": 1})

    assert store.promote_phase("", dep.id, 1) and not store.promote_phase("", dep.id, 1)
    assert store.get_deployment("", dep.id).current_phase == 1
    new_map = {"priority": 0, "states": {}}
    assert store.set_control_map("", dep.id, new_map)
    assert store.get_deployment("", dep.id).update_control_map == new_map

    assert not store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED,
                                           finished=T0, aborted=True, failed_at_least=(0, 2))
    assert store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_FINISHED,
                                       finished=T0, aborted=True, failed_at_least=(None, 1))
    for call in (lambda: store.pause_deployment("", dep.id, "operator", T0),
                 lambda: store.promote_phase("", dep.id, 2), lambda: store.set_control_map("", dep.id, new_map)):
        assert not call()  # finished

    for i, kind in enumerate(("started", "paused", "resumed")):
        store.add_event(DeploymentEvent(id=f"e{i}", tenant_id="", deployment_id=dep.id, ts=T0, type=kind,
                                        detail={"n": i}))
    store.add_event(DeploymentEvent(id="other", tenant_id="t2", deployment_id=dep.id, ts=T0, type="started"))
    events, total = store.list_events("", dep.id, 1, 10)
    assert total == 3 and [(e.id, e.type, e.detail, e.actor) for e in events] == [
        ("e1", "paused", {"n": 1}, "system"), ("e2", "resumed", {"n": 2}, "system")]


def test_paused_deployment_takes_no_device_and_device_maps(store):
    dep = insert(store, deployment(targets=2, max_devices=2), ["d1", "d2"])
    store.pause_deployment("", dep.id, "operator", T0)
    assert store.assign_device("", dep, None, device_deployment(dep, "d1")) == (NO_SLOT, None)
    store.resume_deployment("", dep.id, {})
    outcome, dd = store.assign_device("", dep, None, device_deployment(dep, "d1"))
    assert outcome == ASSIGNED
    ucm = {"priority": 0, "states": {"ArtifactCommit_Enter": {"action": "fail"}}}
    assert store.set_device_control_map("", dep.id, "d1", ucm)
    assert not store.set_device_control_map("", dep.id, "d2", ucm)  # no device deployment
    assert store.get_device_deployment("", dep.id, "d1").control_map == ucm
    store.update_device_deployment("", dd.id, m.PENDING, {"status": m.SUCCESS})
    assert not store.set_device_control_map("", dep.id, "d1", ucm)  # finished for the device


def test_failure_insight_reads(store):
    dep = insert(store, deployment(targets=6, max_devices=6))
    outcomes = {"a": (m.FAILURE, "t1", "v1"), "b": (m.FAILURE, "t1", "v0"), "c": (m.SUCCESS, "t2", "v1"),
                "d": (m.SUCCESS, "t1", "v1"), "e": (m.PENDING, "t1", "v1"), "f": (m.ALREADY_INSTALLED, "t2", None)}
    dds = {}
    for device_id, (status, device_type, previous) in outcomes.items():
        dd = replace(device_deployment(dep, device_id, status=status), device_type=device_type,
                     previous_artifact=previous)
        assert store.insert_device_deployment(dd)
        dds[device_id] = dd
    assert sorted(store.outcome_counts("", dep.id), key=str) == sorted(
        [("t1", "v1", "failure", 1), ("t1", "v0", "failure", 1), ("t2", "v1", "success", 1),
         ("t1", "v1", "success", 1)], key=str)
    assert store.get_device_deployment("", dep.id, "b").previous_artifact == "v0"
    failed = store.outcome_sample("", dep.id, m.FAILURE, 10)
    assert failed == [d for d in sorted("ab", key=lambda d: dds[d].id)]   # in device-deployment id order
    assert len(store.outcome_sample("", dep.id, m.FAILURE, 1)) == 1
    assert store.outcome_sample("other", dep.id, m.FAILURE, 10) == []
    store.save_log("", dep.id, "a", [{"level": "error", "message": "boom"}])
    store.save_log("", dep.id, "c", [{"level": "info", "message": "fine"}])
    assert store.logs_of("", dep.id, ["a", "b"]) == [[{"level": "error", "message": "boom"}]]
    assert store.logs_of("", dep.id, []) == [] and store.logs_of("other", dep.id, ["a"]) == []


def test_an_assignment_counts_the_size_of_its_artifact_once(store):
    """The artifact is chosen before the assignment and its size counted with the device (one
    write): a device assigned again (EXISTS) or refused (NO_SLOT) adds nothing, and the undone
    claim of a duplicate on MongoDB takes its size back."""
    dep = insert(store, deployment(targets=1, dynamic=True, max_devices=1), None)
    outcome, dd = store.assign_device("", dep, None, device_deployment(dep, "d1", artifact_id="a1"), 700)
    assert outcome == ASSIGNED and dd.artifact_id == "a1"
    assert store.assign_device("", dep, None, device_deployment(dep, "d1", artifact_id="a1"), 700)[0] == EXISTS
    assert store.assign_device("", dep, None, device_deployment(dep, "d2", artifact_id="a1"), 700) == (NO_SLOT, None)
    got = store.get_deployment("", dep.id)
    assert got.total_size == 700 and got.device_count == 1
    assert store.get_device_deployment("", dep.id, "d1").artifact_id == "a1"
