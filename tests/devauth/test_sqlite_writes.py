"""What a device's authentication writes on SQLite (each write statement runs under the writer
lock, whose holder waits for the GIL after each one)."""

from __future__ import annotations

from devauth.service import TOKENS_PER_DEVICE
from tests.helpers import Operator, accepted_device


def test_a_known_devices_authentication_writes_one_statement(sqlite_app):
    """An accepted device authenticating again: its new token and the pruning of its others are
    one INSERT (the trigger of migration 6 deletes in it), with no BEGIN/COMMIT around it; the
    cap of tokens per device holds."""
    client = sqlite_app.test_client()
    operator = Operator.create(sqlite_app, client)
    device = accepted_device(sqlite_app, operator, client)
    conn = sqlite_app.extensions["mender"].db.conn  # the test client runs the app on this thread
    for _ in range(TOKENS_PER_DEVICE + 2):
        seen: list[str] = []
        conn.set_trace_callback(seen.append)
        try:
            assert device.auth().status_code == 200
        finally:
            conn.set_trace_callback(None)
        writes = [s for i, s in enumerate(seen) if (i == 0 or s != seen[i - 1])
                  and not s.startswith(("SELECT", "--", "PRAGMA"))]
        assert len(writes) == 1 and writes[0].startswith("INSERT INTO devauth_tokens"), writes
    assert conn.execute("SELECT count(*) FROM devauth_tokens WHERE device_id = ?",
                        (device.id,)).fetchone()[0] == TOKENS_PER_DEVICE
