"""The deployments row's revision (SQLite, migration 7): the poll reads a deployment's revision and
counters and takes the rest of its record from a memo keyed by (tenant, id, revision), so every
write that changes what the record shows must move the revision on, or change only the counters
the poll reads with it. A wrong record here would send devices the wrong update."""

from __future__ import annotations

import re

import pytest

from deployments import model as m
from deployments.store import ASSIGNED
from deployments.store.sqlite import _COUNTERS, _REVISED_COLUMNS
from tests.deployments.test_store import T0, add_dd, deployment, device_deployment, insert, view


@pytest.fixture
def store(make_app):
    ctx = make_app("sqlite").extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.deployments.store


def _revision(store, dep) -> int:
    return store.db.conn.execute("SELECT revision FROM deployments WHERE tenant_id=? AND id=?",
                                 (dep.tenant_id, dep.id)).fetchone()[0]


def _polled(store, device, dep):
    return store.poll_history(dep.tenant_id, device, 10)[1][dep.id]


def test_an_update_naming_any_column_but_the_counters_moves_the_revision(store):
    """Every column of the table as it is (a column added later and not given to the trigger
    fails here), each named by an UPDATE that leaves its value as it was."""
    dep = insert(store, deployment())
    conn = store.db.conn
    columns = [r[1] for r in conn.execute("PRAGMA table_info(deployments)")]
    assert sorted(columns) == sorted(_REVISED_COLUMNS + _COUNTERS + ("revision",))
    for column in columns:
        before = _revision(store, dep)
        with store.db.transaction() as tx:
            tx.execute(f"UPDATE deployments SET {column} = {column} WHERE tenant_id=? AND id=?", (dep.tenant_id, dep.id))
        moved = _revision(store, dep) != before
        assert moved == (column not in _COUNTERS + ("revision",)), column


def test_inserts_start_at_random_revisions(store):
    revisions = {_revision(store, insert(store, deployment())) for _ in range(8)}
    assert len(revisions) == 8 and all(0 <= r < 2 ** 62 for r in revisions)


def test_every_write_a_poll_sees_is_in_the_next_polls_record(store):
    """The store's writes of a deployment, one by one, each followed by a poll of a device with it
    active (the history) and of a device it is a candidate of: both records equal what
    get_deployment reads (without and with its counts) after every write."""
    dep = deployment(created=T0, targets=3, phases=[(50, T0 + 1, 2), (None, T0 + 2, None)], retries=2)
    dep.update_control_map = {"priority": 1, "states": {}}
    insert(store, dep, ["d1", "d2", "d3"])
    dd = add_dd(store, dep, "d1", phase=0)

    def check():
        assert view(_polled(store, "d1", dep)) == view(store.get_deployment("", dep.id, counts=False))
        candidates = store.candidate_deployments("", "d2", 0.0, 10, 10)
        assert [view(c) for c in candidates] == [view(store.get_deployment("", dep.id))]
        assert view(store.candidate_static_deployments("", "d3", 0.0, 10)[0]) == view(store.get_deployment("", dep.id))

    check()
    writes = [
        lambda: store.assign_device("", dep, 0, device_deployment(dep, "d9", phase=0), size=100)[0] == ASSIGNED,
        lambda: store.assign_artifact("", dd, "a1", "dt", 50),
        lambda: store.adjust_stats("", dep.id, {m.FAILURE: 1, m.PENDING: -1}, retry_pending=1, total_size=7,
                                   phase=0, phase_outcomes={"failed": 1}) is not None,
        lambda: store.move_device_deployment("", dd, m.PENDING, {"status": m.DOWNLOADING}, {})[0],
        lambda: store.set_deployment_status("", dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS),
        lambda: store.pause_deployment("", dep.id, "failures", T0 + 3),
        lambda: store.resume_deployment("", dep.id, {"0": 1}),
        lambda: store.promote_phase("", dep.id, 1),
        lambda: store.set_control_map("", dep.id, {"priority": 2, "states": {"ArtifactInstall_Enter": {}}}),
        lambda: store.set_device_control_map("", dep.id, "d1", {"priority": 3, "states": {}}),
        lambda: store.set_deployment_status("", dep.id, (m.DEPLOYMENT_INPROGRESS,), m.DEPLOYMENT_INPROGRESS,
                                            aborted=True),
    ]
    for write in writes:
        assert write()
        check()
    assert store.set_deployment_status("", dep.id, (m.DEPLOYMENT_INPROGRESS,), m.DEPLOYMENT_FINISHED,
                                       finished=T0 + 9, aborted=True)
    assert view(_polled(store, "d1", dep)) == view(store.get_deployment("", dep.id, counts=False))
    assert store.candidate_deployments("", "d2", 0.0, 10, 10) == []


def test_a_deployment_made_again_with_the_same_id_is_read_again(store):
    """Another store on the same database (another worker) deletes the organization and makes its
    deployment again, with the same id and other values: this store's memo does not answer the
    old record (the new row's revision is another)."""
    dep = insert(store, deployment("t1", created=T0, name="first"), ["d1"])
    add_dd(store, dep, "d1")
    assert view(_polled(store, "d1", dep))["name"] == "first"
    other = type(store)(store.db)
    other.delete_tenant("t1")
    dep.name, dep.max_devices = "second", 7
    insert(other, dep, ["d1"])
    add_dd(other, dep, "d1")
    got = view(_polled(store, "d1", dep))
    assert (got["name"], got["max_devices"]) == ("second", 7)
    assert got == view(store.get_deployment("t1", dep.id, counts=False))


def test_a_poll_reads_the_revision_and_counters_not_the_whole_row(store):
    """The poll's statements name the row's revision and counters, not its document or other
    columns (what the memo keeps), and a repeated poll reads the row no more."""
    from tests.helpers import traced_statements
    dep = insert(store, deployment(dynamic=True))
    add_dd(store, dep, "d1")
    _polled(store, "d1", dep)
    store.candidate_deployments("", "d2", 0.0, 10, 10)
    conn = store.db.conn
    seen = traced_statements(conn, lambda: (_polled(store, "d1", dep), store.candidate_deployments("", "d2", 0.0, 10, 10)))
    assert len(seen) == 2  # the history, the candidates: the memo answered, no row read again
    for sql in seen:
        assert "d.revision" in sql and "d.*" not in sql and "* FROM deployments" not in sql
        assert not re.search(r"\bd\.(doc|name|artifact_name|status|paused|control_map|failure_ack)\b",
                             sql.split(" FROM ")[0] + sql.split(" FROM (")[-1].split(" FROM ")[0]), sql
