"""Storage backends: migrations, concurrency of migrations, health when the database is gone."""

import multiprocessing
import os
import time

import pytest

from common.db import MongoDatabase, SqliteDatabase, open_database
from common.errors import ConfigError, Unavailable
from tests.helpers import backend_config

SQL_MIGRATIONS = [
    ["CREATE TABLE things (id TEXT PRIMARY KEY, n INTEGER NOT NULL)"],
    ["CREATE INDEX things_n ON things (n)", "INSERT INTO things (id, n) VALUES ('seed', 1)"],
]


def mongo_migrations(calls):
    def m1(db):
        calls.append(1)
        db["things"].create_index("n")

    def m2(db):
        calls.append(2)
        db["things"].update_one({"_id": "seed"}, {"$set": {"n": 1}}, upsert=True)

    return [m1, m2]


def test_open_database_selects_backend(tmp_path):
    assert isinstance(open_database(f"sqlite:///{tmp_path}/x.db"), SqliteDatabase)
    assert open_database(f"sqlite:///{tmp_path}/x.db").path == f"{tmp_path}/x.db"
    assert isinstance(open_database("mongodb://127.0.0.1:1/foo"), MongoDatabase)
    assert open_database("mongodb://127.0.0.1:1/foo").db_name == "foo"
    assert open_database("mongodb://127.0.0.1:1").db_name == "mender"
    with pytest.raises(ConfigError):
        open_database("postgres://x/y")
    with pytest.raises(ConfigError):
        open_database("sqlite:///")


def test_migrations_apply_once_and_are_idempotent(make_app, backend):
    db = make_app(backend).extensions["mender"].db
    if db.kind == "sqlite":
        assert db.migrate("svc", SQL_MIGRATIONS) == 2
        assert db.migrate("svc", SQL_MIGRATIONS) == 2
        assert db.conn.execute("SELECT count(*) FROM things").fetchone()[0] == 1
        # a later release adds a migration: only the new one runs
        assert db.migrate("svc", SQL_MIGRATIONS + [["ALTER TABLE things ADD COLUMN x TEXT"]]) == 3
        with pytest.raises(ConfigError):
            db.migrate("svc", SQL_MIGRATIONS)  # the database is newer than this code
    else:
        calls = []
        assert db.migrate("svc", mongo_migrations(calls)) == 2
        assert db.migrate("svc", mongo_migrations(calls)) == 2
        assert calls == [1, 2]
        assert db.db["migration_info"].find_one({"_id": "svc"})["version"] == 2


def test_sqlite_uses_wal(make_app):
    db = make_app("sqlite").extensions["mender"].db
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_sqlite_reads_do_not_map_the_database_file(tmp_path):
    """Pages are read, never memory-mapped: in WAL mode SQLite unmaps a connection's whole mapping
    at every read transaction that follows another connection's commit (common/db.py,
    SQLITE_MMAP_BYTES), which under a stream of writes cost an munmap, an mmap and page faults
    per read (the fleet's wave: bench/README.md, issue 21)."""
    path = str(tmp_path / "m.db")
    writer, reader = SqliteDatabase(path), SqliteDatabase(path)
    writer.migrate("svc", SQL_MIGRATIONS)
    assert reader.conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
    for i in range(3):
        writer.conn.execute("INSERT INTO things (id, n) VALUES (?, ?)", (f"t{i}", i))
        assert reader.conn.execute("SELECT count(*) FROM things").fetchone()[0] == i + 2
    with open("/proc/self/maps") as maps:
        assert not [line for line in maps if line.rstrip().endswith(path)]


def _migrate_in_process(path, barrier):
    db = SqliteDatabase(path)
    barrier.wait()
    db.migrate("svc", SQL_MIGRATIONS)


def test_sqlite_concurrent_migration_from_several_processes(tmp_path):
    path = str(tmp_path / "m.db")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_migrate_in_process, args=(path, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    db = SqliteDatabase(path)
    assert db.conn.execute("SELECT count(*) FROM things").fetchone()[0] == 1
    assert db.conn.execute("SELECT version FROM schema_migrations WHERE service='svc'").fetchone()[0] == 2


def test_sqlite_connection_per_thread(tmp_path):
    import threading
    db = SqliteDatabase(str(tmp_path / "t.db"))
    seen = []
    t = threading.Thread(target=lambda: seen.append(db.conn))
    t.start(); t.join()
    assert seen[0] is not db.conn


def _use_in_child(db, parent_conn_id):
    # the connection inherited through fork is the parent's: the child opens its own
    conn = db.conn
    assert id(conn) != parent_conn_id and db.conn is conn
    conn.execute("INSERT INTO things (id, n) VALUES ('child', 2)")
    os._exit(0)


def test_sqlite_connection_is_new_in_a_forked_child(tmp_path):
    db = SqliteDatabase(str(tmp_path / "f.db"))
    db.migrate("svc", SQL_MIGRATIONS)
    parent = db.conn
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=_use_in_child, args=(db, id(parent)))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert db.conn is parent
    assert parent.execute("SELECT n FROM things WHERE id = 'child'").fetchone()[0] == 2


def test_sqlite_transaction_rolls_back(tmp_path):
    db = SqliteDatabase(str(tmp_path / "t.db"))
    db.migrate("svc", SQL_MIGRATIONS)
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO things (id, n) VALUES ('a', 2)")
            raise RuntimeError("boom")
    assert db.conn.execute("SELECT count(*) FROM things WHERE id='a'").fetchone()[0] == 0


@pytest.mark.parametrize("service", ["devauth", "inventory", "deployments", "useradm", "tenantadm"])
def test_health_503_when_sqlite_file_is_not_a_database(make_app, tmp_path, service):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(os.urandom(8192))
    app = make_app("sqlite", MENDER_DB_URL=f"sqlite:///{bad}")
    r = app.test_client().get(f"/api/internal/v1/{service}/health")
    assert r.status_code == 503
    assert set(r.get_json()) == {"error", "request_id"}
    # refused for what the file is, not waited out as a locked database
    assert "not a database" in r.get_json()["error"]
    # alive does not depend on the database
    assert app.test_client().get(f"/api/internal/v1/{service}/alive").status_code == 204


def test_health_503_when_sqlite_path_is_unusable(make_app, tmp_path):
    (tmp_path / "adir.db").mkdir()
    app = make_app("sqlite", MENDER_DB_URL=f"sqlite:///{tmp_path}/adir.db")
    r = app.test_client().get("/api/internal/v1/useradm/health")
    assert r.status_code == 503


@pytest.mark.parametrize("service", ["devauth", "deployments", "tenantadm"])
def test_health_503_within_its_timeout_when_mongodb_port_is_closed(make_app, tmp_path, service):
    from tests.helpers import free_port
    # the client's own timeouts far above the health check's: a check that waited for one of
    # them (or for pymongo's 30 s default) would take two minutes, not 1.5 s
    app = make_app("sqlite", MENDER_DB_URL=f"mongodb://127.0.0.1:{free_port()}/x",
                   MENDER_HEALTH_TIMEOUT_SECONDS=1.5, MENDER_DB_TIMEOUT_SECONDS=120,
                   MENDER_MONGO_OPERATION_TIMEOUT_SECONDS=120)
    t0 = time.monotonic()
    r = app.test_client().get(f"/api/internal/v1/{service}/health")
    assert r.status_code == 503
    assert set(r.get_json()) == {"error", "request_id"}
    assert r.get_json()["error"] == "database unavailable: ServerSelectionTimeoutError"
    # a hang bound (40 times the health timeout), not a measurement: only another timeout reaches it
    assert time.monotonic() - t0 < 60


def test_mongo_migrations_run_without_the_operation_deadline(make_app):
    """An index build over a large fleet's collection takes minutes: a migration cut at the
    operation timeout (10 s: pymongo sends it as the build's maxTimeMS) failed the same way at
    every start. Migrations run with no deadline; the store's own operations keep theirs."""
    from pymongo import _csot  # the driver's deadline for the operation in progress (no public reader)

    db = make_app("mongomock", MENDER_MONGO_OPERATION_TIMEOUT_SECONDS=7).extensions["mender"].db
    seen = []

    def m1(database):
        seen.append((_csot.get_timeout(), _csot.remaining()))
        database["things"].create_index("n")

    assert db.migrate("svc", [m1]) == 1
    assert seen == [(0, None)]  # pymongo.timeout(0): no deadline, no maxTimeMS
    assert db.client_options()["timeoutMS"] == 7000  # every other operation keeps the client's timeout


def test_mongo_migration_gives_up_within_the_db_timeout_when_the_server_is_unreachable():
    """pymongo's client-side timeoutMS (the operation timeout) replaces its server-selection
    timeout: a migration's first read waited the operation timeout for a server (the gunicorn
    master's startup with it), whatever MENDER_DB_TIMEOUT_SECONDS said. It is refused as
    Unavailable, bounded by the DB timeout (0.5 s) rather than the operation timeout (60 s)."""
    from tests.helpers import free_port
    db = open_database(f"mongodb://127.0.0.1:{free_port()}/x", timeout=0.5, mongo_operation_timeout=60)
    calls = []
    t0 = time.monotonic()
    with pytest.raises(Unavailable):
        db.migrate("svc", mongo_migrations(calls))
    with pytest.raises(Unavailable):
        db.ensure_migrated("svc", mongo_migrations(calls))
    # a hang bound, not a measurement: only waiting out the operation timeout reaches it
    assert time.monotonic() - t0 < 60
    assert calls == []


def _slow_writer(path, barrier, rounds, errors):
    """Hold a write transaction for a while, then write outside one, many times over."""
    import threading

    # a busy handler this short fails unless writers queue (in the writer lock, whose own wait is
    # bounded separately: in the server both are MENDER_DB_TIMEOUT_SECONDS)
    db = SqliteDatabase(path, timeout=0.02, lock_timeout=60)

    def work(tid):
        try:
            barrier.wait()
            for i in range(rounds):
                with db.transaction() as conn:
                    conn.execute("INSERT INTO things (id, n) VALUES (?, ?)", (f"{os.getpid()}-{tid}-{i}", i))
                    time.sleep(0.005)
                db.conn.execute("UPDATE things SET n = n + 1 WHERE id = ?", (f"{os.getpid()}-{tid}-{i}",))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            errors.put(repr(exc))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_sqlite_writers_queue_across_threads_and_processes(tmp_path):
    # 3 processes × 3 threads, each holding the write lock 5 ms at a time, against a 20 ms busy
    # timeout: SQLite's busy handler alone answers "database is locked"; the writer lock queues them.
    path = str(tmp_path / "w.db")
    SqliteDatabase(path).migrate("svc", SQL_MIGRATIONS)
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(9), ctx.Queue()
    procs = [ctx.Process(target=_slow_writer, args=(path, barrier, 10, errors)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert errors.empty(), errors.get()
    db = SqliteDatabase(path)
    assert db.conn.execute("SELECT count(*), sum(n) FROM things WHERE id != 'seed'").fetchone()[:] == (90, 90 * 5.5)


def test_sqlite_writer_lock_is_reentrant_and_released(tmp_path):
    db = SqliteDatabase(str(tmp_path / "t.db"))
    db.migrate("svc", SQL_MIGRATIONS)
    with db.transaction() as conn:
        with db.transaction():  # joins
            conn.execute("INSERT INTO things (id, n) VALUES ('r', 1)")
        conn.execute("UPDATE things SET n = 2 WHERE id = 'r'")
    other = SqliteDatabase(db.path, timeout=0.5)
    import threading
    done = []
    t = threading.Thread(target=lambda: (other.conn.execute("DELETE FROM things WHERE id = 'r'"), done.append(1)))
    t.start(); t.join(5)
    assert done == [1]
    assert db.conn.execute("SELECT count(*) FROM things WHERE id = 'r'").fetchone()[0] == 0


def test_mongo_client_is_bounded_and_durable():
    """Every operation has a deadline, writes wait for a majority, a failover is retried once;
    what the URL sets itself wins."""
    seen = []

    def factory(url, **kw):
        seen.append(kw)
        return object()

    db = open_database("mongodb://h1,h2/x?replicaSet=rs0", timeout=3, mongo_client_factory=factory,
                       mongo_operation_timeout=7)
    db.client
    assert seen[0] | {"w": "majority", "timeoutMS": 7000, "retryWrites": True, "serverSelectionTimeoutMS": 3000,
                      "connectTimeoutMS": 3000, "tz_aware": True} == seen[0]
    open_database("mongodb://h1/x?w=1&timeoutMS=100", mongo_client_factory=factory).client
    assert "w" not in seen[1] and "timeoutMS" not in seen[1] and seen[1]["retryWrites"] is True


def test_the_real_mongodb_runs_keep_the_urls_options():
    from tests.helpers import mongo_test_url
    assert mongo_test_url("mongodb://a,b,c/?replicaSet=rs0", "t1") == "mongodb://a,b,c/t1?replicaSet=rs0"
    assert mongo_test_url("mongodb://u:p@h:27017", "t1") == "mongodb://u:p@h:27017/t1"
