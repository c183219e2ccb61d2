"""Lock waits are bounded: another process holding SQLite's lock or the writer lock beyond
MENDER_DB_TIMEOUT_SECONDS gets writes a quick 503 with Retry-After (reads still served), and the
server recovers once the lock is released."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.helpers import Device, Operator

HOLD_EXCLUSIVE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""

HOLD_WRITER_FLOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1] + "-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("holder", [HOLD_EXCLUSIVE, HOLD_WRITER_FLOCK], ids=["begin-exclusive", "writer-flock"])
def test_a_lock_held_elsewhere_gives_quick_503_then_recovery(make_app, holder):
    app = make_app("sqlite", MENDER_DB_TIMEOUT_SECONDS="0.5")
    client = app.test_client()
    operator = Operator.create(app, client)
    db_path = app.extensions["mender"].db.path
    proc = subprocess.Popen([sys.executable, "-c", holder, db_path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        for _ in range(3):
            t0 = time.monotonic()
            r = Device(client).auth()  # a new device: its auth request writes
            assert time.monotonic() - t0 < 5  # the timeout is 0.5 s; generous for a loaded machine
            assert r.status_code == 503, r.data
            assert r.headers["Retry-After"] == "1"
            assert set(r.get_json()) == {"error", "request_id"}
        assert operator.get("/api/management/v2/devauth/devices").status_code == 200  # reads go on
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(10)
    r = Device(client).auth()
    assert r.status_code == 401, r.data  # recovered: the new device is pending
    assert operator.get("/api/management/v2/devauth/devices").status_code == 200


def test_a_new_connection_reads_while_another_process_holds_the_writer_lock(tmp_path):
    """Opening a connection sets pragmas, which write nothing: a thread's first read is served
    while another process holds the writer lock (it waited for the lock, then was a 503)."""
    import threading

    from common.db import SqliteDatabase
    db = SqliteDatabase(str(tmp_path / "x.db"), timeout=5, lock_timeout=0.3)
    db.conn.execute("CREATE TABLE t (x)")
    proc = subprocess.Popen([sys.executable, "-c", HOLD_WRITER_FLOCK, db.path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        got: list = []

        def first_read():  # a new thread: a new connection
            try:
                got.append(db.conn.execute("SELECT count(*) FROM t").fetchone()[0])
            except Exception as exc:  # noqa: BLE001 - the test's answer
                got.append(exc)

        reader = threading.Thread(target=first_read)
        reader.start()
        reader.join(30)
        assert got == [0]
    finally:
        proc.stdin.write("\n")
        proc.stdin.close()
        proc.wait(10)
        db.close()
