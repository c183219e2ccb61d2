"""Deployments store on SQLite. Counters change inside `BEGIN IMMEDIATE` transactions, so
concurrent reports from many workers keep the statistics exact."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from sys import intern

from deployments import model as m
from deployments.artifacts.store import sqlite as artifacts_sqlite
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment, MaintenanceWindow, Phase
from deployments.store import (ASSIGNED, EXISTS, NO_SLOT, DeploymentQuery, DeploymentsStore,
                               DuplicateDeployment)

# a deployment's columns that change at every assignment, read with the row by the poll (not
# part of the revision, see migration 7)
_COUNTERS = ("device_count", "retry_pending", "total_size")
# every other column of the deployments table (tests/deployments/test_sqlite_revision.py checks the
# list against the table): an UPDATE naming one moves the row's revision on
_REVISED_COLUMNS = ("tenant_id", "id", "name", "artifact_name", "created", "finished", "status", "start_ts",
                    "dynamic", "max_devices", "aborted", "active_checksum", "doc", "paused", "paused_reason",
                    "paused_ts", "current_phase", "failure_ack", "control_map")

MIGRATIONS = [
    [
        """CREATE TABLE deployments (
            tenant_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, artifact_name TEXT NOT NULL,
            created REAL NOT NULL, finished REAL, status TEXT NOT NULL, start_ts REAL,
            dynamic INTEGER NOT NULL, max_devices INTEGER NOT NULL, device_count INTEGER NOT NULL DEFAULT 0,
            retry_pending INTEGER NOT NULL DEFAULT 0, total_size INTEGER NOT NULL DEFAULT 0,
            aborted INTEGER NOT NULL DEFAULT 0, active_checksum TEXT, doc TEXT NOT NULL,
            PRIMARY KEY (tenant_id, id))""",
        "CREATE INDEX deployments_created ON deployments (tenant_id, created)",
        "CREATE INDEX deployments_status ON deployments (tenant_id, status, created)",
        "CREATE INDEX deployments_artifact ON deployments (tenant_id, artifact_name, status)",
        "CREATE INDEX deployments_dynamic ON deployments (tenant_id, dynamic, status, created)",
        """CREATE UNIQUE INDEX deployments_active_checksum ON deployments (tenant_id, active_checksum)
           WHERE active_checksum IS NOT NULL""",
        """CREATE TABLE deployment_phases (
            tenant_id TEXT NOT NULL, deployment_id TEXT NOT NULL, idx INTEGER NOT NULL,
            device_limit INTEGER, device_count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (tenant_id, deployment_id, idx))""",
        """CREATE TABLE deployment_stats (
            tenant_id TEXT NOT NULL, deployment_id TEXT NOT NULL, status TEXT NOT NULL,
            count INTEGER NOT NULL, PRIMARY KEY (tenant_id, deployment_id, status))""",
        """CREATE TABLE deployment_targets (
            tenant_id TEXT NOT NULL, deployment_id TEXT NOT NULL, device_id TEXT NOT NULL,
            created REAL NOT NULL, PRIMARY KEY (tenant_id, deployment_id, device_id))""",
        "CREATE INDEX deployment_targets_device ON deployment_targets (tenant_id, device_id, created)",
        """CREATE TABLE device_deployments (
            tenant_id TEXT NOT NULL, id TEXT NOT NULL, deployment_id TEXT NOT NULL, device_id TEXT NOT NULL,
            created REAL NOT NULL, started REAL, finished REAL, status TEXT NOT NULL, substate TEXT,
            device_type TEXT, artifact_id TEXT, attempts INTEGER NOT NULL DEFAULT 0,
            retries INTEGER NOT NULL DEFAULT 0, log INTEGER NOT NULL DEFAULT 0, deleted REAL, phase INTEGER,
            PRIMARY KEY (tenant_id, id))""",
        "CREATE UNIQUE INDEX dd_deployment_device ON device_deployments (tenant_id, deployment_id, device_id)",
        "CREATE INDEX dd_device ON device_deployments (tenant_id, device_id, status, created)",
        "CREATE INDEX dd_deployment_status ON device_deployments (tenant_id, deployment_id, status)",
        "CREATE INDEX dd_artifact ON device_deployments (tenant_id, artifact_id, status)",
        """CREATE TABLE deployment_logs (
            tenant_id TEXT NOT NULL, deployment_id TEXT NOT NULL, device_id TEXT NOT NULL,
            messages TEXT NOT NULL, PRIMARY KEY (tenant_id, deployment_id, device_id))""",
    ],
    [   # rollout safety: pause state, phase counters, update control maps, the deployments' history
        "ALTER TABLE deployments ADD COLUMN paused INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deployments ADD COLUMN paused_reason TEXT",
        "ALTER TABLE deployments ADD COLUMN paused_ts REAL",
        "ALTER TABLE deployments ADD COLUMN current_phase INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deployments ADD COLUMN failure_ack TEXT",
        "ALTER TABLE deployments ADD COLUMN control_map TEXT",
        "ALTER TABLE deployment_phases ADD COLUMN failed INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE deployment_phases ADD COLUMN succeeded INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE device_deployments ADD COLUMN control_map TEXT",
        "ALTER TABLE device_deployments ADD COLUMN previous_artifact TEXT",
        """CREATE TABLE deployment_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, deployment_id TEXT NOT NULL,
            id TEXT NOT NULL, ts REAL NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL)""",
        "CREATE INDEX deployment_events_deployment ON deployment_events (tenant_id, deployment_id, seq)",
    ],
    [   # the same queries by (deployment, status); the failure insight's sample in id order, covered
        "DROP INDEX dd_deployment_status",
        "CREATE INDEX dd_deployment_status ON device_deployments (tenant_id, deployment_id, status, id, device_id)",
    ],
    [   # the poll's history (every poll) in its order, newest first, without sorting it
        "CREATE INDEX dd_device_history ON device_deployments (tenant_id, device_id, created, id)",
    ],
    [   # a status move counts itself: move_device_deployment's UPDATE bumps `moves`, and the trigger
        # moves the deployment's count from the old status to the new in that same statement (a
        # report is then one statement under the writer lock, not BEGIN, three writes and COMMIT).
        # Other updates of a device deployment (the contract's update_device_deployment, an abort's
        # bulk close) leave `moves` alone and the counts to their callers, as before. Adding a
        # column with a constant default rewrites no row: instant on any database.
        "ALTER TABLE device_deployments ADD COLUMN moves INTEGER NOT NULL DEFAULT 0",
        "CREATE TRIGGER dd_move_counts AFTER UPDATE OF moves ON device_deployments"
        " WHEN new.moves IS NOT old.moves AND new.status IS NOT old.status BEGIN"
        " INSERT INTO deployment_stats VALUES (new.tenant_id, new.deployment_id, old.status, -1)"
        " ON CONFLICT DO UPDATE SET count = count - 1;"
        " INSERT INTO deployment_stats VALUES (new.tenant_id, new.deployment_id, new.status, 1)"
        " ON CONFLICT DO UPDATE SET count = count + 1; END",
    ],
    [   # a 204 poll's candidates in their order (created, then id) straight from an index: the two
        # `ORDER BY ... LIMIT` sorted into a temporary B-tree each, made, paged and dropped on every
        # poll, most of them empty (~10 % of a 204 poll's instructions). The device's targets: the
        # index it had, extended by the deployment id (every other query keeps its plan). The open
        # dynamic deployments: a partial index of just those (a handful), which the candidates read
        # by name (the statistics of a database that ran ANALYZE, such as the seeded million-device
        # one, made SQLite pick `deployments_dynamic` and sort); on that database this migration took 0.2 s.
        "CREATE INDEX deployment_targets_device_order ON deployment_targets (tenant_id, device_id, created,"
        " deployment_id)",
        "DROP INDEX deployment_targets_device",
        "CREATE INDEX deployments_dynamic_open ON deployments (tenant_id, created, id)"
        " WHERE dynamic = 1 AND status IN ('pending', 'inprogress')",
    ],
    [   # a deployment row's revision: the poll's reads (the history, the candidates) read it and the
        # three counters instead of every column, and find the rest of the record in a memo keyed
        # by (tenant, id, revision) (SqliteDeploymentsStore._polled_deployment). Any UPDATE naming a
        # column other than the counters and the revision moves it on (this trigger; an INSERT
        # starts it at random: see _insert_deployment_row); the counters change at every assignment
        # and are read with the row instead. Adding a column with a constant default rewrites no row.
        "ALTER TABLE deployments ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "CREATE TRIGGER deployments_revision AFTER UPDATE OF " + ", ".join(_REVISED_COLUMNS)
        + " ON deployments WHEN new.revision IS old.revision BEGIN"
        " UPDATE deployments SET revision = old.revision + 1 WHERE rowid = new.rowid; END",
    ],
]

_DOC_KEYS = ("groups", "filter", "phases", "retries", "force_installation", "artifacts",
             "initial_device_count", "type", "checksum", "configuration", "failure_threshold", "failure_action",
             "success_threshold", "target")
_PHASE_DOC_KEYS = ("id", "batch_size", "start_ts", "device_limit", "failure_threshold", "failure_action",
                   "success_threshold")
_ACTIVE = tuple(sorted(m.ACTIVE))
_STORED_DEPLOYMENT_STATUSES = (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS, m.DEPLOYMENT_FINISHED)
_TERMINAL = tuple(sorted(m.TERMINAL))


class _NoSlot(Exception):
    """Rolls back an assignment: no slot left."""


class _Exists(Exception):
    """Rolls back an assignment: the device already has a device deployment of this deployment."""


_DD_FIELDS = ("tenant_id", "id", "deployment_id", "device_id", "created", "started", "finished", "status",
              "substate", "device_type", "artifact_id", "attempts", "retries", "log", "deleted", "phase",
              "control_map", "previous_artifact")
_DD_COLUMNS = ",".join(_DD_FIELDS)


def _in(values) -> str:
    return ",".join("?" * len(values))


def _json_or_none(value) -> str | None:
    return None if value is None else json.dumps(value)


def _dd_row(dd: DeviceDeployment) -> tuple:
    row = []
    for c in _DD_FIELDS:
        value = getattr(dd, c)
        row.append(int(value) if c == "log" else _json_or_none(value) if c == "control_map" else value)
    return tuple(row)


def _failed_condition(tenant: str, deployment_id: str, failed_at_least) -> tuple[str, list]:
    """SQL (and its arguments) for "the phase's failed count is at least n"."""
    if failed_at_least is None:
        return "", []
    phase, n = failed_at_least
    if phase is None:
        return (" AND (SELECT count FROM deployment_stats WHERE tenant_id=? AND deployment_id=?"
                " AND status='failure') >= ?", [tenant, deployment_id, n])
    return (" AND (SELECT failed FROM deployment_phases WHERE tenant_id=? AND deployment_id=? AND idx=?) >= ?",
            [tenant, deployment_id, phase, n])


# The static deployments that list a device and have no device deployment for it yet, and the
# unfinished dynamic ones (each `... ORDER BY ... LIMIT ?`): every poll asks for both.
# The device's own rows of the targets index drive (CROSS JOIN fixes SQLite's join order): with
# statistics from a time of few deployments the planner would read every deployment of the
# organization on every poll and probe the targets for each.
# a deployment's targets, from a JSON array of device ids
_INSERT_TARGETS = "INSERT INTO deployment_targets SELECT ?, ?, value, ? FROM json_each(?)"
# the targets of a deployment written per statement when it lists more (insert_deployment)
TARGETS_PER_TRANSACTION = 250

# each candidate as its row's id, revision and counters, and its counts (a JSON object of the
# statuses' counts, a JSON array of the phases' [idx, device_count, failed, succeeded]): the rest of
# the record comes from the memo (_polled_deployment), the row read again only when its revision is new
_CANDIDATE_COLUMNS = (
    "{d}.id, {d}.revision, {d}.device_count, {d}.retry_pending, {d}.total_size,"
    " (SELECT json_group_object(s.status, s.count) FROM deployment_stats s WHERE s.tenant_id = {d}.tenant_id"
    " AND s.deployment_id = {d}.id),"
    " (SELECT json_group_array(json_array(p.idx, p.device_count, p.failed, p.succeeded)) FROM deployment_phases p"
    " WHERE p.tenant_id = {d}.tenant_id AND p.deployment_id = {d}.id)")
_STATIC_CANDIDATES = (
    "SELECT " + _CANDIDATE_COLUMNS.format(d="d") + " FROM deployment_targets t CROSS JOIN deployments d"
    " ON d.tenant_id = t.tenant_id"
    " AND d.id = t.deployment_id WHERE t.tenant_id=? AND t.device_id=? AND t.created > ?"
    " AND d.status != 'finished' AND NOT EXISTS (SELECT 1 FROM device_deployments dd"
    " WHERE dd.tenant_id = t.tenant_id AND dd.deployment_id = t.deployment_id AND dd.device_id = t.device_id)"
    " ORDER BY t.created, t.deployment_id LIMIT ?")  # (t.deployment_id is d.id: the order of the targets' index)
_DYNAMIC_CANDIDATES = (
    "SELECT " + _CANDIDATE_COLUMNS.format(d="d") + " FROM deployments d INDEXED BY deployments_dynamic_open"
    " WHERE d.tenant_id=? AND d.dynamic = 1"
    " AND d.status IN ('pending', 'inprogress') AND d.created > ? ORDER BY d.created, d.id LIMIT ?")
# the poll's history: the device deployments a poll decides by (DeviceDeployment's fields but the
# tenant and the device, which the statement asks for, and `deleted`, NULL in every row it reads)
# with, for an active one, its deployment's revision and counters (the record from
# _polled_deployment) and the brief of its assigned artifact beside it (NULLs for the others, and
# for an artifact that is gone). Every column costs every row a round trip of Python's sqlite3 (the
# GIL released and taken again, the value decoded), NULL or not: 47 columns were 23 fewer.
_DD_RECORD_FIELDS = ("id", "tenant_id", "deployment_id", "device_id", "created", "status", "started", "finished",
                     "substate", "device_type", "artifact_id", "attempts", "retries", "log", "deleted", "phase",
                     "control_map", "previous_artifact")
_HISTORY_DD_FIELDS = ("id", "deployment_id", "created", "status", "started", "finished", "substate", "device_type",
                      "artifact_id", "attempts", "retries", "log", "phase", "control_map", "previous_artifact")
_DEPLOYMENT_COLUMNS = ("tenant_id", "id", "name", "artifact_name", "created", "finished", "status", "start_ts",
                       "dynamic", "max_devices", "device_count", "retry_pending", "total_size", "aborted", "doc",
                       "paused", "paused_reason", "paused_ts", "current_phase", "failure_ack", "control_map")
# "dd.status is active" as comparisons: SQLite evaluates `x IN (list)` of more than two constants
# through a temporary B-tree of the list, made on each statement that tests a row (every poll of a
# device with a history: the two joins below), where seven comparisons cost next to nothing
_DD_ACTIVE = "(" + " OR ".join(f"dd.status = '{s}'" for s in sorted(m.ACTIVE)) + ")"
# Which rows: the newest final one (a range of the history index read from its newest end, past
# the active ones at most), then the active ones: a range of the status index per run of active
# statuses in the statuses' order (three: `status IN (...)` would make a temporary B-tree of the
# list, as above, and `OR` is made an IN). The rowids come out of one
# subquery (its LIMIT keeps SQLite from copying the joins into each of its parts) and each row is
# read once. Whatever the device's past, a poll reads one final row and its active ones: a device
# that had installed 75 deployments read 75 rows, 750 µs against 20 for one.
def _active_runs() -> list[tuple[str, str]]:
    """The runs of consecutive active statuses among all statuses in SQLite's order: (first, last)."""
    runs: list[list[str]] = []
    previous_active = False
    for status in sorted(m.DEVICE_STATUSES):
        if status in m.ACTIVE:
            if previous_active:
                runs[-1].append(status)
            else:
                runs.append([status])
        previous_active = status in m.ACTIVE
    return [(run[0], run[-1]) for run in runs]


_POLL_ROWS = (
    "SELECT r FROM (SELECT dd.rowid AS r FROM device_deployments dd INDEXED BY dd_device_history"
    " WHERE dd.tenant_id=?1 AND dd.device_id=?2 AND dd.deleted IS NULL AND NOT " + _DD_ACTIVE
    + " ORDER BY dd.created DESC, dd.id DESC LIMIT 1)"
    + "".join(" UNION ALL SELECT rowid FROM device_deployments INDEXED BY dd_device WHERE tenant_id=?1 AND device_id=?2"
              + (f" AND status = '{first}'" if first == last else f" AND status BETWEEN '{first}' AND '{last}'")
              + " AND deleted IS NULL" for first, last in _active_runs())
    + " LIMIT ?3")
_POLL_HISTORY = (
    "SELECT " + ", ".join(f"dd.{c}" for c in _HISTORY_DD_FIELDS) + ", d.revision, "
    + ", ".join(f"d.{c}" for c in _COUNTERS)
    + ", " + ", ".join(f"a.{c}" for c in artifacts_sqlite.BRIEF_COLUMNS[1:])
    + " FROM (" + _POLL_ROWS + ") p CROSS JOIN device_deployments dd ON dd.rowid = p.r"
    " LEFT JOIN deployments d ON " + _DD_ACTIVE + " AND d.tenant_id = dd.tenant_id AND d.id = dd.deployment_id"
    " LEFT JOIN artifacts a ON " + _DD_ACTIVE + " AND a.tenant_id = dd.tenant_id AND a.id = dd.artifact_id")
_POLL_REVISION_AT = len(_HISTORY_DD_FIELDS)
_POLL_BRIEF_AT = _POLL_REVISION_AT + 1 + len(_COUNTERS)
# a deployment's row as the memo builds its record, with its revision (a poll's memo miss)
_POLLED_ROW = ("SELECT " + ", ".join(_DEPLOYMENT_COLUMNS) + ", revision FROM deployments WHERE tenant_id=? AND id=?")
# a deployment with its counts in one read (the statement after a final report, under the writer lock)
_WITH_STATS = ("SELECT d.*, (SELECT json_group_object(s.status, s.count) FROM deployment_stats s"
               " WHERE s.tenant_id = d.tenant_id AND s.deployment_id = d.id) AS stats_json"
               " FROM deployments d WHERE d.tenant_id=? AND d.id=?")
_OWN_COLUMNS = ("tenant_id", "id", "name", "artifact_name", "created", "finished", "status", "start_ts",
                "max_devices", "device_count", "retry_pending", "total_size", "paused_reason", "paused_ts",
                "current_phase")
# the poll's deployment records, kept per store by their row's tenant, id and revision (_polled_deployment)
_POLLED_KEPT = 256          # records kept (then the memo starts again)
_POLLED_DOC_BYTES = 16384   # a deployment whose document is longer is built every time
_DEPLOYMENT_FIELDS = tuple(f.name for f in dataclasses.fields(Deployment))
_COUNTER_AT = tuple(_DEPLOYMENT_FIELDS.index(c) for c in _COUNTERS)  # the counters' places in a record


def _fresh(value):
    """A copy of a record's field value sharing nothing mutable with it (JSON values, phases, a
    maintenance window: what a deployment record holds)."""
    kind = type(value)
    if kind is list:
        return [_fresh(v) for v in value] if value else []
    if kind is dict:
        return {k: _fresh(v) for k, v in value.items()} if value else {}
    if kind is Phase:
        return Phase(*(getattr(value, f) for f in Phase.__slots__))
    if kind is MaintenanceWindow:
        return MaintenanceWindow(value.start, value.end, value.timezone)
    return value


class SqliteDeploymentsStore(DeploymentsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self.db = db
        # {(tenant, deployment id, revision): (the record's field values, the positions of the
        # mutable ones)}
        self._polled: dict[tuple, tuple[tuple, tuple[int, ...]]] = {}

    def transaction(self):
        return self.db.transaction()

    # ------------------------------------------------------------------ helpers
    def _deployment(self, row: sqlite3.Row, conn=None, counts: bool = True, stats_json: str | None = None) -> Deployment:
        # the document's keys interned: a keyword argument whose name is another string object than
        # the parameter's is matched by comparing it with every parameter name (Deployment has
        # ~40), ~300 string comparisons per deployment read, every 200 poll
        doc = {intern(k): v for k, v in json.loads(row["doc"]).items()}
        phases = [Phase(**p) for p in doc.pop("phases", None) or []]
        window = doc.pop("window", None)
        # (no `assigning` here: an assignment is one transaction, never in flight after a crash)
        ack, control_map = row["failure_ack"], row["control_map"]
        dep = Deployment(**{k: row[k] for k in _OWN_COLUMNS}, dynamic=bool(row["dynamic"]),
                         aborted=bool(row["aborted"]), phases=phases,
                         window=MaintenanceWindow(**window) if window else None,
                         paused=bool(row["paused"]), failure_ack=json.loads(ack) if ack else {},
                         update_control_map=json.loads(control_map) if control_map else None, **doc)
        if not counts:
            return dep
        conn = conn or self.db.conn
        stats = {s: 0 for s in m.DEVICE_STATUSES}
        if stats_json is not None:  # read with the row (_WITH_STATS)
            stats.update(json.loads(stats_json))
        else:
            for r in conn.execute("SELECT status, count FROM deployment_stats WHERE tenant_id=? AND deployment_id=?",
                                  (row["tenant_id"], row["id"])):
                stats[r["status"]] = r["count"]
        dep.stats = stats
        if phases:
            counts_of = {r["idx"]: r for r in conn.execute(
                "SELECT idx, device_count, failed, succeeded FROM deployment_phases WHERE tenant_id=?"
                " AND deployment_id=?", (row["tenant_id"], row["id"]))}
            for i, phase in enumerate(phases):
                r = counts_of.get(i)
                if r is not None:
                    phase.device_count, phase.failed, phase.succeeded = r["device_count"], r["failed"], r["succeeded"]
        return dep

    @staticmethod
    def _add_stats(conn, tenant: str, deployment_id: str, changes: dict[str, int]) -> None:
        for status, delta in changes.items():
            if delta:
                conn.execute("INSERT INTO deployment_stats VALUES (?,?,?,?) ON CONFLICT DO UPDATE"
                             " SET count = count + excluded.count", (tenant, deployment_id, status, delta))

    @contextlib.contextmanager
    def _atomic(self):
        """All or nothing, also inside a transaction a caller opened (a savepoint there)."""
        conn = self.db.conn
        if not conn.in_transaction:
            with self.db.transaction() as conn:
                yield conn
            return
        conn.execute("SAVEPOINT atomic")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO atomic")
            conn.execute("RELEASE atomic")
            raise
        conn.execute("RELEASE atomic")

    @staticmethod
    def _dd(row: sqlite3.Row) -> DeviceDeployment:
        dd = DeviceDeployment(*(row[f] for f in _DD_RECORD_FIELDS))  # not `moves`: the store's own
        dd.log = bool(dd.log)
        if dd.control_map is not None:
            dd.control_map = json.loads(dd.control_map)
        return dd

    # ------------------------------------------------------------------ deployments
    def insert_deployment(self, deployment: Deployment, targets: list[str] | None) -> None:
        """The deployment, its counters, phases and targets in one transaction; a deployment to more
        than TARGETS_PER_TRANSACTION devices as the Mongo store writes it: its targets first, a
        statement (and a hold of the writer lock) per TARGETS_PER_TRANSACTION, then the deployment
        in one transaction. Each hold is then a few ms and the fleet's own writes go on between
        them (on the million-device database: 1,000 devices held them 50-57 ms in one transaction,
        up to 240 ms in a running fleet, now 5-40 ms per part; 100,000 devices 1.8-2.5 s, past a
        device's lock timeout under load, now at most ~40 ms per part and 1.4 s in all instead of
        1.9-2.7). No device is offered the deployment before its last
        transaction (the poll joins the deployment's row); a crash before it leaves targets of a
        deployment that does not exist, which nothing reads; a duplicate or a failure deletes them."""
        d = deployment
        doc = {k: getattr(d, k) for k in _DOC_KEYS}
        doc["phases"] = [{k: getattr(p, k) for k in _PHASE_DOC_KEYS} for p in d.phases]
        if d.window is not None:
            doc["window"] = {"start": d.window.start, "end": d.window.end, "timezone": d.window.timezone}
        doc = json.dumps(doc)
        conn = self.db.conn
        chunked = bool(targets) and len(targets) > TARGETS_PER_TRANSACTION and not conn.in_transaction
        if chunked:
            if conn.execute("SELECT 1 FROM deployments WHERE tenant_id=? AND active_checksum=?",
                            (d.tenant_id, d.checksum)).fetchone() is not None:
                raise DuplicateDeployment()  # (the insert below still decides a race)
            # in the order of the targets' device index: each part's rows share its pages, so the
            # parts' commits write each page about once, as one transaction would (in the caller's
            # order, 100,000 devices took 10 s instead of 1.9 s: every part dirtied pages all over it)
            targets = sorted(targets)
            try:
                for i in range(0, len(targets), TARGETS_PER_TRANSACTION):
                    conn.execute(_INSERT_TARGETS, (d.tenant_id, d.id, d.created,
                                                   json.dumps(targets[i:i + TARGETS_PER_TRANSACTION])))
                self._insert_deployment_row(d, doc, None)
            except BaseException:
                for i in range(0, len(targets), TARGETS_PER_TRANSACTION):
                    conn.execute("DELETE FROM deployment_targets WHERE tenant_id=? AND deployment_id=?"
                                 " AND device_id IN (SELECT value FROM json_each(?))",
                                 (d.tenant_id, d.id, json.dumps(targets[i:i + TARGETS_PER_TRANSACTION])))
                raise
        else:
            self._insert_deployment_row(d, doc, targets)

    def _insert_deployment_row(self, d: Deployment, doc: str, targets: list[str] | None) -> None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO deployments (tenant_id, id, name, artifact_name, created, finished, status,"
                " start_ts, dynamic, max_devices, device_count, retry_pending, total_size, aborted,"
                " active_checksum, doc, paused, paused_reason, paused_ts, current_phase, failure_ack, control_map,"
                " revision) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?, random() & 4611686018427387903)"
                " ON CONFLICT (tenant_id, active_checksum) WHERE active_checksum IS NOT NULL DO NOTHING",
                (d.tenant_id, d.id, d.name, d.artifact_name, d.created, d.finished, d.status, d.start_ts,
                 int(d.dynamic), d.max_devices, d.device_count, d.retry_pending, d.total_size, 0, d.checksum, doc,
                 int(d.paused), d.paused_reason, d.paused_ts, d.current_phase, json.dumps(d.failure_ack),
                 _json_or_none(d.update_control_map)))
            if cur.rowcount != 1:  # the unique index deployments_active_checksum
                raise DuplicateDeployment()
            # (the revision starts at random, below 2**62: a deployment deleted with its organization
            # and made again with the same id is not taken for the old one by a poll's memo)
            # each table's rows in one statement over a JSON value, not an executemany: under the
            # writer lock, each row of those took the GIL back from the worker's other threads
            conn.execute("INSERT INTO deployment_stats SELECT ?, ?, key, value FROM json_each(?)",
                         (d.tenant_id, d.id, json.dumps(d.stats)))
            if d.phases:
                conn.execute("INSERT INTO deployment_phases (tenant_id, deployment_id, idx, device_limit,"
                             " device_count) SELECT ?, ?, key, value, 0 FROM json_each(?)",
                             (d.tenant_id, d.id, json.dumps([p.device_limit for p in d.phases])))
            if targets:
                conn.execute(_INSERT_TARGETS, (d.tenant_id, d.id, d.created, json.dumps(targets)))

    def get_deployment(self, tenant, deployment_id, *, counts=True):
        row = self.db.conn.execute("SELECT * FROM deployments WHERE tenant_id=? AND id=?",
                                   (tenant, deployment_id)).fetchone()
        return self._deployment(row, counts=counts) if row else None

    def get_deployments(self, tenant, deployment_ids):
        if not deployment_ids:
            return []
        rows = self.db.conn.execute(f"SELECT * FROM deployments WHERE tenant_id=? AND id IN ({_in(deployment_ids)})",
                                    (tenant, *deployment_ids)).fetchall()
        return [self._deployment(r) for r in rows]

    def find_deployments(self, tenant, q: DeploymentQuery):
        where, args = ["tenant_id=?"], [tenant]
        if q.status == m.DEPLOYMENT_SCHEDULED:
            where.append("status='pending' AND start_ts > ?")
            args.append(q.now)
        elif q.status == m.DEPLOYMENT_PENDING:
            where.append("status='pending' AND (start_ts IS NULL OR start_ts <= ?)")
            args.append(q.now)
        elif q.status:
            where.append("status=?")
            args.append(q.status)
        if q.type:
            where.append("coalesce(json_extract(doc, '$.type'), 'software') = ?")
            args.append(q.type)
        if q.search:
            where.append("(instr(lower(name), lower(?)) > 0 OR instr(lower(artifact_name), lower(?)) > 0)")
            args += [q.search, q.search]
        if q.ids:
            where.append(f"id IN ({_in(q.ids)})")
            args += q.ids
        if q.names:
            where.append(f"name IN ({_in(q.names)})")
            args += q.names
        if q.created_before is not None:
            where.append("created <= ?")
            args.append(q.created_before)
        if q.created_after is not None:
            where.append("created >= ?")
            args.append(q.created_after)
        clause = " AND ".join(where)
        conn = self.db.conn
        total = conn.execute(f"SELECT count(*) FROM deployments WHERE {clause}", args).fetchone()[0]
        order = "DESC" if q.sort_desc else "ASC"
        rows = conn.execute(f"SELECT * FROM deployments WHERE {clause} ORDER BY created {order}, id {order}"
                            " LIMIT ? OFFSET ?", (*args, q.limit, q.skip)).fetchall()
        return [self._deployment(r) for r in rows], total

    def deployment_device_ids(self, tenant, deployment_id, skip, limit):
        conn = self.db.conn
        rows = conn.execute("SELECT device_id FROM deployment_targets WHERE tenant_id=? AND deployment_id=?"
                            " ORDER BY device_id LIMIT ? OFFSET ?", (tenant, deployment_id, limit, skip)).fetchall()
        if not rows:
            rows = conn.execute("SELECT device_id FROM device_deployments WHERE tenant_id=? AND deployment_id=?"
                                " ORDER BY device_id LIMIT ? OFFSET ?",
                                (tenant, deployment_id, limit, skip)).fetchall()
        return [r[0] for r in rows]

    def unfinished_deployment_with_artifact(self, tenant, artifact_name):
        return self.db.conn.execute(
            "SELECT 1 FROM deployments WHERE tenant_id=? AND artifact_name=? AND status != 'finished' LIMIT 1",
            (tenant, artifact_name)).fetchone() is not None

    def assign_device(self, tenant, deployment, phase, dd, size=0):
        deployment_id = deployment.id
        try:
            with self._atomic() as conn:
                cur = conn.execute(f"INSERT INTO device_deployments ({_DD_COLUMNS}) VALUES ({_in(_DD_FIELDS)})"
                                   " ON CONFLICT (tenant_id, deployment_id, device_id) DO NOTHING", _dd_row(dd))
                if cur.rowcount != 1:
                    raise _Exists()
                if phase is not None:
                    cur = conn.execute("UPDATE deployment_phases SET device_count = device_count + 1"
                                       " WHERE tenant_id=? AND deployment_id=? AND idx=?"
                                       " AND (device_limit IS NULL OR device_count < device_limit)",
                                       (tenant, deployment_id, phase))
                    if cur.rowcount != 1:
                        raise _NoSlot()
                cur = conn.execute("UPDATE deployments SET device_count = device_count + 1, total_size = total_size + ?"
                                   " WHERE tenant_id=? AND id=? AND status != 'finished' AND paused = 0"
                                   " AND (dynamic = 0 OR max_devices = 0 OR device_count < max_devices)",
                                   (size, tenant, deployment_id))
                if cur.rowcount != 1:
                    raise _NoSlot()
                if deployment.dynamic:
                    self._add_stats(conn, tenant, deployment_id, {m.PENDING: 1})
        except _NoSlot:
            return NO_SLOT, None
        except _Exists:
            return EXISTS, self.get_device_deployment(tenant, deployment_id, dd.device_id)
        return ASSIGNED, dd

    def assign_artifact(self, tenant, dd, artifact_id, device_type, size):
        with self.db.transaction() as conn:
            cur = conn.execute("UPDATE device_deployments SET artifact_id=?, device_type=? WHERE tenant_id=? AND id=?"
                               " AND status=? AND artifact_id IS NULL",
                               (artifact_id, device_type, tenant, dd.id, dd.status))
            if cur.rowcount != 1:
                return False
            if size:
                conn.execute("UPDATE deployments SET total_size = total_size + ? WHERE tenant_id=? AND id=?",
                             (size, tenant, dd.deployment_id))
        return True

    def adjust_stats(self, tenant, deployment_id, changes, retry_pending=0, total_size=0, fetch=True,
                     phase=None, phase_outcomes=None):
        with self.db.transaction() as conn:
            self._add_stats(conn, tenant, deployment_id, changes)
            if phase is not None and phase_outcomes and any(phase_outcomes.values()):
                conn.execute("UPDATE deployment_phases SET failed = failed + ?, succeeded = succeeded + ?"
                             " WHERE tenant_id=? AND deployment_id=? AND idx=?",
                             (phase_outcomes.get("failed", 0), phase_outcomes.get("succeeded", 0),
                              tenant, deployment_id, phase))
            if retry_pending or total_size:
                conn.execute("UPDATE deployments SET retry_pending = retry_pending + ?, total_size = total_size + ?"
                             " WHERE tenant_id=? AND id=?", (retry_pending, total_size, tenant, deployment_id))
            if not fetch:
                return None
            row = conn.execute(_WITH_STATS, (tenant, deployment_id)).fetchone()
            return self._deployment(row, conn, stats_json=row["stats_json"]) if row else None

    def move_device_deployment(self, tenant, dd, expected_status, fields, changes, retry_pending=0, fetch=True,
                               phase=None, phase_outcomes=None):
        # One UPDATE that bumps `moves`: the trigger dd_move_counts moves the count from the old
        # status to the new in the same statement. With nothing else to change or read back it
        # commits on its own (one statement under the writer lock, or in the caller's transaction);
        # otherwise it and the rest are one transaction.
        status = fields.get("status", expected_status)
        rest = dict(changes)
        if status != expected_status:  # what the trigger counts
            rest[expected_status] = rest.get(expected_status, 0) + 1
            rest[status] = rest.get(status, 0) - 1
        rest = {s: n for s, n in rest.items() if n}
        sets = "".join(f"{k}=?, " for k in fields)
        update = (f"UPDATE device_deployments SET {sets}moves = moves + 1 WHERE tenant_id=? AND id=? AND status=?",
                  (*(int(v) if isinstance(v, bool) else v for v in fields.values()), tenant, dd.id, expected_status))
        outcomes = phase is not None and phase_outcomes and any(phase_outcomes.values())
        if not (fetch or retry_pending or rest or outcomes):
            return self.db.conn.execute(*update).rowcount == 1, None
        with self.db.transaction() as conn:
            if conn.execute(*update).rowcount != 1:
                return False, None
            return True, self.adjust_stats(tenant, dd.deployment_id, rest, retry_pending=retry_pending, fetch=fetch,
                                           phase=phase, phase_outcomes=phase_outcomes)

    def set_deployment_status(self, tenant, deployment_id, from_statuses, status, finished=None, aborted=False,
                              failed_at_least=None):
        sets, args = ["status=?"], [status]
        if status == m.DEPLOYMENT_FINISHED:
            sets += ["finished=?", "active_checksum=NULL"]
            args.append(finished)
        if aborted:
            sets.append("aborted=1")
        condition, condition_args = _failed_condition(tenant, deployment_id, failed_at_least)
        with self.db.transaction() as conn:
            cur = conn.execute(f"UPDATE deployments SET {', '.join(sets)} WHERE tenant_id=? AND id=?"
                               f" AND status IN ({_in(from_statuses)}){condition}",
                               (*args, tenant, deployment_id, *from_statuses, *condition_args))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ rollout control
    def _update_unfinished(self, tenant, deployment_id, sets: str, args, condition: str = "", cargs=()) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(f"UPDATE deployments SET {sets} WHERE tenant_id=? AND id=? AND status != 'finished'"
                               f"{condition}", (*args, tenant, deployment_id, *cargs))
            return cur.rowcount == 1

    def pause_deployment(self, tenant, deployment_id, reason, ts, failed_at_least=None):
        condition, cargs = _failed_condition(tenant, deployment_id, failed_at_least)
        return self._update_unfinished(tenant, deployment_id, "paused=1, paused_reason=?, paused_ts=?", (reason, ts),
                                       " AND paused=0" + condition, cargs)

    def resume_deployment(self, tenant, deployment_id, failure_ack):
        return self._update_unfinished(tenant, deployment_id,
                                       "paused=0, paused_reason=NULL, paused_ts=NULL, failure_ack=?",
                                       (json.dumps(failure_ack),), " AND paused=1")

    def promote_phase(self, tenant, deployment_id, phase):
        return self._update_unfinished(tenant, deployment_id, "current_phase=?", (phase,),
                                       " AND current_phase < ?", (phase,))

    def set_control_map(self, tenant, deployment_id, control_map):
        return self._update_unfinished(tenant, deployment_id, "control_map=?", (json.dumps(control_map),),
                                       " AND control_map IS NOT NULL")

    def set_device_control_map(self, tenant, deployment_id, device_id, control_map):
        with self.db.transaction() as conn:
            cur = conn.execute(f"UPDATE device_deployments SET control_map=? WHERE tenant_id=? AND deployment_id=?"
                               f" AND device_id=? AND status IN ({_in(_ACTIVE)})",
                               (json.dumps(control_map), tenant, deployment_id, device_id, *_ACTIVE))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ failure insight
    def outcome_counts(self, tenant, deployment_id):
        rows = self.db.conn.execute(
            "SELECT device_type, previous_artifact, status, count(*) FROM device_deployments WHERE tenant_id=?"
            " AND deployment_id=? AND status IN ('success', 'failure') GROUP BY 1, 2, 3",
            (tenant, deployment_id)).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def outcome_sample(self, tenant, deployment_id, status, limit):
        # device deployment ids are random (UUID4): their order is a uniform, repeatable sample,
        # read from the covering index dd_deployment_status in that order
        rows = self.db.conn.execute(
            "SELECT device_id FROM device_deployments WHERE tenant_id=? AND deployment_id=? AND status=?"
            " ORDER BY id LIMIT ?", (tenant, deployment_id, status, limit)).fetchall()
        return [r[0] for r in rows]

    def logs_of(self, tenant, deployment_id, device_ids):
        if not device_ids:
            return []
        rows = self.db.conn.execute(
            "SELECT l.messages FROM json_each(?) i CROSS JOIN deployment_logs l ON l.tenant_id=?"
            " AND l.deployment_id=? AND l.device_id=i.value", (json.dumps(list(device_ids)), tenant, deployment_id))
        return [json.loads(r[0]) for r in rows]

    # ------------------------------------------------------------------ history
    def add_event(self, event):
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO deployment_events (tenant_id, deployment_id, id, ts, type, actor, detail)"
                         " VALUES (?,?,?,?,?,?,?)", (event.tenant_id, event.deployment_id, event.id, event.ts,
                                                     event.type, event.actor, json.dumps(event.detail)))

    def list_events(self, tenant, deployment_id, skip, limit):
        conn = self.db.conn
        total = conn.execute("SELECT count(*) FROM deployment_events WHERE tenant_id=? AND deployment_id=?",
                             (tenant, deployment_id)).fetchone()[0]
        rows = conn.execute("SELECT * FROM deployment_events WHERE tenant_id=? AND deployment_id=? ORDER BY seq"
                            " LIMIT ? OFFSET ?", (tenant, deployment_id, limit, skip)).fetchall()
        return [DeploymentEvent(id=r["id"], tenant_id=r["tenant_id"], deployment_id=r["deployment_id"], ts=r["ts"],
                                type=r["type"], actor=r["actor"], detail=json.loads(r["detail"])) for r in rows], total

    def replace_stats(self, tenant, deployment_id, stats):
        with self.db.transaction() as conn:
            conn.executemany("INSERT INTO deployment_stats VALUES (?,?,?,?) ON CONFLICT DO UPDATE"
                             " SET count = excluded.count", [(tenant, deployment_id, s, n) for s, n in stats.items()])

    # ------------------------------------------------------------------ device deployments
    def insert_device_deployment(self, dd):
        with self.db.transaction() as conn:
            cur = conn.execute(f"INSERT INTO device_deployments ({_DD_COLUMNS}) VALUES ({_in(_DD_FIELDS)})"
                               " ON CONFLICT (tenant_id, deployment_id, device_id) DO NOTHING", _dd_row(dd))
        return cur.rowcount == 1

    def get_device_deployment(self, tenant, deployment_id, device_id):
        row = self.db.conn.execute("SELECT * FROM device_deployments WHERE tenant_id=? AND deployment_id=?"
                                   " AND device_id=?", (tenant, deployment_id, device_id)).fetchone()
        return self._dd(row) if row else None

    def device_deployments_by_ids(self, tenant, ids):
        if not ids:
            return []
        rows = self.db.conn.execute(f"SELECT * FROM device_deployments WHERE tenant_id=? AND id IN ({_in(ids)})",
                                    (tenant, *ids)).fetchall()
        return [self._dd(r) for r in rows]

    def update_device_deployment(self, tenant, dd_id, expected_status, fields):
        if not fields:
            return True
        sets = ", ".join(f"{k}=?" for k in fields)
        values = [int(v) if isinstance(v, bool) else v for v in fields.values()]
        with self.db.transaction() as conn:
            cur = conn.execute(f"UPDATE device_deployments SET {sets} WHERE tenant_id=? AND id=? AND status=?",
                               (*values, tenant, dd_id, expected_status))
            return cur.rowcount == 1

    def oldest_active_device_deployment(self, tenant, device_id):
        row = self.db.conn.execute(
            f"SELECT * FROM device_deployments WHERE tenant_id=? AND device_id=? AND status IN ({_in(_ACTIVE)})"
            " AND deleted IS NULL ORDER BY created, id LIMIT 1", (tenant, device_id, *_ACTIVE)).fetchone()
        return self._dd(row) if row else None

    def device_deployments_of_device(self, tenant, device_id, statuses, include_deleted, skip, limit):
        where, args = ["tenant_id=?", "device_id=?"], [tenant, device_id]
        if statuses is not None:
            where.append(f"status IN ({_in(statuses)})")
            args += sorted(statuses)
        if not include_deleted:
            where.append("deleted IS NULL")
        clause = " AND ".join(where)
        conn = self.db.conn
        total = conn.execute(f"SELECT count(*) FROM device_deployments WHERE {clause}", args).fetchone()[0]
        rows = conn.execute(f"SELECT * FROM device_deployments WHERE {clause} ORDER BY created DESC, id"
                            " LIMIT ? OFFSET ?", (*args, limit, skip)).fetchall()
        return [self._dd(r) for r in rows], total

    def poll_device_deployments(self, tenant, device_id, limit):
        return self.poll_history(tenant, device_id, limit)[0]

    def poll_history(self, tenant, device_id, limit):
        recent, deployments, briefs = [], {}, {}
        r, b = _POLL_REVISION_AT, _POLL_BRIEF_AT
        for row in self.db.conn.execute(_POLL_HISTORY, (tenant, device_id, limit)):
            # (the statement's order: _HISTORY_DD_FIELDS)
            dd = DeviceDeployment(row[0], tenant, row[1], device_id, *row[2:12], None, *row[12:15])
            dd.log = bool(dd.log)
            if dd.control_map is not None:
                dd.control_map = json.loads(dd.control_map)
            recent.append(dd)
            if row[r] is not None and dd.deployment_id not in deployments:
                dep = self._polled_deployment(tenant, dd.deployment_id, row[r], row[r + 1:b])
                if dep is not None:
                    deployments[dd.deployment_id] = dep
            if row[b] is not None:
                briefs[dd.artifact_id] = artifacts_sqlite.brief((dd.artifact_id, *row[b:]))
        return recent, deployments, briefs

    def _polled_deployment(self, tenant: str, deployment_id: str, revision: int, counters: tuple) -> Deployment | None:
        """The record `_deployment(counts=False)` builds from the deployment's row, whose revision
        and counters (_COUNTERS' values) the caller read, a new one on every call; None if the row
        is gone.

        A device polling with its deployment pending reads the same row on every poll until the
        row changes, and building its record (the document's JSON, ~37 fields) was the largest
        part of a repeated 200 poll's own work; reading its 21 columns in every row of the history
        (and every candidate's) was most of the rest. The poll's statements read the row's
        revision and counters only; the memo keeps each record by (tenant, id, revision). The
        revision moves on at every UPDATE that names any other column (the trigger
        deployments_revision) and starts at random on an INSERT, so a record kept under a key was
        built from the values every column but the counters still has; the counters are the
        caller's. On a miss the row is read (one statement by its key) and kept under the revision
        read with it. Each call returns its own record whose lists, dicts, phases and window are
        copies (the service may change what it is given)."""
        kept = self._polled.get((tenant, deployment_id, revision))
        if kept is None:
            row = self.db.conn.execute(_POLLED_ROW, (tenant, deployment_id)).fetchone()
            if row is None:
                return None
            dep = self._deployment(row, counts=False)
            if len(row["doc"]) > _POLLED_DOC_BYTES:
                return dep
            fields = [getattr(dep, f) for f in _DEPLOYMENT_FIELDS]
            mutable = []
            for i, value in enumerate(fields):
                copy = _fresh(value)  # the memo's own copy: the record returned is the caller's
                if copy is not value:
                    fields[i] = copy
                    mutable.append(i)
            if len(self._polled) >= _POLLED_KEPT:
                self._polled.clear()  # (not the oldest alone: another thread may be changing the dict)
            self._polled[(tenant, deployment_id, row["revision"])] = (tuple(fields), tuple(mutable))
            return dep
        fields, mutable = kept
        fields = list(fields)
        for i in mutable:
            fields[i] = _fresh(fields[i])
        for i, value in zip(_COUNTER_AT, counters):
            fields[i] = value
        return Deployment(*fields)

    def _candidates(self, tenant: str, rows) -> list[Deployment]:
        """The records of a candidates statement's rows (_CANDIDATE_COLUMNS) with their counts, as
        `_deployment` builds them from the whole row."""
        out = []
        for deployment_id, revision, *counters, stats_json, phases_json in rows:
            dep = self._polled_deployment(tenant, deployment_id, revision, counters)
            if dep is None:
                continue
            stats = {s: 0 for s in m.DEVICE_STATUSES}
            stats.update(json.loads(stats_json))
            dep.stats = stats
            if dep.phases:
                phases = dep.phases
                for idx, device_count, failed, succeeded in json.loads(phases_json):
                    if 0 <= idx < len(phases):
                        phase = phases[idx]
                        phase.device_count, phase.failed, phase.succeeded = device_count, failed, succeeded
            out.append(dep)
        return out

    def candidate_static_deployments(self, tenant, device_id, created_after, limit):
        return self._candidates(tenant, self.db.conn.execute(_STATIC_CANDIDATES,
                                                             (tenant, device_id, created_after, limit)).fetchall())

    def unfinished_dynamic_deployments(self, tenant, created_after, limit):
        return self._candidates(tenant, self.db.conn.execute(_DYNAMIC_CANDIDATES,
                                                             (tenant, created_after, limit)).fetchall())

    def candidate_deployments(self, tenant, device_id, created_after, static_limit, dynamic_limit):
        rows = self.db.conn.execute(
            f"SELECT * FROM ({_STATIC_CANDIDATES}) UNION ALL SELECT * FROM ({_DYNAMIC_CANDIDATES})",
            (tenant, device_id, created_after, static_limit, tenant, created_after, dynamic_limit)).fetchall()
        return sorted(self._candidates(tenant, rows), key=lambda d: (d.created, d.id))

    def static_deployments_listing(self, tenant, device_id):
        return self.candidate_static_deployments(tenant, device_id, -1.0, 1000)

    def list_device_deployments(self, tenant, deployment_id, statuses, skip, limit, count=True):
        where, args = ["tenant_id=?", "deployment_id=?"], [tenant, deployment_id]
        if statuses is not None:
            where.append(f"status IN ({_in(statuses)})")
            args += sorted(statuses)
        clause = " AND ".join(where)
        conn = self.db.conn
        total = (conn.execute(f"SELECT count(*) FROM device_deployments WHERE {clause}", args).fetchone()[0]
                 if count else None)
        rows = conn.execute(f"SELECT * FROM device_deployments WHERE {clause} ORDER BY device_id"
                            " LIMIT ? OFFSET ?", (*args, -1 if limit is None else limit, skip)).fetchall()
        return [self._dd(r) for r in rows], total

    def device_deployments_after(self, tenant, deployment_id, after_device_id, limit):
        rows = self.db.conn.execute("SELECT * FROM device_deployments WHERE tenant_id=? AND deployment_id=?"
                                    " AND device_id > ? ORDER BY device_id LIMIT ?",
                                    (tenant, deployment_id, after_device_id, limit)).fetchall()
        return [self._dd(r) for r in rows]

    def count_device_statuses(self, tenant, deployment_id):
        rows = self.db.conn.execute("SELECT status, count(*) FROM device_deployments WHERE tenant_id=?"
                                    " AND deployment_id=? GROUP BY status", (tenant, deployment_id)).fetchall()
        return {r[0]: r[1] for r in rows}

    def deployment_status_counts(self):
        counts = dict.fromkeys(_STORED_DEPLOYMENT_STATUSES, 0)
        counts.update(self.db.conn.execute("SELECT status, count(*) FROM deployments GROUP BY status"))
        return counts

    def active_device_status_counts(self):
        counts = dict.fromkeys(m.DEVICE_STATUSES, 0)
        counts.update(self.db.conn.execute(
            "SELECT s.status, sum(s.count) FROM deployments d JOIN deployment_stats s ON s.tenant_id = d.tenant_id"
            " AND s.deployment_id = d.id WHERE d.status != 'finished' GROUP BY s.status"))
        return counts

    def count_device_statuses_by_phase(self, tenant, deployment_id):
        out: dict[int, dict[str, int]] = {}
        for phase, status, n in self.db.conn.execute(
                "SELECT phase, status, count(*) FROM device_deployments WHERE tenant_id=? AND deployment_id=?"
                " AND phase IS NOT NULL GROUP BY phase, status", (tenant, deployment_id)):
            out.setdefault(phase, {})[status] = n
        return out

    def close_active_device_deployments(self, tenant, deployment_id, status, finished):
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE device_deployments SET status=?, finished=? WHERE tenant_id=? AND deployment_id=?"
                         f" AND status IN ({_in(_ACTIVE)})", (status, finished, tenant, deployment_id, *_ACTIVE))

    def soft_delete_history(self, tenant, device_id, deleted):
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE device_deployments SET deleted=? WHERE tenant_id=? AND device_id=?"
                         f" AND status IN ({_in(_TERMINAL)}) AND deleted IS NULL",
                         (deleted, tenant, device_id, *_TERMINAL))

    def device_deployment_uses_artifact(self, tenant, artifact_id):
        return self.db.conn.execute(
            f"SELECT 1 FROM device_deployments WHERE tenant_id=? AND artifact_id=? AND status IN ({_in(_ACTIVE)})"
            " LIMIT 1", (tenant, artifact_id, *_ACTIVE)).fetchone() is not None

    def last_device_deployments(self, tenant, device_ids):
        out = []
        conn = self.db.conn
        for device_id in dict.fromkeys(device_ids):
            row = conn.execute("SELECT * FROM device_deployments WHERE tenant_id=? AND device_id=?"
                               " ORDER BY created DESC, id LIMIT 1", (tenant, device_id)).fetchone()
            if row:
                out.append(self._dd(row))
        return out

    # ------------------------------------------------------------------ logs
    def save_log(self, tenant, deployment_id, device_id, messages):
        with self.db.transaction() as conn:
            conn.execute("INSERT INTO deployment_logs VALUES (?,?,?,?) ON CONFLICT DO UPDATE"
                         " SET messages = excluded.messages", (tenant, deployment_id, device_id, json.dumps(messages)))

    def get_log(self, tenant, deployment_id, device_id):
        row = self.db.conn.execute("SELECT messages FROM deployment_logs WHERE tenant_id=? AND deployment_id=?"
                                   " AND device_id=?", (tenant, deployment_id, device_id)).fetchone()
        return json.loads(row[0]) if row else None

    # ------------------------------------------------------------------ organizations
    def delete_tenant(self, tenant):
        self._polled.clear()  # (the revisions of rows made again are random: this only frees memory)
        self.db.delete_tenant_rows(("device_deployments", "deployment_logs", "deployment_targets", "deployment_stats",
                                    "deployment_phases", "deployment_events", "deployments"), tenant)
