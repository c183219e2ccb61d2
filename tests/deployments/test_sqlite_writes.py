"""What a device's status report writes on SQLite: every write statement runs under the writer
lock, and its holder waits for the GIL after each one, so a report writes as few as it can."""

from __future__ import annotations

import pytest

from common.clock import FrozenClock
from deployments import model as m
from deployments.store.sqlite import MIGRATIONS
from tests.deployments.conftest import T0, Env
from tests.helpers import traced_writes


@pytest.fixture
def env(make_app):
    return Env(make_app("sqlite", _CLOCK=FrozenClock(T0)))


def test_a_report_between_active_statuses_is_one_statement(env):
    """Once the deployment has started, a device's downloading and installing reports are each one
    UPDATE that commits on its own (no BEGIN/COMMIT): the trigger of migration 5 moves the count
    in the same statement. The counts stay exact."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.poll("d2")
    conn = env.svc.store.db.conn
    first = traced_writes(conn, lambda: env.report("d1", dep.id, m.DOWNLOADING))
    # the first report starts the deployment: its move and the start are one transaction
    assert first[0] == "BEGIN IMMEDIATE" and first[-1] == "COMMIT"
    assert any(s.startswith("UPDATE deployments SET status=") for s in first)
    assert env.dep(dep.id).status == m.DEPLOYMENT_INPROGRESS
    for device, status in (("d2", m.DOWNLOADING), ("d1", m.INSTALLING), ("d2", m.INSTALLING)):
        writes = traced_writes(conn, lambda: env.report(device, dep.id, status))
        assert len(writes) == 1 and writes[0].startswith("UPDATE device_deployments SET"), writes
    assert {k: v for k, v in env.stats(dep.id).items() if v} == {m.INSTALLING: 2}
    assert not conn.in_transaction


def test_a_final_report_is_one_transaction_without_counter_writes(env):
    """A final report moves the device deployment (the trigger counts it) and reads the
    deployment with its counts back in one statement, all in one transaction: the decision to
    finish the deployment sees the counts this report produced."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.poll("d2")
    env.report("d1", dep.id, m.DOWNLOADING, m.INSTALLING)
    conn = env.svc.store.db.conn
    writes = traced_writes(conn, lambda: env.report("d1", dep.id, m.SUCCESS))
    assert writes[0] == "BEGIN IMMEDIATE" and writes[-1] == "COMMIT"
    assert [s for s in writes[1:-1]] == [s for s in writes[1:-1] if s.startswith("UPDATE device_deployments")]
    assert len(writes) == 3, writes
    writes = traced_writes(conn, lambda: env.report("d2", dep.id, m.FAILURE))  # the last one finishes it
    assert any(s.startswith("UPDATE deployments SET status=") for s in writes)
    got = env.dep(dep.id)
    assert got.status == m.DEPLOYMENT_FINISHED
    assert {k: v for k, v in got.stats.items() if v} == {m.SUCCESS: 1, m.FAILURE: 1}


def test_the_migration_counts_moves_of_device_deployments_made_before_it(make_app, tmp_path):
    """Migration 5 adds the counting trigger to a database whose device deployments exist (their
    `moves` start at 0): their next moves are counted once, and an update that is not a move
    (the contract's update_device_deployment) still leaves the counts to its caller."""
    data_dir = str(tmp_path / "old")
    app = make_app("sqlite", MENDER_DATA_DIR=data_dir, _CLOCK=FrozenClock(T0))
    store = app.extensions["mender"].services.deployments.store
    store.db.migrate("deployments", MIGRATIONS[:4])  # the schema before the trigger
    env = Env(app)  # migrates the other services, and deployments to the newest version
    env.artifacts.add("app-2")
    assert store.db.conn.execute("SELECT version FROM schema_migrations WHERE service='deployments'"
                                 ).fetchone()[0] == len(MIGRATIONS)
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.poll("d2")
    env.report("d1", dep.id, m.DOWNLOADING, m.INSTALLING)
    dd = store.get_device_deployment("", dep.id, "d2")
    assert store.update_device_deployment("", dd.id, m.PENDING, {"status": m.FAILURE})  # not a move: not counted
    assert {k: v for k, v in env.stats(dep.id).items() if v} == {m.PENDING: 1, m.INSTALLING: 1}


def test_an_assigning_poll_is_one_write_transaction(env):
    """A device's first poll of a deployment chooses the artifact, then writes its device
    deployment naming it and counts it (device and size) into the deployment: one transaction
    of two writes, not a second one to record the artifact."""
    artifact = env.artifacts.add("app-2", size=4096)
    dep = env.create(devices=["d1"])
    writes = traced_writes(env.svc.store.db.conn, lambda: env.poll("d1"))
    assert writes[0] == "BEGIN IMMEDIATE" and writes[-1] == "COMMIT" and len(writes) == 4, writes
    assert writes[1].startswith("INSERT INTO device_deployments") and writes[2].startswith("UPDATE deployments")
    assert env.svc.store.get_device_deployment("", dep.id, "d1").artifact_id == artifact.id
    assert env.dep(dep.id).total_size == 4096


def _created(env, **kw):
    got = []
    return got, lambda: got.append(env.create(**kw))


def test_a_deployment_to_a_device_list_writes_its_targets_in_one_statement(env):
    """The operator's deployment runs in the middle of a fleet's writes: its counters and
    targets go in as one statement each under the writer lock (an executemany took the GIL back
    from the worker's other threads for every row), and every target is there, once."""
    env.artifacts.add("app-2")
    ids = [f"dev-{i:04d}" for i in range(200)] + ["dev-0001", "dev-\u00e9\u2603"]
    conn = env.svc.store.db.conn
    got, create = _created(env, devices=ids)
    writes = traced_writes(conn, create)
    dep = got[0]
    # BEGIN, the deployment, its counters, its targets, COMMIT (no phases here)
    assert [s.split(" (")[0].split(" SELECT")[0].split(" VALUES")[0] for s in writes] == [
        "BEGIN IMMEDIATE", "INSERT INTO deployments", "INSERT INTO deployment_stats", "INSERT INTO deployment_targets",
        "COMMIT"], writes
    rows = conn.execute("SELECT device_id, created FROM deployment_targets WHERE tenant_id='' AND deployment_id=?",
                        (dep.id,)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(set(ids)) and {r[1] for r in rows} == {dep.created}
    assert env.stats(dep.id)[m.PENDING] == 201
    assert env.poll("dev-\u00e9\u2603") is not None  # a target like any other


def test_a_deployment_to_many_devices_writes_its_targets_first_a_statement_each_part(env, monkeypatch):
    """Past TARGETS_PER_TRANSACTION devices, the targets go in a statement (one hold of the writer
    lock) per part, then the deployment in its own transaction: the fleet's writes go on between
    them. No device is offered it before the last one; a duplicate leaves no targets behind."""
    from deployments.store import sqlite as store_sqlite
    monkeypatch.setattr(store_sqlite, "TARGETS_PER_TRANSACTION", 100)
    env.artifacts.add("app-2")
    ids = [f"dev-{i:04d}" for i in range(250)]
    conn = env.svc.store.db.conn
    got, create = _created(env, devices=ids)
    writes = traced_writes(conn, create)
    dep = got[0]
    kinds = [s.split(" (")[0].split(" SELECT")[0].split(" VALUES")[0] for s in writes]
    assert kinds == ["INSERT INTO deployment_targets"] * 3 + [
        "BEGIN IMMEDIATE", "INSERT INTO deployments", "INSERT INTO deployment_stats", "COMMIT"], writes
    assert not conn.in_transaction
    assert env.stats(dep.id)[m.PENDING] == 250
    assert [d for d in ids if env.poll(d) is None] == []  # every listed device is offered it
    # the same deployment again: refused before any target is written
    writes = traced_writes(conn, lambda: pytest.raises(Exception, env.create, devices=ids))
    assert writes == []
    # a race the first check cannot see: the deployment's insert refuses it, its targets are deleted
    other = [f"new-{i:04d}" for i in range(250)]
    env.create(devices=other)
    monkeypatch.setattr(conn, "execute", _first_read_finds_nothing(conn.execute), raising=False)
    before = conn.execute("SELECT count(*) FROM deployment_targets").fetchone()[0]
    with pytest.raises(Exception, match="same parameters"):
        env.create(devices=other)
    assert conn.execute("SELECT count(*) FROM deployment_targets").fetchone()[0] == before


def test_targets_of_a_deployment_that_was_never_written_are_offered_to_no_device(env):
    """A crash between a large deployment's targets and its own row leaves targets of a deployment
    that does not exist: no device is offered anything for them."""
    env.artifacts.add("app-2")
    conn = env.svc.store.db.conn
    conn.execute("INSERT INTO deployment_targets VALUES ('', 'never-written', 'dev-1', 1.0)")
    assert env.poll("dev-1") is None


def _first_read_finds_nothing(execute):
    """`execute` with the duplicate check before a large deployment's targets answering "none" (as
    when another request inserts the same deployment right after it)."""
    def patched(sql, *args):
        if sql.startswith("SELECT 1 FROM deployments WHERE tenant_id=? AND active_checksum=?"):
            return execute("SELECT 1 WHERE 0")
        return execute(sql, *args)
    return patched
