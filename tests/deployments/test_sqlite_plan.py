"""The SQLite query planner answers the poll's reads from indexes, in the order they are read."""

from __future__ import annotations

from deployments import model as m
from deployments.store import sqlite as store_sqlite


def _plan(conn, sql: str, params: tuple) -> list[str]:
    return [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_the_poll_history_is_read_from_indexes_whatever_the_devices_past(sqlite_app):
    """Every poll reads the device's newest final device deployment (a range of the history index,
    newest first, with no sort of its own: migration 4) and its active ones (ranges of the status
    index), then each of those rows by its rowid, with its deployment and
    its artifact by their primary keys: never the device's whole history."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    conn = ctx.services.deployments.store.db.conn
    steps = _plan(conn, store_sqlite._POLL_HISTORY, ("", "d1", 100))
    assert any("INDEX dd_device_history (tenant_id=? AND device_id=?)" in s for s in steps), steps
    ranges = [s for s in steps if "USING INDEX dd_device (tenant_id=? AND device_id=? AND status" in s]
    assert len(ranges) == len(store_sqlite._active_runs()) == 3, steps
    assert any("SEARCH dd USING INTEGER PRIMARY KEY (rowid=?)" in s for s in steps), steps
    assert any("SEARCH d USING INDEX sqlite_autoindex_deployments_1 (tenant_id=? AND id=?)" in s for s in steps), steps
    assert any("SEARCH a USING INDEX sqlite_autoindex_artifacts_1 (tenant_id=? AND id=?)" in s for s in steps), steps
    assert not any("TEMP B-TREE" in s or s.startswith("SCAN dd") for s in steps), steps


def test_the_active_runs_cover_the_active_statuses_alone():
    """The status index's ranges the poll reads hold every active status and no final one."""
    statuses = sorted(m.DEVICE_STATUSES)
    covered = {s for first, last in store_sqlite._active_runs() for s in statuses if first <= s <= last}
    assert covered == set(m.ACTIVE)


def test_a_polls_static_candidates_are_the_devices_own_targets(sqlite_app):
    """A 204 poll asks which static deployments list the device: the device's rows of the targets
    index drive, whatever the statistics say. Driven by the organization's deployments instead
    (SQLite's choice when ANALYZE ran while there was one deployment and no target, as on the
    seeded million-device database), every poll would read every deployment the organization
    ever made."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    conn = ctx.services.deployments.store.db.conn
    with ctx.services.deployments.store.db.transaction() as tx:
        tx.execute("ANALYZE")  # makes sqlite_stat1; then the statistics of that database
        tx.execute("DELETE FROM sqlite_stat1 WHERE tbl IN ('deployments', 'deployment_targets')")
        tx.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('deployments', ?, ?)", [
            ("sqlite_autoindex_deployments_1", "1 1 1"), ("deployments_created", "1 1 1"),
            ("deployments_status", "1 1 1 1"), ("deployments_artifact", "1 1 1 1"),
            ("deployments_dynamic", "1 1 1 1 1"), ("deployments_active_checksum", "1 1 1")])
    conn.execute("ANALYZE sqlite_schema")  # this connection reloads them
    for sql, params in ((store_sqlite._STATIC_CANDIDATES, ("", "d1", 0.0, 10)),
                        (f"SELECT * FROM ({store_sqlite._STATIC_CANDIDATES}) UNION ALL"
                         f" SELECT * FROM ({store_sqlite._DYNAMIC_CANDIDATES})", ("", "d1", 0.0, 10, "", 0.0, 10))):
        steps = _plan(conn, sql, params)
        first = next(s for s in steps if s.startswith(("SEARCH", "SCAN")))
        assert "deployment_targets_device_order (tenant_id=? AND device_id=?" in first, steps
        assert not any("TEMP B-TREE" in s for s in steps), steps


def test_a_polls_candidates_are_read_in_index_order(sqlite_app):
    """Both lists of candidates (`ORDER BY ... LIMIT`) come in the order of an index (migration 6):
    a temporary B-tree to sort them was made, paged and dropped on every 204 poll, with or
    without a row in it. The open dynamic deployments come from their own partial index whatever
    the statistics say (test above: those of the seeded million-device database)."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    conn = ctx.services.deployments.store.db.conn
    steps = _plan(conn, f"SELECT * FROM ({store_sqlite._STATIC_CANDIDATES}) UNION ALL"
                        f" SELECT * FROM ({store_sqlite._DYNAMIC_CANDIDATES})", ("", "d1", 0.0, 10, "", 0.0, 10))
    assert any("INDEX deployment_targets_device_order (tenant_id=? AND device_id=? AND created>?)" in s
               for s in steps), steps
    assert any("INDEX deployments_dynamic_open (tenant_id=? AND created>?)" in s for s in steps), steps
    assert not any("TEMP B-TREE" in s for s in steps), steps


def test_the_poll_history_makes_no_temporary_table(sqlite_app):
    """The history's joins test "active" by comparisons: `status IN (seven statuses)` made SQLite
    build a temporary B-tree of the list on every poll of a device with a history (twice)."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    conn = ctx.services.deployments.store.db.conn
    for sql, params in ((store_sqlite._POLL_HISTORY, ("", "d1", 100)),
                        (f"SELECT * FROM ({store_sqlite._STATIC_CANDIDATES}) UNION ALL"
                         f" SELECT * FROM ({store_sqlite._DYNAMIC_CANDIDATES})", ("", "d1", 0.0, 10, "", 0.0, 10))):
        opcodes = [r[1] for r in conn.execute(f"EXPLAIN {sql}", params)]
        assert "OpenEphemeral" not in opcodes and "SorterOpen" not in opcodes, opcodes
