"""SQLite implementation of the devauth store."""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable

from common.db import SqliteStore
from common.errors import Conflict
from devauth.model import DEVICE_STATUSES, AuthSet, Device, DeviceToken, TokenContext
from devauth.store import DevauthStore

MIGRATIONS = [
    [
        "CREATE TABLE devauth_devices ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, id_data TEXT NOT NULL, id_hash TEXT NOT NULL,"
        " status TEXT NOT NULL, decommissioning INTEGER NOT NULL DEFAULT 0,"
        " created_ts REAL NOT NULL, updated_ts REAL NOT NULL, check_in_time REAL)",
        "CREATE UNIQUE INDEX devauth_devices_tenant_hash ON devauth_devices (tenant_id, id_hash)",
        "CREATE INDEX devauth_devices_tenant_created ON devauth_devices (tenant_id, created_ts, id)",
        "CREATE INDEX devauth_devices_tenant_status ON devauth_devices (tenant_id, status, created_ts, id)",
        "CREATE TABLE devauth_auth_sets ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, device_id TEXT NOT NULL, id_hash TEXT NOT NULL,"
        " pubkey TEXT NOT NULL, status TEXT NOT NULL, ts REAL NOT NULL)",
        "CREATE UNIQUE INDEX devauth_auth_sets_tenant_key ON devauth_auth_sets (tenant_id, id_hash, pubkey)",
        "CREATE INDEX devauth_auth_sets_tenant_device ON devauth_auth_sets (tenant_id, device_id, ts)",
        "CREATE TABLE devauth_tokens ("
        " id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " auth_set_id TEXT NOT NULL, iat REAL NOT NULL, exp REAL NOT NULL)",
        "CREATE INDEX devauth_tokens_tenant_device ON devauth_tokens (tenant_id, device_id, iat)",
        "CREATE TABLE devauth_limits ("
        " tenant_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, name))",
    ],
    [
        # the SHA-256 of the issued token: a stored token is recognised without re-verifying its signature
        "ALTER TABLE devauth_tokens ADD COLUMN token_hash TEXT",
    ],
    [
        # accepted once (Mender's `provisioned`): the device-provisioned event goes out once per device;
        # devices accepted before this version count as provisioned
        "ALTER TABLE devauth_devices ADD COLUMN provisioned INTEGER NOT NULL DEFAULT 0",
        "UPDATE devauth_devices SET provisioned = 1 WHERE status = 'accepted'",
    ],
    [
        # concurrent accepts and status recomputations (devauth/service.py: _accept, _sync_device_status)
        "ALTER TABLE devauth_devices ADD COLUMN accepted_auth_set TEXT",
        "ALTER TABLE devauth_devices ADD COLUMN revision INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE devauth_devices ADD COLUMN status_revision INTEGER NOT NULL DEFAULT 0",
    ],
    [
        # devices per (tenant, status), kept by triggers in the writing transaction: the dashboard's
        # and the device list's counts are one row, not an index range of a million entries
        "CREATE TABLE devauth_status_counts (tenant_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, status)) WITHOUT ROWID",
        "INSERT INTO devauth_status_counts (tenant_id, status, n)"
        " SELECT tenant_id, status, count(*) FROM devauth_devices GROUP BY tenant_id, status",
        "CREATE TRIGGER devauth_status_counts_insert AFTER INSERT ON devauth_devices BEGIN"
        " INSERT INTO devauth_status_counts (tenant_id, status, n) VALUES (new.tenant_id, new.status, 1)"
        " ON CONFLICT DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER devauth_status_counts_delete AFTER DELETE ON devauth_devices BEGIN"
        " UPDATE devauth_status_counts SET n = n - 1 WHERE tenant_id = old.tenant_id AND status = old.status; END",
        "CREATE TRIGGER devauth_status_counts_update AFTER UPDATE OF tenant_id, status ON devauth_devices"
        " WHEN old.tenant_id IS NOT new.tenant_id OR old.status IS NOT new.status BEGIN"
        " UPDATE devauth_status_counts SET n = n - 1 WHERE tenant_id = old.tenant_id AND status = old.status;"
        " INSERT INTO devauth_status_counts (tenant_id, status, n) VALUES (new.tenant_id, new.status, 1)"
        " ON CONFLICT DO UPDATE SET n = n + 1; END",
    ],
    [
        # an issued token prunes the device's others in its own INSERT (issue_token: one statement
        # under the writer lock, not BEGIN, INSERT, DELETE and COMMIT); a token inserted without
        # `keep` (insert_token) prunes nothing. Adding a nullable column rewrites no row.
        "ALTER TABLE devauth_tokens ADD COLUMN keep INTEGER",
        "CREATE TRIGGER devauth_tokens_prune AFTER INSERT ON devauth_tokens WHEN new.keep IS NOT NULL BEGIN"
        " DELETE FROM devauth_tokens WHERE tenant_id = new.tenant_id AND device_id = new.device_id"
        " AND (exp <= new.iat OR id IN (SELECT id FROM devauth_tokens WHERE tenant_id = new.tenant_id"
        " AND device_id = new.device_id ORDER BY iat DESC, id DESC LIMIT -1 OFFSET new.keep)); END",
    ],
]

_DEVICE_COLS = ("id, tenant_id, id_data, id_hash, status, decommissioning, created_ts, updated_ts, check_in_time,"
                " accepted_auth_set, revision, status_revision")
_AUTH_SET_COLS = "id, tenant_id, device_id, id_hash, pubkey, status, ts"
_TOKEN_COLS = "id, tenant_id, device_id, auth_set_id, iat, exp, token_hash"
_DEVICE_FIELDS = {"status", "decommissioning", "updated_ts", "check_in_time", "accepted_auth_set"}


def _device(row) -> Device | None:
    if row is None:
        return None
    device = Device(**row)
    device.decommissioning = bool(device.decommissioning)
    return device


# A check-in batch, by the devices' primary key (the batch drives: CROSS JOIN, and `+tenant_id`
# keeps SQLite off the tenant's indexes, which would read every device of the organization)
_CHECK_INS_STALE = ("SELECT json_group_array(d.id) FROM json_each(?) AS ids CROSS JOIN devauth_devices AS d"
                    " ON d.id = ids.value WHERE d.tenant_id = ? AND (d.check_in_time IS NULL OR d.check_in_time < ?)")
_CHECK_INS_WRITE = ("UPDATE devauth_devices SET check_in_time = ? WHERE +tenant_id = ?"
                    " AND id IN (SELECT value FROM json_each(?))")


def _in(values: list) -> str:
    return ",".join("?" * len(values))


class SqliteDevauthStore(SqliteStore, DevauthStore):
    migrations = MIGRATIONS

    # devices ---------------------------------------------------------------
    def insert_device(self, device: Device) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO devauth_devices ({_DEVICE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (device.id, device.tenant_id, device.id_data, device.id_hash, device.status,
                 int(device.decommissioning), device.created_ts, device.updated_ts, device.check_in_time,
                 device.accepted_auth_set, device.revision, device.status_revision))
        except sqlite3.IntegrityError:
            raise Conflict("device already exists") from None

    def import_devices(self, tenant, pairs):
        # one transaction: the existing identities are read under the writer lock, the rest inserted
        inserted: list[str] = []
        with self.transaction() as conn:
            for start in range(0, len(pairs), 500):
                chunk = pairs[start:start + 500]
                hashes = [d.id_hash for d, _ in chunk]
                known = {r[0] for r in conn.execute(
                    f"SELECT id_hash FROM devauth_devices WHERE tenant_id = ? AND id_hash IN ({_in(hashes)})",
                    (tenant, *hashes))}
                fresh, seen = [], set()
                for device, auth_set in chunk:
                    if device.id_hash not in known and device.id_hash not in seen:
                        seen.add(device.id_hash)
                        fresh.append((device, auth_set))
                conn.executemany(
                    f"INSERT INTO devauth_devices ({_DEVICE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(d.id, tenant, d.id_data, d.id_hash, d.status, int(d.decommissioning), d.created_ts,
                      d.updated_ts, d.check_in_time, d.accepted_auth_set, d.revision, d.status_revision)
                     for d, _ in fresh])
                conn.executemany(
                    f"INSERT INTO devauth_auth_sets ({_AUTH_SET_COLS}) VALUES (?,?,?,?,?,?,?)",
                    [(a.id, tenant, d.id, d.id_hash, a.pubkey, a.status, a.ts) for d, a in fresh])
                inserted += [d.id for d, _ in fresh]
        return inserted

    def get_device(self, tenant: str, device_id: str) -> Device | None:
        return _device(self._conn.execute(
            f"SELECT {_DEVICE_COLS} FROM devauth_devices WHERE tenant_id = ? AND id = ?",
            (tenant, device_id)).fetchone())

    def get_device_by_hash(self, tenant: str, id_hash: str) -> Device | None:
        return _device(self._conn.execute(
            f"SELECT {_DEVICE_COLS} FROM devauth_devices WHERE tenant_id = ? AND id_hash = ?",
            (tenant, id_hash)).fetchone())

    def update_device(self, tenant: str, device_id: str, fields: dict) -> bool:
        bad = set(fields) - _DEVICE_FIELDS
        if bad:
            raise ValueError(f"not updatable: {sorted(bad)}")
        cols = ", ".join(f"{k} = ?" for k in fields)
        values = [int(v) if k == "decommissioning" else v for k, v in fields.items()]
        cur = self._conn.execute(f"UPDATE devauth_devices SET {cols} WHERE tenant_id = ? AND id = ?",
                                 (*values, tenant, device_id))
        return cur.rowcount > 0

    def next_revision(self, tenant, device_id):
        row = self._conn.execute("UPDATE devauth_devices SET revision = revision + 1 WHERE tenant_id = ? AND id = ?"
                                 " RETURNING revision", (tenant, device_id)).fetchone()
        return None if row is None else row[0]

    def set_device_status(self, tenant, device_id, status, revision, updated_ts):
        cur = self._conn.execute("UPDATE devauth_devices SET status = ?, status_revision = ?, updated_ts = ?"
                                 " WHERE tenant_id = ? AND id = ? AND status_revision < ?",
                                 (status, revision, updated_ts, tenant, device_id, revision))
        return cur.rowcount > 0

    def touch_check_ins(self, tenant: str, device_ids: list[str], ts: float, older_than: float) -> list[str]:
        # The batch's ids in and the written ones out as JSON arrays: four statements whatever its
        # size (UPDATE … RETURNING hands a row per step, and every step takes the GIL back while
        # this holds the writer lock: a batch of a busy fleet is hundreds of devices).
        with self.transaction() as conn:
            written = conn.execute(_CHECK_INS_STALE, (json.dumps(list(device_ids)), tenant, older_than)).fetchone()[0]
            conn.execute(_CHECK_INS_WRITE, (ts, tenant, written))
        return json.loads(written)

    def mark_provisioned(self, tenant: str, device_id: str) -> bool:
        cur = self._conn.execute("UPDATE devauth_devices SET provisioned = 1"
                                 " WHERE tenant_id = ? AND id = ? AND provisioned = 0", (tenant, device_id))
        return cur.rowcount > 0

    def delete_device(self, tenant: str, device_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM devauth_devices WHERE tenant_id = ? AND id = ?",
                                 (tenant, device_id))
        return cur.rowcount > 0

    def _device_filter(self, tenant, statuses, ids) -> tuple[str, list]:
        where, args = ["tenant_id = ?"], [tenant]
        if statuses is not None:
            statuses = list(statuses)
            where.append(f"status IN ({_in(statuses)})")
            args += statuses
        if ids is not None:
            ids = list(ids)
            where.append(f"id IN ({_in(ids)})")
            args += ids
        return " AND ".join(where), args

    def list_devices(self, tenant, statuses=None, ids=None, skip=0, limit=20) -> list[Device]:
        where, args = self._device_filter(tenant, statuses, ids)
        rows = self._conn.execute(
            f"SELECT {_DEVICE_COLS} FROM devauth_devices WHERE {where} ORDER BY created_ts, id LIMIT ? OFFSET ?",
            (*args, limit, skip)).fetchall()
        return [_device(r) for r in rows]

    def status_counts(self):
        # the triggers' counts (migration 5), never the devices
        counts = dict.fromkeys(DEVICE_STATUSES, 0)
        counts.update(self._conn.execute("SELECT status, sum(n) FROM devauth_status_counts GROUP BY status"))
        return counts

    def count_devices(self, tenant, statuses=None, ids=None) -> int:
        if ids is None and (statuses is None or statuses):
            # the triggers' counts (migration 5): a row per status, however many devices
            sql, args = "SELECT coalesce(sum(n), 0) FROM devauth_status_counts WHERE tenant_id = ?", [tenant]
            if statuses is not None:
                statuses = list(dict.fromkeys(statuses))
                sql += f" AND status IN ({_in(statuses)})"
                args += statuses
            return self._conn.execute(sql, args).fetchone()[0]
        where, args = self._device_filter(tenant, statuses, ids)
        return self._conn.execute(f"SELECT count(*) FROM devauth_devices WHERE {where}", args).fetchone()[0]

    # auth sets -------------------------------------------------------------
    def insert_auth_set(self, auth_set: AuthSet) -> None:
        try:
            self._conn.execute(
                f"INSERT INTO devauth_auth_sets ({_AUTH_SET_COLS}) VALUES (?,?,?,?,?,?,?)",
                (auth_set.id, auth_set.tenant_id, auth_set.device_id, auth_set.id_hash, auth_set.pubkey,
                 auth_set.status, auth_set.ts))
        except sqlite3.IntegrityError:
            raise Conflict("auth set already exists") from None

    def get_auth_set(self, tenant: str, auth_set_id: str) -> AuthSet | None:
        row = self._conn.execute(
            f"SELECT {_AUTH_SET_COLS} FROM devauth_auth_sets WHERE tenant_id = ? AND id = ?",
            (tenant, auth_set_id)).fetchone()
        return AuthSet(**row) if row else None

    def get_auth_set_by_key(self, tenant: str, id_hash: str, pubkey: str) -> AuthSet | None:
        row = self._conn.execute(
            f"SELECT {_AUTH_SET_COLS} FROM devauth_auth_sets WHERE tenant_id = ? AND id_hash = ? AND pubkey = ?",
            (tenant, id_hash, pubkey)).fetchone()
        return AuthSet(**row) if row else None

    def list_auth_sets(self, tenant: str, device_ids: Iterable[str]) -> list[AuthSet]:
        ids = list(device_ids)
        if not ids:
            return []
        rows = self._conn.execute(
            f"SELECT {_AUTH_SET_COLS} FROM devauth_auth_sets WHERE tenant_id = ? AND device_id IN ({_in(ids)})"
            " ORDER BY ts, id", (tenant, *ids)).fetchall()
        return [AuthSet(**r) for r in rows]

    def set_auth_set_status(self, tenant: str, auth_set_id: str, status: str) -> bool:
        cur = self._conn.execute("UPDATE devauth_auth_sets SET status = ? WHERE tenant_id = ? AND id = ?",
                                 (status, tenant, auth_set_id))
        return cur.rowcount > 0

    def replace_auth_set_status(self, tenant, device_id, old, new, except_id=None) -> int:
        cur = self._conn.execute(
            "UPDATE devauth_auth_sets SET status = ? WHERE tenant_id = ? AND device_id = ? AND status = ?"
            " AND id != ?", (new, tenant, device_id, old, except_id or ""))
        return cur.rowcount

    def delete_auth_set(self, tenant: str, auth_set_id: str) -> bool:
        cur = self._conn.execute("DELETE FROM devauth_auth_sets WHERE tenant_id = ? AND id = ?",
                                 (tenant, auth_set_id))
        return cur.rowcount > 0

    def delete_auth_sets_of_device(self, tenant: str, device_id: str) -> int:
        return self._conn.execute("DELETE FROM devauth_auth_sets WHERE tenant_id = ? AND device_id = ?",
                                  (tenant, device_id)).rowcount

    # tokens ------------------------------------------------------------------
    def insert_token(self, token: DeviceToken) -> None:
        self._conn.execute(f"INSERT INTO devauth_tokens ({_TOKEN_COLS}) VALUES (?,?,?,?,?,?,?)",
                           (token.id, token.tenant_id, token.device_id, token.auth_set_id, token.iat, token.exp,
                            token.token_hash))

    def issue_token(self, token: DeviceToken, keep: int) -> None:
        # one statement: the trigger devauth_tokens_prune deletes the others in it
        self._conn.execute(f"INSERT INTO devauth_tokens ({_TOKEN_COLS}, keep) VALUES (?,?,?,?,?,?,?,?)",
                           (token.id, token.tenant_id, token.device_id, token.auth_set_id, token.iat, token.exp,
                            token.token_hash, keep))

    def get_token(self, jti: str) -> DeviceToken | None:
        row = self._conn.execute(f"SELECT {_TOKEN_COLS} FROM devauth_tokens WHERE id = ?", (jti,)).fetchone()
        return DeviceToken(**row) if row else None

    def get_token_context(self, jti: str) -> TokenContext | None:
        row = self._conn.execute(
            "SELECT t.id, t.tenant_id, t.device_id, t.auth_set_id, t.iat, t.exp, t.token_hash,"
            " a.status AS auth_set_status, d.decommissioning AS device_decommissioning,"
            " d.check_in_time AS check_in_time"
            " FROM devauth_tokens t"
            " LEFT JOIN devauth_auth_sets a ON a.tenant_id = t.tenant_id AND a.id = t.auth_set_id"
            " LEFT JOIN devauth_devices d ON d.tenant_id = t.tenant_id AND d.id = t.device_id"
            " WHERE t.id = ?", (jti,)).fetchone()
        if row is None:
            return None
        context = TokenContext(*row)  # the columns in the record's order
        if context.device_decommissioning is not None:
            context.device_decommissioning = bool(context.device_decommissioning)
        return context

    def delete_token(self, tenant: str, jti: str) -> bool:
        return self._conn.execute("DELETE FROM devauth_tokens WHERE tenant_id = ? AND id = ?",
                                  (tenant, jti)).rowcount > 0

    def delete_tokens(self, tenant: str, device_id: str | None = None) -> int:
        if device_id is None:
            return self._conn.execute("DELETE FROM devauth_tokens WHERE tenant_id = ?", (tenant,)).rowcount
        return self._conn.execute("DELETE FROM devauth_tokens WHERE tenant_id = ? AND device_id = ?",
                                  (tenant, device_id)).rowcount

    def prune_tokens(self, tenant: str, device_id: str, now: float, keep: int) -> int:
        # one statement: atomic on its own, no explicit transaction needed
        return self._conn.execute(
            "DELETE FROM devauth_tokens WHERE tenant_id = ? AND device_id = ? AND (exp <= ? OR id IN ("
            " SELECT id FROM devauth_tokens WHERE tenant_id = ? AND device_id = ?"
            " ORDER BY iat DESC, id DESC LIMIT -1 OFFSET ?))",
            (tenant, device_id, now, tenant, device_id, keep)).rowcount

    # limits ------------------------------------------------------------------
    def get_limit(self, tenant: str, name: str) -> int | None:
        row = self._conn.execute("SELECT value FROM devauth_limits WHERE tenant_id = ? AND name = ?",
                                 (tenant, name)).fetchone()
        return row[0] if row else None

    def set_limit(self, tenant: str, name: str, value: int) -> None:
        self._conn.execute("INSERT INTO devauth_limits (tenant_id, name, value) VALUES (?, ?, ?)"
                           " ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
                           (tenant, name, value))

    def delete_limit(self, tenant: str, name: str) -> None:
        self._conn.execute("DELETE FROM devauth_limits WHERE tenant_id = ? AND name = ?", (tenant, name))

    def delete_tenant(self, tenant: str) -> None:
        # tokens first: a device whose tokens are gone cannot act while the rest goes
        self._db.delete_tenant_rows(("devauth_tokens", "devauth_auth_sets", "devauth_devices", "devauth_limits",
                                     "devauth_status_counts"), tenant)
