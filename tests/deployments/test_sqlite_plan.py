"""The SQLite query planner answers the poll's reads from indexes, in the order they are read."""

from __future__ import annotations

from deployments.store import sqlite as store_sqlite


def _plan(conn, sql: str, params: tuple) -> list[str]:
    return [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_the_poll_history_is_read_in_index_order(sqlite_app):
    """Every poll reads the device's newest device deployments: a range of the history index,
    newest first, with no sort of its own (migration 4)."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    conn = ctx.services.deployments.store.db.conn
    for sql in (store_sqlite._POLL_HISTORY,
                "SELECT * FROM device_deployments WHERE tenant_id=? AND device_id=? AND deleted IS NULL"
                " ORDER BY created DESC, id DESC LIMIT ?"):  # recent_device_deployments
        steps = _plan(conn, sql, ("", "d1", 100))
        assert any("INDEX dd_device_history (tenant_id=? AND device_id=?)" in s for s in steps), steps
        assert not any("TEMP B-TREE" in s for s in steps), steps
