"""auditlogs store on SQLite (table auditlogs_entries)."""

from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from auditlogs.model import Actor, AuditEntry, EntryFilter
from auditlogs.store import AuditlogsStore

MIGRATIONS = [
    [
        "CREATE TABLE auditlogs_entries ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, time REAL NOT NULL,"
        " actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, actor_email TEXT, actor_token_id TEXT,"
        " action TEXT NOT NULL, object_type TEXT NOT NULL, object_id TEXT NOT NULL, object_name TEXT,"
        " object_extra TEXT, change TEXT NOT NULL, request_id TEXT NOT NULL, client TEXT NOT NULL)",
        "CREATE INDEX auditlogs_tenant_time ON auditlogs_entries (tenant_id, time, id)",
        "CREATE INDEX auditlogs_tenant_object ON auditlogs_entries (tenant_id, object_id, time)",
        "CREATE INDEX auditlogs_tenant_actor ON auditlogs_entries (tenant_id, actor_id, time)",
        "CREATE INDEX auditlogs_tenant_email ON auditlogs_entries (tenant_id, actor_email, time)",
        "CREATE INDEX auditlogs_tenant_type ON auditlogs_entries (tenant_id, object_type, time)",
        "CREATE INDEX auditlogs_time ON auditlogs_entries (time)",  # retention
    ],
]

_COLS = ("id, tenant_id, time, actor_type, actor_id, actor_email, actor_token_id, action, object_type,"
         " object_id, object_name, object_extra, change, request_id, client")


def _row(e: AuditEntry) -> tuple:
    return (e.id, e.tenant_id, e.time, e.actor.type, e.actor.id, e.actor.email, e.actor.token_id, e.action,
            e.object_type, e.object_id, e.object_name,
            json.dumps(e.object_extra, separators=(",", ":")) if e.object_extra else None,
            e.change, e.request_id, e.client)


def _entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(id=r["id"], tenant_id=r["tenant_id"], time=r["time"],
                      actor=Actor(r["actor_type"], r["actor_id"], r["actor_email"], r["actor_token_id"]),
                      action=r["action"], object_type=r["object_type"], object_id=r["object_id"],
                      object_name=r["object_name"],
                      object_extra=json.loads(r["object_extra"]) if r["object_extra"] else {},
                      change=r["change"], request_id=r["request_id"], client=r["client"])


def _where(tenant: str, f: EntryFilter) -> tuple[list[str], list]:
    clauses, params = ["tenant_id = ?"], [tenant]
    for column, op, value in (("time", ">=", f.created_after), ("time", "<=", f.created_before),
                              ("actor_id", "=", f.actor_id), ("actor_type", "=", f.actor_type),
                              ("actor_email", "=", f.actor_email), ("object_id", "=", f.object_id),
                              ("object_type", "=", f.object_type)):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    if f.object_deployment_name is not None:
        clauses.append("object_type = 'deployment' AND object_name = ?")
        params.append(f.object_deployment_name)
    return clauses, params


class SqliteAuditlogsStore(AuditlogsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    def insert(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        with self._db.transaction() as conn:
            conn.executemany(f"INSERT INTO auditlogs_entries ({_COLS}) VALUES ({', '.join('?' * 15)})",
                             [_row(e) for e in entries])

    def list(self, tenant, where, *, newest_first=True, skip=0, limit=20):
        clauses, params = _where(tenant, where)
        clause = " AND ".join(clauses)
        order = "DESC" if newest_first else "ASC"
        conn = self._db.conn
        total = conn.execute(f"SELECT count(*) FROM auditlogs_entries WHERE {clause}", params).fetchone()[0]
        rows = conn.execute(f"SELECT {_COLS} FROM auditlogs_entries WHERE {clause}"
                            f" ORDER BY time {order}, id {order} LIMIT ? OFFSET ?", params + [limit, skip]).fetchall()
        return [_entry(r) for r in rows], total

    def after(self, tenant, where, *, newest_first, cursor, limit):
        clauses, params = _where(tenant, where)
        if cursor is not None:
            op = "<" if newest_first else ">"
            clauses.append(f"(time {op} ? OR (time = ? AND id {op} ?))")
            params += [cursor[0], cursor[0], cursor[1]]
        order = "DESC" if newest_first else "ASC"
        rows = self._db.conn.execute(f"SELECT {_COLS} FROM auditlogs_entries WHERE {' AND '.join(clauses)}"
                                     f" ORDER BY time {order}, id {order} LIMIT ?", params + [limit]).fetchall()
        return [_entry(r) for r in rows]

    def prune(self, before, batch=1000):
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM auditlogs_entries WHERE id IN (SELECT id FROM auditlogs_entries"
                                " WHERE time < ? ORDER BY time LIMIT ?)", (before, batch)).rowcount

    def delete_tenant(self, tenant):
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM auditlogs_entries WHERE tenant_id = ?", (tenant,))
