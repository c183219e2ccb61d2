"""Storage backends behind one setting: SQLite (embedded default) and MongoDB (scale-out).

A `Database` only knows how to connect, ping and apply a service's versioned
migrations; each service's store module does the queries. Connections are made
lazily in the process (and thread) that uses them, never at import time: pymongo
is not fork-safe, and an SQLite connection must not cross threads.
"""

from __future__ import annotations

import fcntl
import logging
from abc import ABC, abstractmethod
import os
import sqlite3
import threading
import time
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any, Callable, ContextManager, Iterator, Sequence
from urllib.parse import parse_qs, urlparse

from common.errors import ConfigError, Unavailable

log = logging.getLogger(__name__)

# Errors that mean "the database is not answering", mapped to 503 by common.http.
try:  # pymongo is a hard dependency, but keep this module importable without it
    from pymongo.errors import ConnectionFailure as _MongoConnectionFailure
    from pymongo.errors import ServerSelectionTimeoutError as _MongoSelectionTimeout
    from pymongo.errors import ExecutionTimeout as _MongoExecutionTimeout
    from pymongo.errors import NetworkTimeout as _MongoNetworkTimeout
    UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
        _MongoConnectionFailure, _MongoSelectionTimeout, _MongoExecutionTimeout, _MongoNetworkTimeout,
    )
except ImportError:  # pragma: no cover
    UNAVAILABLE_ERRORS = ()


# This process's id, kept in memory and renewed in a forked child: connections are per process,
# and `os.getpid()` is a system call (glibc caches nothing) that the stores made on every
# statement (~4 per request of the wave).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class SqliteUnavailable(Unavailable):
    """The SQLite file cannot be opened or is not a database."""


class Database(ABC):
    """Common interface of the two backends."""

    kind: str

    @abstractmethod
    def ping(self, timeout: float) -> None:
        """Raise Unavailable unless the database answers within `timeout` seconds."""

    @abstractmethod
    def ensure_migrated(self, service: str, migrations: Sequence[Any]) -> None:
        """Apply the service's pending migrations once per process; raise Unavailable on failure."""

    @abstractmethod
    def migrate(self, service: str, migrations: Sequence[Any]) -> int:
        """Apply pending migrations of `service`; return the version reached."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's connections."""

    def read(self) -> ContextManager[Any]:
        """Group a request's reads (SqliteDatabase.read); a no-op where reads need no grouping."""
        return nullcontext()

    @abstractmethod
    def delete_tenant_rows(self, names: Sequence[str], tenant: str) -> int:
        """Delete every row (document) of the organization from these tables (collections), in
        order; returns how many. A retry after a failure part-way finishes the job."""


# --------------------------------------------------------------------------- SQLite

# No memory-mapped reads. In WAL mode SQLite drops a connection's page cache, and unmaps its whole
# mapping, at the start of every read transaction that follows another connection's commit
# (pager.c: pagerBeginReadTransaction → sqlite3OsUnfetch(fd, 0, 0)); under a stream of writes
# that is nearly every read: an munmap of up to SQLITE_MMAP_BYTES (a TLB shoot-down of the other
# cores), an mmap, and a page fault for every page read again. `pread` into the page cache
# costs less then (bench/README.md, issue 21: the wave's syscalls).
SQLITE_MMAP_BYTES = 0
SQLITE_CACHE_KIB = 16 * 1024  # per connection

# Statements that never write; everything else outside a transaction takes the writer lock.
_READ_ONLY = ("SELECT", "select")


class _WriterLock:
    """One writer at a time across the threads and processes sharing the database file.

    SQLite admits one writer; the others wait in its busy handler, which sleeps and retries
    with delays growing to 100 ms, so under a burst of writes from several threads and
    gunicorn workers requests queue for seconds while the CPU idles. Writers take an exclusive
    `flock` on a file beside the database first: the threads of a process queue on a process
    lock (handed over at once), and its holder takes the `flock`, polling at most every 2 ms while
    another process holds it. Every wait is bounded by `timeout` (MENDER_DB_TIMEOUT_SECONDS):
    past it, `Unavailable` (503 with Retry-After) instead of a request that hangs while another
    program holds the lock. Re-entrant per connection; a process that dies releases its lock with
    its descriptors. SQLite's own locking stays underneath, so a program that does not take this
    lock (the sqlite3 shell) is still safe, and its locks are bounded by SQLite's busy timeout.
    """

    __slots__ = ("_fd", "_depth", "_timeout", "_local")

    _process_locks: dict[str, threading.Lock] = {}
    _process_locks_guard = threading.Lock()

    def __init__(self, path: str, timeout: float = 5.0):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._depth = 0
        self._timeout = timeout
        with self._process_locks_guard:
            self._local = self._process_locks.setdefault(path, threading.Lock())

    def __enter__(self) -> None:
        if self._depth == 0:
            deadline = time.monotonic() + self._timeout
            if not self._local.acquire(timeout=self._timeout):
                raise WriterLockTimeout()
            try:
                self._flock(deadline)
            except BaseException:
                self._local.release()
                raise
        self._depth += 1

    def _flock(self, deadline: float) -> None:
        delay = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            now = time.monotonic()
            if now >= deadline:
                raise WriterLockTimeout()
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.002)

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._local.release()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:  # a thread's connection dropped without close(): do not leak the descriptor
        self.close()


class WriterLockTimeout(Unavailable):
    """The database's writer lock was not free within MENDER_DB_TIMEOUT_SECONDS."""

    def __init__(self):
        super().__init__("database busy, retry later", headers={"Retry-After": "1"})


_in_transaction = sqlite3.Connection.in_transaction.__get__


class _Connection(sqlite3.Connection):
    """A connection whose writes outside an explicit transaction take the writer lock.

    `in_transaction` means a write transaction here: a read transaction (`SqliteDatabase.read`)
    is not one, and the first statement that is not a SELECT ends it (a write never upgrades a
    read transaction: that would write without the writer lock, or fail with SQLITE_BUSY_SNAPSHOT
    after another connection's commit)."""

    writer: _WriterLock
    reading = False  # a read transaction of `SqliteDatabase.read` is open

    @property
    def in_transaction(self) -> bool:  # type: ignore[override]
        return _in_transaction(self) and not self.reading

    def end_read(self) -> None:
        """End the read transaction `SqliteDatabase.read` opened (a no-op without one)."""
        if self.reading:
            self.reading = False
            if _in_transaction(self):
                super().execute("COMMIT")

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql.startswith(_READ_ONLY):
            return super().execute(sql, parameters)
        if self.reading:
            self.end_read()
        if _in_transaction(self):
            return super().execute(sql, parameters)
        with self.writer:
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        if self.reading:
            self.end_read()
        if _in_transaction(self):
            return super().executemany(sql, parameters)
        with self.writer:
            return super().executemany(sql, parameters)

    def close(self) -> None:
        super().close()
        writer = getattr(self, "writer", None)
        if writer is not None:
            writer.close()
            del self.writer


class SqliteDatabase(Database):
    """One SQLite file in WAL mode; a connection per thread (and per process after fork).

    Migrations are lists of SQL statements, applied in order; the applied
    version per service is kept in `schema_migrations`, and the whole run
    happens inside `BEGIN IMMEDIATE`, so two workers starting at once apply
    each migration exactly once.
    """

    kind = "sqlite"

    def __init__(self, path: str, timeout: float = 5.0, lock_timeout: float | None = None):
        self.path = path
        self.timeout = timeout  # SQLite's busy timeout
        self.lock_timeout = timeout if lock_timeout is None else lock_timeout  # the writer lock's
        self._local = threading.local()
        self._migrated: set[str] = set()
        self._lock = threading.Lock()

    # connections ------------------------------------------------------------
    def _connect(self, timeout: float | None = None) -> sqlite3.Connection:
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, timeout=timeout or self.timeout, factory=_Connection,
                                   isolation_level=None, check_same_thread=False)
            conn.writer = _WriterLock(self.path + "-writer.lock", self.lock_timeout)
            conn.row_factory = sqlite3.Row
            # the connection's settings write nothing: not under the writer lock (a thread's first
            # read waited for it, and was a 503 while another program held it); switching a new
            # file to WAL is decided by SQLite's own locks (_set_wal)
            pragma = partial(sqlite3.Connection.execute, conn)
            pragma(f"PRAGMA busy_timeout = {int((timeout or self.timeout) * 1000)}")
            mode = self._set_wal(pragma, timeout or self.timeout)
            if mode.lower() != "wal":
                log.warning("sqlite journal_mode is %s, not wal", mode)
            pragma("PRAGMA synchronous = NORMAL")
            pragma("PRAGMA foreign_keys = ON")
            # a private cache larger than SQLite's 2 MB default (large inventory searches); see
            # SQLITE_MMAP_BYTES for why pages are read rather than mapped
            pragma(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")
            pragma(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        except (sqlite3.Error, OSError) as exc:
            raise SqliteUnavailable(f"database unavailable: {exc}") from exc
        return conn

    @staticmethod
    def _set_wal(execute: Callable[[str], sqlite3.Cursor], timeout: float) -> str:
        # Switching a fresh file to WAL needs an exclusive lock, and SQLite answers SQLITE_BUSY
        # there without calling the busy handler when several processes open it at once: retry.
        deadline = time.monotonic() + timeout
        while True:
            try:
                # already WAL (the usual case): only read it, which works on a full disk too
                mode = execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() == "wal":
                    return mode
                return execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) \
                        or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        local = self._local
        pid = _pid
        if getattr(local, "pid", None) != pid:
            local.conn = self._connect()
            local.pid = pid
        return local.conn

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction around several reads: they see one snapshot, and SQLite checks the
        WAL for other connections' commits (and empties this connection's page cache after one,
        so that the B-trees' upper pages are read again), and takes its read lock on the `-shm`,
        once instead of at every statement. Keep it to a request's reads: an open read
        transaction pins the WAL (no checkpoint goes past it), so never around I/O. A statement
        that is not a SELECT, or `transaction()`, ends it first (the reads after that run in
        their own implicit transactions, as outside it). Nested in a transaction or another
        read, it joins that."""
        conn = self.conn
        if conn.reading or _in_transaction(conn):
            yield conn
            return
        sqlite3.Connection.execute(conn, "BEGIN")
        conn.reading = True
        try:
            yield conn
        finally:
            conn.end_read()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (`BEGIN IMMEDIATE`): the writer lock is taken at once, so
        read-modify-write sequences inside it are atomic across threads and processes."""
        conn = self.conn
        if conn.in_transaction:  # nested use joins the outer transaction
            yield conn
            return
        with conn.writer:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def ping(self, timeout: float) -> None:
        try:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise SqliteUnavailable(f"database unavailable: {exc}") from exc

    # migrations -------------------------------------------------------------
    def ensure_migrated(self, service: str, migrations: Sequence[Sequence[str]]) -> None:
        if service in self._migrated:
            return
        with self._lock:
            if service in self._migrated:
                return
            try:
                if self._version(service) != len(migrations):  # a read first: a full disk still serves reads
                    self.migrate(service, migrations)
            except sqlite3.Error as exc:
                raise SqliteUnavailable(f"database unavailable: {exc}") from exc
            self._migrated.add(service)

    def _version(self, service: str) -> int | None:
        try:
            row = self.conn.execute("SELECT version FROM schema_migrations WHERE service = ?", (service,)).fetchone()
        except sqlite3.OperationalError:  # no table yet
            return None
        return row[0] if row else None

    def migrate(self, service: str, migrations: Sequence[Sequence[str]]) -> int:
        """Apply pending migrations of `service`; return the version reached."""
        conn = self.conn
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " service TEXT PRIMARY KEY, version INTEGER NOT NULL, applied_ts REAL NOT NULL)")
        with self.transaction():
            row = conn.execute("SELECT version FROM schema_migrations WHERE service = ?",
                               (service,)).fetchone()
            current = row[0] if row else 0
            if current > len(migrations):
                raise ConfigError(f"{service}: database schema version {current} is newer than this "
                                  f"server knows ({len(migrations)})")
            for version in range(current + 1, len(migrations) + 1):
                for statement in migrations[version - 1]:
                    conn.execute(statement)
                log.info("migrated %s to version %d", service, version)
            if len(migrations) > current:
                conn.execute("INSERT INTO schema_migrations (service, version, applied_ts) VALUES (?, ?, ?)"
                             " ON CONFLICT (service) DO UPDATE SET version = excluded.version,"
                             " applied_ts = excluded.applied_ts",
                             (service, len(migrations), time.time()))
        return max(current, len(migrations))

    TENANT_DELETE_BATCH = 5000  # rows per write transaction: other writers get turns in between

    def delete_tenant_rows(self, names: Sequence[str], tenant: str) -> int:
        total = 0
        for table in names:
            key = self._row_key(table)
            sql = (f"DELETE FROM {table} WHERE ({key}) IN"
                   f" (SELECT {key} FROM {table} WHERE tenant_id = ? LIMIT {self.TENANT_DELETE_BATCH})")
            while True:
                with self.transaction() as conn:
                    deleted = conn.execute(sql, (tenant,)).rowcount
                total += deleted
                if deleted < self.TENANT_DELETE_BATCH:
                    break
        return total

    def _row_key(self, table: str) -> str:
        """How a row of `table` is addressed: its rowid, or its primary key (WITHOUT ROWID)."""
        conn = self.conn
        row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        if row is None:
            raise ValueError(f"no table {table}")
        if "WITHOUT ROWID" not in row[0].upper():
            return "rowid"
        columns = [r[1] for r in sorted(conn.execute(f"PRAGMA table_info({table})").fetchall(), key=lambda r: r[5])
                   if r[5] > 0]
        return ", ".join(columns)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.pid = None


class SqliteStore:
    """What every service's SQLite store starts with: the database, this thread's connection, and
    its write transaction."""

    migrations: list = []

    def __init__(self, db: SqliteDatabase):
        self._db = db

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    def transaction(self):
        return self._db.transaction()


# --------------------------------------------------------------------------- MongoDB


class MongoDatabase(Database):
    """A MongoDB database through one lazily created MongoClient per process.

    Migrations are callables `fn(db)` that must be idempotent (index creation
    is); the version reached per service is recorded in `migration_info`.
    `client_factory` exists so that tests can run the same store on an in-process test double.
    """

    kind = "mongo"

    def __init__(self, url: str, db_name: str = "mender", timeout: float = 5.0,
                 client_factory: Callable[..., Any] | None = None, operation_timeout: float = 10.0):
        self.url = url
        parsed = urlparse(url)
        self.db_name = parsed.path.lstrip("/") or db_name
        self.timeout = timeout
        self.operation_timeout = operation_timeout
        self._client_factory = client_factory
        self._client = None
        self._pid = None
        # re-entrant: ensure_migrated holds it while migrate() may create the client
        self._lock = threading.RLock()
        self._migrated: set[str] = set()

    @property
    def client(self):
        pid = _pid
        if self._client is None or self._pid != pid:
            with self._lock:
                if self._client is None or self._pid != pid:
                    factory = self._client_factory
                    if factory is None:
                        import pymongo
                        factory = pymongo.MongoClient
                    self._client = factory(self.url, **self.client_options())
                    self._pid = pid
        return self._client

    def client_options(self) -> dict[str, Any]:
        """MongoClient options: bounded waits and replica-set durability. Every operation ends
        within `operation_timeout` (client-side timeoutMS, also sent to the server as maxTimeMS: a
        slow query or a lost primary is a 503, never a hung worker thread); writes are
        acknowledged by a majority of the replica set (a write a failover rolls back was never
        acknowledged), single-document writes and reads are retried once across a failover. An
        option the URL sets itself (`?w=1&timeoutMS=…`) wins."""
        ms = int(self.timeout * 1000)
        options: dict[str, Any] = {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms,
                                   "timeoutMS": int(self.operation_timeout * 1000),
                                   "w": "majority", "retryWrites": True, "retryReads": True,
                                   "tz_aware": True, "uuidRepresentation": "standard", "connect": False}
        in_url = {k.lower() for k in parse_qs(urlparse(self.url).query)}
        return {k: v for k, v in options.items() if k.lower() not in in_url}

    @property
    def db(self):
        return self.client.get_database(self.db_name)

    def ping(self, timeout: float) -> None:
        import pymongo
        try:
            with pymongo.timeout(timeout):
                self.client.admin.command("ping")
        except UNAVAILABLE_ERRORS as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
        except pymongo.errors.PyMongoError as exc:
            raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc

    def ensure_migrated(self, service: str, migrations: Sequence[Callable[[Any], None]]) -> None:
        if service in self._migrated:
            return
        with self._lock:
            if service in self._migrated:
                return
            try:
                self.migrate(service, migrations)
            except UNAVAILABLE_ERRORS as exc:
                raise Unavailable(f"database unavailable: {type(exc).__name__}") from exc
            self._migrated.add(service)

    def migrate(self, service: str, migrations: Sequence[Callable[[Any], None]]) -> int:
        # pymongo's client-side timeoutMS (the operation timeout) replaces serverSelectionTimeoutMS:
        # without this, an unreachable server held startup (gunicorn's master migrates before it
        # starts the workers) and a worker's first request for the operation timeout instead of
        # MENDER_DB_TIMEOUT_SECONDS. Unavailable when no server answers within `timeout`.
        self.ping(self.timeout)
        db = self.db
        info = db["migration_info"]
        doc = info.find_one({"_id": service}) or {}
        current = int(doc.get("version", 0))
        if current > len(migrations):
            raise ConfigError(f"{service}: database schema version {current} is newer than this "
                              f"server knows ({len(migrations)})")
        import pymongo
        for version in range(current + 1, len(migrations) + 1):
            log.info("migrating %s to version %d", service, version)
            # without the operation timeout: an index build over a large fleet's collection takes
            # minutes, and cut at 10 s (the server aborts the build at its maxTimeMS) it would fail
            # the same way at every start. A lost server still ends it (a network error).
            with pymongo.timeout(0):  # 0: no deadline (the CSOT specification's infinite timeout)
                migrations[version - 1](db)
            # $max: two workers migrating at once both end on the highest version
            info.update_one({"_id": service}, {"$max": {"version": version}, "$set": {"ts": time.time()}},
                            upsert=True)
            log.info("migrated %s to version %d", service, version)
        return max(current, len(migrations))

    def delete_tenant_rows(self, names: Sequence[str], tenant: str) -> int:
        return sum(self.db[name].delete_many({"tenant_id": tenant}).deleted_count for name in names)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def open_database(url: str, *, timeout: float = 5.0, mongo_db_name: str = "mender",
                  mongo_client_factory: Callable[..., Any] | None = None,
                  mongo_operation_timeout: float = 10.0) -> Database:
    """The backend the URL names. Raises ConfigError for any other scheme."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # as SQLAlchemy: sqlite:///relative/path.db, sqlite:////absolute/path.db
        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise ConfigError("MENDER_DB_URL: write sqlite:///relative.db or sqlite:////absolute/path.db")
        path = url[len("sqlite:///"):]
        return SqliteDatabase(path, timeout=timeout)
    if parsed.scheme in ("mongodb", "mongodb+srv"):
        return MongoDatabase(url, db_name=mongo_db_name, timeout=timeout,
                             client_factory=mongo_client_factory, operation_timeout=mongo_operation_timeout)
    raise ConfigError(f"MENDER_DB_URL: unsupported scheme {parsed.scheme!r} (use sqlite:/// or mongodb://)")
