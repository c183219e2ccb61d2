"""What a device's authentication writes on SQLite (each write statement runs under the writer
lock, whose holder waits for the GIL after each one)."""

from __future__ import annotations

from devauth.service import TOKENS_PER_DEVICE
from tests.helpers import Operator, accepted_device, once_each, traced_statements


def test_a_known_devices_authentication_writes_one_statement(sqlite_app):
    """An accepted device authenticating again: its new token and the pruning of its others are
    one INSERT (the trigger of migration 6 deletes in it), with no BEGIN/COMMIT around it; the
    cap of tokens per device holds."""
    client = sqlite_app.test_client()
    operator = Operator.create(sqlite_app, client)
    device = accepted_device(sqlite_app, operator, client)
    conn = sqlite_app.extensions["mender"].db.conn  # the test client runs the app on this thread
    for _ in range(TOKENS_PER_DEVICE + 2):
        answers = []
        seen = traced_statements(conn, lambda: answers.append(device.auth()))
        assert answers[0].status_code == 200
        # the request's reads run in a read transaction (common.direct): its plain BEGIN and the
        # COMMIT that ends it, before the write, take no lock and write nothing
        assert seen[0] == "BEGIN" and seen[seen.index("COMMIT") - 1].startswith("SELECT"), seen
        seen = seen[1:seen.index("COMMIT")] + seen[seen.index("COMMIT") + 1:]
        writes = [s for s in once_each(seen) if not s.startswith(("SELECT", "--", "PRAGMA"))]
        assert len(writes) == 1 and writes[0].startswith("INSERT INTO devauth_tokens"), writes
    assert conn.execute("SELECT count(*) FROM devauth_tokens WHERE device_id = ?",
                        (device.id,)).fetchone()[0] == TOKENS_PER_DEVICE


def test_a_check_in_batch_is_four_statements_by_primary_key(sqlite_app):
    """A batch of check-ins: BEGIN, one read of the stale ones, one UPDATE, COMMIT, whatever its
    size (UPDATE … RETURNING stepped once per device while holding the writer lock), each driven
    by the devices' primary key (not the organization's indexes: a million devices)."""
    from devauth.store import sqlite as devauth_sqlite
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    store = ctx.services.devauth._store
    conn = ctx.db.conn
    for sql, params in ((devauth_sqlite._CHECK_INS_STALE, ('["a"]', "", 0.0)),
                        (devauth_sqlite._CHECK_INS_WRITE, (0.0, "", '["a"]'))):
        steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        assert any("USING INDEX sqlite_autoindex_devauth_devices_1 (id=?)" in s for s in steps), steps
        assert not any("tenant" in s for s in steps), steps
    client = sqlite_app.test_client()
    operator = Operator.create(sqlite_app, client)
    ids = [accepted_device(sqlite_app, operator, client).id for _ in range(3)]
    written = []
    seen = traced_statements(conn, lambda: written.extend(store.touch_check_ins("", ids + ["ghost"], 4e9, 4e9 - 60)))
    assert sorted(written) == sorted(ids)
    assert [s.split()[0] for s in seen] == ["BEGIN", "SELECT", "UPDATE", "COMMIT"], seen
    assert all(store.get_device("", i).check_in_time == 4e9 for i in ids)
