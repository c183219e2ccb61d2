"""useradm store on SQLite."""

from __future__ import annotations

import json
import sqlite3
from typing import Sequence

from common.errors import Conflict, PreconditionFailed
from useradm.model import PAT, SESSION, Role, Token, User
from useradm.store import UseradmStore, grants_from, grants_json

MIGRATIONS = [
    [
        "CREATE TABLE useradm_users ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, email TEXT NOT NULL,"
        " password_hash TEXT NOT NULL, created_ts REAL NOT NULL, updated_ts REAL NOT NULL,"
        " login_ts REAL)",
        "CREATE UNIQUE INDEX useradm_users_tenant_email ON useradm_users (tenant_id, email)",
        "CREATE INDEX useradm_users_email ON useradm_users (email, created_ts)",
        "CREATE INDEX useradm_users_tenant_created ON useradm_users (tenant_id, created_ts)",
        "CREATE TABLE useradm_tokens ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " name TEXT, created_ts REAL NOT NULL, exp REAL, last_used REAL)",
        "CREATE INDEX useradm_tokens_user ON useradm_tokens (tenant_id, user_id, kind, created_ts)",
        "CREATE UNIQUE INDEX useradm_tokens_pat_name ON useradm_tokens (tenant_id, user_id, name)"
        " WHERE kind = 'pat'",
        "CREATE TABLE useradm_settings ("
        " tenant_id TEXT NOT NULL, user_id TEXT NOT NULL, data TEXT NOT NULL, etag TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, user_id))",
    ],
    [
        "CREATE TABLE useradm_rate_limits (key TEXT PRIMARY KEY, count INTEGER NOT NULL,"
        " expires_at REAL NOT NULL)",
        "CREATE INDEX useradm_rate_limits_expiry ON useradm_rate_limits (expires_at)",
    ],
    [
        # roles: users hold role names (existing users stay administrators, as before roles);
        # a personal access token may act with a subset of them; custom roles per organization
        "ALTER TABLE useradm_users ADD COLUMN roles TEXT NOT NULL DEFAULT '[\"RBAC_ROLE_PERMIT_ALL\"]'",
        "ALTER TABLE useradm_tokens ADD COLUMN roles TEXT",
        "CREATE TABLE useradm_roles ("
        " tenant_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, grants TEXT NOT NULL,"
        " created_ts REAL NOT NULL, updated_ts REAL NOT NULL, PRIMARY KEY (tenant_id, name))",
    ],
    [
        # one account per email on the whole server, so that login needs no organization (as
        # hosted Mender); fails if two organizations share an email (docs/tenants.md)
        "CREATE UNIQUE INDEX useradm_users_email_unique ON useradm_users (email)",
    ],
]

_USER_COLS = "id, tenant_id, email, password_hash, created_ts, updated_ts, login_ts, roles"
_TOKEN_COLS = "id, tenant_id, user_id, kind, name, created_ts, exp, last_used, roles"


def _user(row) -> User:
    d = dict(row)
    d["roles"] = json.loads(d["roles"])
    return User(**d)


def _token(row) -> Token:
    d = dict(row)
    d["roles"] = json.loads(d["roles"]) if d["roles"] is not None else None
    return Token(**d)


def _role(row) -> Role:
    return Role(tenant_id=row["tenant_id"], name=row["name"], description=row["description"],
                grants=grants_from(json.loads(row["grants"])), created_ts=row["created_ts"],
                updated_ts=row["updated_ts"])


class SqliteUseradmStore(UseradmStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._db.conn

    # users ------------------------------------------------------------------
    def insert_user(self, user: User) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO useradm_users ({_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (user.id, user.tenant_id, user.email, user.password_hash, user.created_ts, user.updated_ts,
                 user.login_ts, json.dumps(list(user.roles))))
        except sqlite3.IntegrityError:
            raise Conflict("user with the same email already exists") from None

    def get_user(self, tenant: str, user_id: str) -> User | None:
        row = self._conn.execute(f"SELECT {_USER_COLS} FROM useradm_users WHERE tenant_id = ? AND id = ?",
                                 (tenant, user_id)).fetchone()
        return _user(row) if row else None

    def get_user_by_email(self, tenant: str, email: str) -> User | None:
        row = self._conn.execute(f"SELECT {_USER_COLS} FROM useradm_users WHERE tenant_id = ? AND email = ?",
                                 (tenant, email)).fetchone()
        return _user(row) if row else None

    def find_login_candidates(self, email: str, limit: int) -> list[User]:
        rows = self._conn.execute(f"SELECT {_USER_COLS} FROM useradm_users WHERE email = ?"
                                  " ORDER BY created_ts, id LIMIT ?", (email, limit)).fetchall()
        return [_user(r) for r in rows]

    def list_users(self, tenant: str | None, *, ids: Sequence[str] = (), emails: Sequence[str] = (),
                   created_after=None, created_before=None, updated_after=None, updated_before=None,
                   skip: int = 0, limit: int = 20) -> tuple[list[User], int]:
        where, params = (["tenant_id = ?"], [tenant]) if tenant is not None else (["1"], [])
        if ids:
            where.append(f"id IN ({', '.join('?' * len(ids))})")
            params += list(ids)
        if emails:
            where.append(f"email IN ({', '.join('?' * len(emails))})")
            params += list(emails)
        for column, op, value in (("created_ts", ">", created_after), ("created_ts", "<", created_before),
                                  ("updated_ts", ">", updated_after), ("updated_ts", "<", updated_before)):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        clause = " AND ".join(where)
        total = self._conn.execute(f"SELECT count(*) FROM useradm_users WHERE {clause}", params).fetchone()[0]
        rows = self._conn.execute(f"SELECT {_USER_COLS} FROM useradm_users WHERE {clause}"
                                  " ORDER BY created_ts, id LIMIT ? OFFSET ?", params + [limit, skip]).fetchall()
        return [_user(r) for r in rows], total

    def update_user(self, tenant: str, user_id: str, fields: dict) -> bool:
        allowed = {"email", "password_hash", "updated_ts", "login_ts", "roles"}
        assert fields and set(fields) <= allowed, fields
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [json.dumps(list(v)) if k == "roles" else v for k, v in fields.items()]
        try:
            cur = self._conn.execute(f"UPDATE useradm_users SET {sets} WHERE tenant_id = ? AND id = ?",
                                     [*values, tenant, user_id])
        except sqlite3.IntegrityError:
            raise Conflict("user with the same email already exists") from None
        return cur.rowcount > 0

    def delete_user(self, tenant: str, user_id: str) -> bool:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM useradm_tokens WHERE tenant_id = ? AND user_id = ?", (tenant, user_id))
            conn.execute("DELETE FROM useradm_settings WHERE tenant_id = ? AND user_id = ?", (tenant, user_id))
            cur = conn.execute("DELETE FROM useradm_users WHERE tenant_id = ? AND id = ?", (tenant, user_id))
            return cur.rowcount > 0

    def count_role_holders(self, tenant: str, role: str) -> int:
        return self._conn.execute("SELECT count(*) FROM useradm_users u WHERE tenant_id = ?"
                                  " AND EXISTS (SELECT 1 FROM json_each(u.roles) WHERE value = ?)",
                                  (tenant, role)).fetchone()[0]

    def delete_tenant(self, tenant: str) -> None:
        with self._db.transaction() as conn:
            for table in ("useradm_tokens", "useradm_settings", "useradm_roles", "useradm_users"):
                conn.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant,))

    def any_user(self) -> bool:
        return self._conn.execute("SELECT 1 FROM useradm_users LIMIT 1").fetchone() is not None

    # tokens -----------------------------------------------------------------
    def insert_token(self, token: Token) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO useradm_tokens ({_TOKEN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (token.id, token.tenant_id, token.user_id, token.kind, token.name, token.created_ts, token.exp,
                 token.last_used, json.dumps(list(token.roles)) if token.roles is not None else None))
        except sqlite3.IntegrityError:
            raise Conflict("Personal Access Token with the same name already exists") from None

    def get_live_token(self, tenant: str, token_id: str, user_id: str) -> Token | None:
        found = self.get_live_token_and_roles(tenant, token_id, user_id)
        return found[0] if found else None

    def get_live_token_and_roles(self, tenant: str, token_id: str, user_id: str) -> tuple[Token, list[str]] | None:
        row = self._conn.execute(
            "SELECT t.id, t.tenant_id, t.user_id, t.kind, t.name, t.created_ts, t.exp, t.last_used, t.roles,"
            " u.roles AS user_roles"
            " FROM useradm_tokens t JOIN useradm_users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id"
            " WHERE t.id = ? AND t.tenant_id = ? AND t.user_id = ?", (token_id, tenant, user_id)).fetchone()
        if row is None:
            return None
        d = dict(row)
        user_roles = json.loads(d.pop("user_roles"))
        return _token(d), user_roles

    def list_tokens(self, tenant: str, user_id: str, kind: str) -> list[Token]:
        rows = self._conn.execute(f"SELECT {_TOKEN_COLS} FROM useradm_tokens"
                                  " WHERE tenant_id = ? AND user_id = ? AND kind = ? ORDER BY created_ts, id",
                                  (tenant, user_id, kind)).fetchall()
        return [_token(r) for r in rows]

    def count_tokens(self, tenant: str, user_id: str, kind: str) -> int:
        return self._conn.execute("SELECT count(*) FROM useradm_tokens"
                                  " WHERE tenant_id = ? AND user_id = ? AND kind = ?",
                                  (tenant, user_id, kind)).fetchone()[0]

    def delete_token(self, tenant: str, token_id: str, user_id: str | None = None,
                     kind: str | None = None) -> bool:
        sql, params = "DELETE FROM useradm_tokens WHERE tenant_id = ? AND id = ?", [tenant, token_id]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return self._conn.execute(sql, params).rowcount > 0

    def delete_user_tokens(self, tenant: str, user_id: str | None = None, *,
                           except_id: str | None = None, kind: str | None = None) -> int:
        sql, params = "DELETE FROM useradm_tokens WHERE tenant_id = ?", [tenant]
        if user_id is not None:
            sql += " AND user_id = ?"
            params.append(user_id)
        if except_id is not None:
            sql += " AND id != ?"
            params.append(except_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return self._conn.execute(sql, params).rowcount

    def trim_sessions(self, tenant: str, user_id: str, keep: int) -> int:
        cur = self._conn.execute(
            "DELETE FROM useradm_tokens WHERE id IN (SELECT id FROM useradm_tokens"
            " WHERE tenant_id = ? AND user_id = ? AND kind = ? ORDER BY created_ts DESC, id DESC"
            " LIMIT -1 OFFSET ?)", (tenant, user_id, SESSION, keep))
        return cur.rowcount

    def touch_token(self, tenant: str, token_id: str, ts: float) -> None:
        self._conn.execute("UPDATE useradm_tokens SET last_used = ? WHERE tenant_id = ? AND id = ?",
                           (ts, tenant, token_id))

    # custom roles -------------------------------------------------------------
    def insert_role(self, role: Role) -> None:
        try:
            self._conn.execute("INSERT INTO useradm_roles (tenant_id, name, description, grants, created_ts, updated_ts)"
                               " VALUES (?, ?, ?, ?, ?, ?)",
                               (role.tenant_id, role.name, role.description, json.dumps(grants_json(role.grants)),
                                role.created_ts, role.updated_ts))
        except sqlite3.IntegrityError:
            raise Conflict("role with the same name already exists") from None

    def get_roles(self, tenant: str, names: Sequence[str] | None = None) -> list[Role]:
        sql, params = "SELECT * FROM useradm_roles WHERE tenant_id = ?", [tenant]
        if names is not None:
            if not names:
                return []
            sql += f" AND name IN ({', '.join('?' * len(names))})"
            params += list(names)
        return [_role(r) for r in self._conn.execute(sql + " ORDER BY name", params).fetchall()]

    def update_role(self, role: Role) -> bool:
        return self._conn.execute("UPDATE useradm_roles SET description = ?, grants = ?, updated_ts = ?"
                                  " WHERE tenant_id = ? AND name = ?",
                                  (role.description, json.dumps(grants_json(role.grants)), role.updated_ts,
                                   role.tenant_id, role.name)).rowcount > 0

    def delete_role(self, tenant: str, name: str) -> bool:
        return self._conn.execute("DELETE FROM useradm_roles WHERE tenant_id = ? AND name = ?",
                                  (tenant, name)).rowcount > 0

    # settings ---------------------------------------------------------------
    def get_settings(self, tenant: str, user_id: str) -> tuple[dict, str] | None:
        row = self._conn.execute("SELECT data, etag FROM useradm_settings WHERE tenant_id = ? AND user_id = ?",
                                 (tenant, user_id)).fetchone()
        return (json.loads(row["data"]), row["etag"]) if row else None

    def put_settings(self, tenant: str, user_id: str, data: dict, etag: str,
                     if_match: str | None) -> None:
        text = json.dumps(data, separators=(",", ":"))
        if if_match is None:
            self._conn.execute("INSERT INTO useradm_settings (tenant_id, user_id, data, etag) VALUES (?, ?, ?, ?)"
                               " ON CONFLICT (tenant_id, user_id) DO UPDATE SET data = excluded.data,"
                               " etag = excluded.etag", (tenant, user_id, text, etag))
            return
        cur = self._conn.execute("UPDATE useradm_settings SET data = ?, etag = ?"
                                 " WHERE tenant_id = ? AND user_id = ? AND etag = ?",
                                 (text, etag, tenant, user_id, if_match))
        if cur.rowcount == 0:
            raise PreconditionFailed("ETag doesn't match")

    # rate limits ------------------------------------------------------------
    def rate_hit(self, key: str, amount: int, window: float, now: float) -> int:
        with self._db.transaction() as conn:
            row = conn.execute("SELECT count, expires_at FROM useradm_rate_limits WHERE key = ?", (key,)).fetchone()
            if row is not None and row["expires_at"] > now:
                conn.execute("UPDATE useradm_rate_limits SET count = count + ? WHERE key = ?", (amount, key))
                return row["count"] + amount
            conn.execute("INSERT INTO useradm_rate_limits (key, count, expires_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (key) DO UPDATE SET count = excluded.count, expires_at = excluded.expires_at",
                         (key, amount, now + window))
            # a new window: also sweep a few ended ones, so the table stays small
            conn.execute("DELETE FROM useradm_rate_limits WHERE key IN (SELECT key FROM useradm_rate_limits"
                         " WHERE expires_at <= ? LIMIT 100)", (now,))
            return amount

    def rate_get(self, key: str, now: float) -> tuple[int, float] | None:
        row = self._conn.execute("SELECT count, expires_at FROM useradm_rate_limits WHERE key = ? AND expires_at > ?",
                                 (key, now)).fetchone()
        return (row["count"], row["expires_at"]) if row else None

    def rate_clear(self, key: str) -> None:
        self._conn.execute("DELETE FROM useradm_rate_limits WHERE key = ?", (key,))

    def rate_reset(self) -> int:
        return self._conn.execute("DELETE FROM useradm_rate_limits").rowcount


__all__ = ["SqliteUseradmStore", "PAT", "SESSION"]
