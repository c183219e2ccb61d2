"""tenantadm store on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Sequence

from common.db import SqliteStore
from common.errors import Conflict
from tenantadm.model import Tenant
from tenantadm.store import TenantadmStore

MIGRATIONS = [
    [
        "CREATE TABLE tenantadm_tenants ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL,"
        " status TEXT NOT NULL, tenant_token TEXT NOT NULL, token_id TEXT NOT NULL,"
        " created_ts REAL NOT NULL, updated_ts REAL NOT NULL)",
        "CREATE INDEX tenantadm_tenants_name ON tenantadm_tenants (name_key)",
        "CREATE INDEX tenantadm_tenants_created ON tenantadm_tenants (created_ts, id)",
        "CREATE TABLE tenantadm_limits ("
        " tenant_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, name))",
    ],
]

_COLS = "id, name, status, tenant_token, token_id, created_ts, updated_ts"


def _row(row) -> Tenant | None:
    return Tenant(**dict(row)) if row else None


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteTenantadmStore(SqliteStore, TenantadmStore):
    migrations = MIGRATIONS

    def insert_tenant(self, tenant: Tenant) -> None:
        # `tenant_id` repeats `id`: every table has the column the tenant-scope checks look for
        try:
            self._conn.execute(
                f"INSERT INTO tenantadm_tenants ({_COLS}, tenant_id, name_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant.id, tenant.name, tenant.status, tenant.tenant_token, tenant.token_id, tenant.created_ts,
                 tenant.updated_ts, tenant.id, tenant.name.casefold()))
        except sqlite3.IntegrityError:
            raise Conflict("an organization with this id already exists") from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return _row(self._conn.execute(f"SELECT {_COLS} FROM tenantadm_tenants WHERE id = ?",
                                       (tenant_id,)).fetchone())

    def list_tenants(self, *, ids: Sequence[str] | None = None, q: str | None = None,
                     name: str | None = None, skip: int = 0, limit: int = 20) -> tuple[list[Tenant], int]:
        where, params = ["1"], []
        if ids is not None:
            where.append(f"id IN ({', '.join('?' * len(ids))})" if ids else "0")
            params += list(ids)
        if q:
            where.append("(id = ? OR name_key LIKE ? ESCAPE '\\')")
            params += [q, f"%{_escape_like(q.casefold())}%"]
        if name is not None:
            where.append("name_key = ?")
            params.append(name.casefold())
        clause = " AND ".join(where)
        total = self._conn.execute(f"SELECT count(*) FROM tenantadm_tenants WHERE {clause}", params).fetchone()[0]
        rows = self._conn.execute(f"SELECT {_COLS} FROM tenantadm_tenants WHERE {clause}"
                                  " ORDER BY created_ts, id LIMIT ? OFFSET ?", params + [limit, skip]).fetchall()
        return [_row(r) for r in rows], total

    def update_tenant(self, tenant_id: str, *, updated_ts: float, name: str | None = None,
                      status: str | None = None, expect_status: Sequence[str] | None = None) -> bool:
        sets, params = ["updated_ts = ?"], [updated_ts]
        if name is not None:
            sets += ["name = ?", "name_key = ?"]
            params += [name, name.casefold()]
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        sql = f"UPDATE tenantadm_tenants SET {', '.join(sets)} WHERE id = ?"
        params.append(tenant_id)
        if expect_status is not None:
            sql += f" AND status IN ({', '.join('?' * len(expect_status))})"
            params += list(expect_status)
        return self._conn.execute(sql, params).rowcount > 0

    def set_token(self, tenant_id: str, tenant_token: str, token_id: str, updated_ts: float) -> bool:
        cur = self._conn.execute("UPDATE tenantadm_tenants SET tenant_token = ?, token_id = ?, updated_ts = ?"
                                 " WHERE id = ?", (tenant_token, token_id, updated_ts, tenant_id))
        return cur.rowcount > 0

    def delete_tenant(self, tenant_id: str) -> bool:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM tenantadm_limits WHERE tenant_id = ?", (tenant_id,))
            return conn.execute("DELETE FROM tenantadm_tenants WHERE id = ?", (tenant_id,)).rowcount > 0

    def get_limit(self, tenant_id: str, name: str) -> int | None:
        row = self._conn.execute("SELECT value FROM tenantadm_limits WHERE tenant_id = ? AND name = ?",
                                 (tenant_id, name)).fetchone()
        return None if row is None else int(row[0])

    def set_limit(self, tenant_id: str, name: str, value: int) -> None:
        self._conn.execute("INSERT INTO tenantadm_limits (tenant_id, name, value) VALUES (?, ?, ?)"
                           " ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
                           (tenant_id, name, value))

    def delete_limit(self, tenant_id: str, name: str) -> None:
        self._conn.execute("DELETE FROM tenantadm_limits WHERE tenant_id = ? AND name = ?", (tenant_id, name))
