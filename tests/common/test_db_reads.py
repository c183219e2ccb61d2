"""SQLite's read transactions (`SqliteDatabase.read`): a request's reads see one snapshot, a write
inside one ends it first and takes the writer lock as any write, and nothing of it outlives the
request (the WAL is not pinned past it). The direct device routes run their reads in one."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from common.db import SqliteDatabase, WriterLockTimeout
from tests.helpers import Device, Operator, traced_statements

SCHEMA = [["CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)", "INSERT INTO kv VALUES ('a', 1)"]]


@pytest.fixture
def db(tmp_path):
    database = SqliteDatabase(str(tmp_path / "r.db"), timeout=1.0, lock_timeout=0.3)
    database.migrate("kv", SCHEMA)
    yield database
    database.close()


def _other(db: SqliteDatabase) -> sqlite3.Connection:
    """Another process's view: a plain connection of its own."""
    conn = sqlite3.connect(db.path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 1000")
    return conn


def _value(conn) -> int:
    return conn.execute("SELECT v FROM kv WHERE k = 'a'").fetchone()[0]


def test_the_reads_of_a_read_context_see_one_snapshot(db):
    other = _other(db)
    with db.read() as conn:
        assert _value(conn) == 1
        other.execute("UPDATE kv SET v = 2")  # another connection commits in between
        assert _value(conn) == 1  # the same snapshot
        assert not conn.in_transaction  # a read transaction is not a write transaction
    assert _value(db.conn) == 2  # after it, the newest
    other.execute("UPDATE kv SET v = 3")
    assert _value(db.conn) == 3  # and outside one, every statement sees the newest (as before)
    other.close()


def test_a_read_context_pins_the_wal_only_while_it_is_open(db):
    """An open read transaction keeps a checkpoint from going past it (why it must stay short);
    once the context ends, a checkpoint completes."""
    other = _other(db)
    with db.read() as conn:
        _value(conn)
        other.execute("UPDATE kv SET v = 2")
        busy, frames, done = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 1  # the reader's snapshot is still needed
    busy, frames, done = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0 and frames == done == 0  # the WAL is empty again: nothing pinned it
    other.close()


def test_an_exception_ends_the_read_context(db):
    with pytest.raises(ZeroDivisionError):
        with db.read() as conn:
            _value(conn)
            1 / 0
    assert not sqlite3.Connection.in_transaction.__get__(db.conn)  # no transaction left open
    other = _other(db)
    assert other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    other.close()


def test_a_write_inside_a_read_context_ends_it_and_commits_after_a_foreign_commit(db):
    """The upgrade of a read transaction whose snapshot is stale fails in SQLite
    (SQLITE_BUSY_SNAPSHOT); a write here ends the read transaction first, so it succeeds, sees
    the newest data, and is durable at once."""
    other = _other(db)
    with db.read() as conn:
        assert _value(conn) == 1
        other.execute("UPDATE kv SET v = 2")
        conn.execute("UPDATE kv SET v = v + 10")  # one statement, committed on its own
        assert _value(conn) == 12  # the reads after it see the newest
        with db.transaction() as tx:  # a write transaction after it works as anywhere
            tx.execute("UPDATE kv SET v = v + 100")
    assert _value(other) == 112
    with db.read():
        with db.transaction() as tx:  # a transaction opened first thing in a read context
            tx.execute("INSERT INTO kv VALUES ('b', 5)")
            assert tx.in_transaction
        db.conn.executemany("INSERT INTO kv VALUES (?, ?)", [("c", 1), ("d", 2)])
    assert other.execute("SELECT count(*) FROM kv").fetchone()[0] == 4
    other.close()


def test_a_write_inside_a_read_context_takes_the_writer_lock(db):
    """Another holder of the writer lock makes the write wait (here: time out, a 503), never
    write beside it; the reads of the context go on meanwhile."""
    holder = SqliteDatabase(db.path, lock_timeout=5)
    held, release = threading.Event(), threading.Event()

    def hold():
        with holder.transaction():
            held.set()
            release.wait(5)
        holder.close()

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert held.wait(5)
        with db.read() as conn:
            assert _value(conn) == 1
            with pytest.raises(WriterLockTimeout):
                conn.execute("UPDATE kv SET v = 7")
            with pytest.raises(WriterLockTimeout):
                with db.transaction() as tx:
                    tx.execute("UPDATE kv SET v = 8")
            assert _value(conn) == 1
    finally:
        release.set()
        t.join()
    assert _value(db.conn) == 1


def test_a_read_context_joins_a_write_transaction_and_a_read_context(db):
    with db.transaction() as tx:
        tx.execute("UPDATE kv SET v = 5")
        with db.read() as conn:  # reads inside a write transaction are its own
            assert _value(conn) == 5
        assert tx.in_transaction  # the read context did not end the write transaction
    with db.read() as outer:
        with db.read() as inner:
            assert inner is outer
        assert outer.reading  # the inner one did not end the outer one
    assert not db.conn.reading


def _statements(conn, action) -> list[str]:
    return [" ".join(s.split()) for s in traced_statements(conn, action)]


def test_a_direct_device_route_reads_in_one_read_transaction(make_app):
    """The poll's reads (its token's, its history's, its candidates') run between one BEGIN and
    its COMMIT; a status report's write runs after its reads' transaction has ended, under the
    writer lock; no transaction is left open after either."""
    app = make_app("sqlite")
    client = app.test_client()
    operator = Operator.create(app, client)
    device = Device(client)
    device.auth()
    operator.accept(device)
    conn = app.extensions["mender"].db.conn
    poll = {"device_provides": {"artifact_name": "factory-image", "device_type": "test-device"}}
    path = "/api/devices/v2/deployments/device/deployments/next"

    def post():
        assert device.request("POST", path, json=poll).status_code == 204

    seen = _statements(conn, post)
    assert seen[0] == "BEGIN" and seen[-1] == "COMMIT", seen
    assert len(seen) >= 4 and all(s.startswith("SELECT") for s in seen[1:-1]), seen
    assert not sqlite3.Connection.in_transaction.__get__(conn) and not conn.reading

    def upload():
        r = device.request("PUT", "/api/devices/v1/inventory/device/attributes",
                           data=json.dumps([{"name": "os", "value": "x"}]), content_type="application/json")
        assert r.status_code == 200

    seen = _statements(conn, upload)
    assert seen[0] == "BEGIN"
    end = seen.index("COMMIT")
    assert all(s.startswith("SELECT") for s in seen[1:end]), seen
    assert "BEGIN IMMEDIATE" in seen[end:], seen  # the write, after the reads' transaction
    assert not sqlite3.Connection.in_transaction.__get__(conn) and not conn.reading
