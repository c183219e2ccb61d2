"""SQLite implementation of the iotmanager store.

An event is recorded inside the caller's transaction when there is one (`db.transaction()` joins
the outer one), so a device's change and its event commit together. Sequence numbers are the
events' row ids: rows are inserted under the single writer lock, so they commit in id order.
"""

from __future__ import annotations

import json

from common.db import SqliteStore
from common.errors import Conflict
from iotmanager.model import FAILED, PENDING, PROVIDER_WEBHOOK, Attempt, Claim, Delivery, Event, HTTPCredentials, Integration
from iotmanager.store import (IotManagerStore, attempt_doc, attempt_from, credentials_doc,
                              credentials_from)

REMOVED = "integration removed"

MIGRATIONS = [
    [
        "CREATE TABLE iotmanager_integrations ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, provider TEXT NOT NULL, credentials TEXT NOT NULL,"
        " description TEXT NOT NULL DEFAULT '', created_ts REAL NOT NULL,"
        " next_due_ts REAL, lease_owner TEXT, lease_until REAL NOT NULL DEFAULT 0)",
        "CREATE INDEX iotmanager_integrations_tenant ON iotmanager_integrations (tenant_id, created_ts, id)",
        "CREATE INDEX iotmanager_integrations_due ON iotmanager_integrations (next_due_ts)",
        "CREATE TABLE iotmanager_events ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,"
        " type TEXT NOT NULL, time REAL NOT NULL, body TEXT NOT NULL, expire_ts REAL NOT NULL)",
        "CREATE INDEX iotmanager_events_tenant ON iotmanager_events (tenant_id, seq)",
        "CREATE INDEX iotmanager_events_expire ON iotmanager_events (expire_ts)",
        "CREATE TABLE iotmanager_deliveries ("
        " event_seq INTEGER NOT NULL REFERENCES iotmanager_events (seq) ON DELETE CASCADE,"
        " integration_id TEXT NOT NULL, tenant_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " state TEXT NOT NULL, next_attempt_ts REAL NOT NULL, deadline_ts REAL NOT NULL,"
        " attempts TEXT NOT NULL DEFAULT '[]', attempt_count INTEGER NOT NULL DEFAULT 0, error TEXT,"
        " PRIMARY KEY (event_seq, integration_id))",
        "CREATE INDEX iotmanager_deliveries_queue ON iotmanager_deliveries"
        " (tenant_id, integration_id, state, event_seq)",
        "CREATE INDEX iotmanager_deliveries_integration ON iotmanager_deliveries (tenant_id, integration_id, event_seq)",
        "CREATE INDEX iotmanager_deliveries_state ON iotmanager_deliveries (state, deadline_ts)",
    ],
]

_INTEGRATION_COLS = "id, tenant_id, provider, credentials, description, created_ts"
_DELIVERY_COLS = ("d.event_seq, d.integration_id, d.tenant_id, d.event_id, d.state, d.next_attempt_ts,"
                  " d.deadline_ts, d.attempts, d.attempt_count, d.error")


def _in(values: list) -> str:
    return ",".join("?" * len(values))


def _integration(row) -> Integration | None:
    if row is None:
        return None
    return Integration(id=row["id"], tenant_id=row["tenant_id"], provider=row["provider"],
                       credentials=credentials_from(json.loads(row["credentials"])),
                       description=row["description"], created_ts=row["created_ts"])


def _delivery(row, body: str | None = None) -> Delivery:
    return Delivery(tenant_id=row["tenant_id"], event_id=row["event_id"], integration_id=row["integration_id"],
                    seq=row["event_seq"], state=row["state"], next_attempt_ts=row["next_attempt_ts"],
                    deadline_ts=row["deadline_ts"], attempts=[attempt_from(a) for a in json.loads(row["attempts"])],
                    attempt_count=row["attempt_count"], error=row["error"], body=body)


class SqliteIotManagerStore(SqliteStore, IotManagerStore):
    migrations = MIGRATIONS

    # integrations -----------------------------------------------------------
    def insert_integration(self, integration: Integration, limit: int) -> None:
        with self._db.transaction() as conn:
            count = conn.execute("SELECT count(*) FROM iotmanager_integrations WHERE tenant_id = ?",
                                 (integration.tenant_id,)).fetchone()[0]
            if count >= limit:
                raise Conflict(f"an organization has at most {limit} integrations")
            conn.execute(f"INSERT INTO iotmanager_integrations ({_INTEGRATION_COLS}) VALUES (?,?,?,?,?,?)",
                         (integration.id, integration.tenant_id, integration.provider,
                          json.dumps(credentials_doc(integration.credentials)), integration.description,
                          integration.created_ts))

    def get_integration(self, tenant: str, integration_id: str) -> Integration | None:
        return _integration(self._conn.execute(
            f"SELECT {_INTEGRATION_COLS} FROM iotmanager_integrations WHERE tenant_id = ? AND id = ?",
            (tenant, integration_id)).fetchone())

    def list_integrations(self, tenant: str, skip: int = 0, limit: int = 20) -> list[Integration]:
        rows = self._conn.execute(
            f"SELECT {_INTEGRATION_COLS} FROM iotmanager_integrations WHERE tenant_id = ?"
            " ORDER BY created_ts, id LIMIT ? OFFSET ?", (tenant, limit, skip)).fetchall()
        return [_integration(r) for r in rows]

    def count_integrations(self, tenant: str) -> int:
        return self._conn.execute("SELECT count(*) FROM iotmanager_integrations WHERE tenant_id = ?",
                                  (tenant,)).fetchone()[0]

    def set_credentials(self, tenant: str, integration_id: str, credentials: HTTPCredentials) -> bool:
        cur = self._conn.execute("UPDATE iotmanager_integrations SET credentials = ? WHERE tenant_id = ? AND id = ?",
                                 (json.dumps(credentials_doc(credentials)), tenant, integration_id))
        return cur.rowcount > 0

    def delete_integration(self, tenant: str, integration_id: str, now: float) -> bool:
        with self._db.transaction() as conn:
            cur = conn.execute("DELETE FROM iotmanager_integrations WHERE tenant_id = ? AND id = ?",
                               (tenant, integration_id))
            if cur.rowcount == 0:
                return False
            conn.execute("UPDATE iotmanager_deliveries SET state = ?, error = ?"
                         " WHERE tenant_id = ? AND integration_id = ? AND state = ?",
                         (FAILED, REMOVED, tenant, integration_id, PENDING))
        return True

    # events -------------------------------------------------------------------
    def webhook_ids(self, tenant: str) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT id FROM iotmanager_integrations WHERE tenant_id = ? AND provider = ? ORDER BY created_ts, id",
            (tenant, PROVIDER_WEBHOOK)).fetchall()]

    def enqueue(self, event: Event, integration_ids: list[str], now: float, deadline: float,
                expire: float) -> list[str]:
        if not integration_ids:
            return []
        tenant = event.tenant_id
        with self._db.transaction() as conn:
            present = {r[0] for r in conn.execute(
                f"SELECT id FROM iotmanager_integrations WHERE tenant_id = ? AND id IN ({_in(integration_ids)})",
                (tenant, *integration_ids)).fetchall()}
            ids = [i for i in integration_ids if i in present]
            if not ids:
                return []
            seq = conn.execute("INSERT INTO iotmanager_events (id, tenant_id, type, time, body, expire_ts)"
                               " VALUES (?,?,?,?,?,?)",
                               (event.id, tenant, event.type, event.time, event.body, expire)).lastrowid
            conn.executemany("INSERT INTO iotmanager_deliveries (event_seq, integration_id, tenant_id, event_id,"
                             " state, next_attempt_ts, deadline_ts) VALUES (?,?,?,?,?,?,?)",
                             [(seq, i, tenant, event.id, PENDING, now, deadline) for i in ids])
            conn.execute("UPDATE iotmanager_integrations SET next_due_ts = ?"
                         f" WHERE tenant_id = ? AND id IN ({_in(ids)}) AND (next_due_ts IS NULL OR next_due_ts > ?)",
                         (now, tenant, *ids, now))
        return ids

    def list_events(self, tenant: str, integration_id: str | None = None, skip: int = 0,
                    limit: int = 20) -> list[Event]:
        conn = self._conn
        if integration_id is None:
            rows = conn.execute("SELECT seq, id, tenant_id, type, time, body FROM iotmanager_events"
                                " WHERE tenant_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?",
                                (tenant, limit, skip)).fetchall()
        else:
            rows = conn.execute("SELECT e.seq, e.id, e.tenant_id, e.type, e.time, e.body"
                                " FROM iotmanager_deliveries d JOIN iotmanager_events e ON e.seq = d.event_seq"
                                " WHERE d.tenant_id = ? AND d.integration_id = ?"
                                " ORDER BY d.event_seq DESC LIMIT ? OFFSET ?",
                                (tenant, integration_id, limit, skip)).fetchall()
        events = {r["seq"]: Event(id=r["id"], tenant_id=r["tenant_id"], type=r["type"], time=r["time"], body=r["body"])
                  for r in rows}
        if events:
            seqs = list(events)
            for row in conn.execute(f"SELECT {_DELIVERY_COLS} FROM iotmanager_deliveries d"
                                    f" WHERE d.tenant_id = ? AND d.event_seq IN ({_in(seqs)})"
                                    " ORDER BY d.event_seq, d.integration_id", (tenant, *seqs)).fetchall():
                events[row["event_seq"]].deliveries.append(_delivery(row))
        return list(events.values())

    # the delivery queue --------------------------------------------------------------
    def has_integrations(self) -> bool:
        return self._conn.execute("SELECT 1 FROM iotmanager_integrations LIMIT 1").fetchone() is not None

    def claim(self, owner: str, now: float, lease_until: float) -> Claim | None:
        # Idle workers poll this every second: look first (a read), and take the writer lock only to
        # claim what was seen, under the same condition (another worker may have been quicker).
        candidates = self._conn.execute(
            "SELECT rowid FROM iotmanager_integrations WHERE next_due_ts <= ? AND lease_until < ?"
            " ORDER BY next_due_ts LIMIT 5", (now, now)).fetchall()
        for (rowid,) in candidates:
            row = self._conn.execute(
                "UPDATE iotmanager_integrations SET lease_owner = ?, lease_until = ?"
                " WHERE rowid = ? AND next_due_ts <= ? AND lease_until < ? RETURNING tenant_id, id",
                (owner, lease_until, rowid, now, now)).fetchone()
            if row is not None:
                return Claim(tenant_id=row["tenant_id"], integration_id=row["id"], owner=owner,
                             lease_until=lease_until)
        return None

    def renew(self, claim: Claim, lease_until: float) -> bool:
        cur = self._conn.execute("UPDATE iotmanager_integrations SET lease_until = ?"
                                 " WHERE tenant_id = ? AND id = ? AND lease_owner = ?",
                                 (lease_until, claim.tenant_id, claim.integration_id, claim.owner))
        if cur.rowcount:
            claim.lease_until = lease_until
        return cur.rowcount > 0

    def release(self, claim: Claim, next_due: float | None) -> None:
        due = ", next_due_ts = ?" if next_due is not None else ""
        args = (next_due,) if next_due is not None else ()
        self._conn.execute(f"UPDATE iotmanager_integrations SET lease_owner = NULL, lease_until = 0{due}"
                           " WHERE tenant_id = ? AND id = ? AND lease_owner = ?",
                           (*args, claim.tenant_id, claim.integration_id, claim.owner))

    def set_idle(self, claim: Claim) -> None:
        self._conn.execute("UPDATE iotmanager_integrations SET next_due_ts = NULL"
                           " WHERE tenant_id = ? AND id = ? AND lease_owner = ?",
                           (claim.tenant_id, claim.integration_id, claim.owner))

    def queue_head(self, tenant: str, integration_id: str) -> Delivery | None:
        row = self._conn.execute(
            f"SELECT {_DELIVERY_COLS}, e.body FROM iotmanager_deliveries d"
            " JOIN iotmanager_events e ON e.seq = d.event_seq"
            " WHERE d.tenant_id = ? AND d.integration_id = ? AND d.state = ? ORDER BY d.event_seq LIMIT 1",
            (tenant, integration_id, PENDING)).fetchone()
        return None if row is None else _delivery(row, row["body"])

    def record_attempt(self, delivery: Delivery, attempt: Attempt, state: str, next_attempt_ts: float,
                       keep: int) -> bool:
        attempts = [attempt_doc(a) for a in delivery.attempts] + [attempt_doc(attempt)]
        cur = self._conn.execute(
            "UPDATE iotmanager_deliveries SET attempts = ?, attempt_count = attempt_count + 1, state = ?,"
            " next_attempt_ts = ? WHERE event_seq = ? AND integration_id = ? AND tenant_id = ?"
            " AND state = ? AND attempt_count = ?",
            (json.dumps(attempts[-keep:]), state, next_attempt_ts, delivery.seq, delivery.integration_id,
             delivery.tenant_id, PENDING, delivery.attempt_count))
        return cur.rowcount > 0

    def fail_orphans(self, before: float, limit: int) -> int:
        cur = self._conn.execute(
            "UPDATE iotmanager_deliveries SET state = ?, error = ? WHERE rowid IN ("
            " SELECT d.rowid FROM iotmanager_deliveries d WHERE d.state = ? AND d.deadline_ts < ?"
            " AND NOT EXISTS (SELECT 1 FROM iotmanager_integrations i"
            "  WHERE i.tenant_id = d.tenant_id AND i.id = d.integration_id) LIMIT ?)",
            (FAILED, REMOVED, PENDING, before, limit))
        return cur.rowcount

    def prune(self, now: float, limit: int) -> int:
        cur = self._conn.execute("DELETE FROM iotmanager_events WHERE seq IN ("
                                 " SELECT seq FROM iotmanager_events WHERE expire_ts < ? LIMIT ?)", (now, limit))
        return cur.rowcount

    # organizations --------------------------------------------------------------
    def delete_tenant(self, tenant: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM iotmanager_deliveries WHERE tenant_id = ?", (tenant,))
            conn.execute("DELETE FROM iotmanager_events WHERE tenant_id = ?", (tenant,))
            conn.execute("DELETE FROM iotmanager_integrations WHERE tenant_id = ?", (tenant,))
