"""SQLite implementation of the deviceconnect store."""

from __future__ import annotations

import json
from typing import Iterator

from common.db import SqliteStore
from deviceconnect.model import CONNECTED, DISCONNECTED, UNKNOWN, DeviceState, Session
from deviceconnect.store import DeviceconnectStore

MIGRATIONS = [
    [
        "CREATE TABLE deviceconnect_devices ("
        " tenant_id TEXT NOT NULL, device_id TEXT NOT NULL, status TEXT NOT NULL,"
        " created_ts REAL NOT NULL, updated_ts REAL NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
        " holder TEXT, PRIMARY KEY (tenant_id, device_id))",
        "CREATE INDEX deviceconnect_devices_holder ON deviceconnect_devices (holder) WHERE holder IS NOT NULL",
        "CREATE TABLE deviceconnect_holders (id TEXT PRIMARY KEY, expires_ts REAL NOT NULL)",
        "CREATE TABLE deviceconnect_sessions ("
        " tenant_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " start_ts REAL NOT NULL, end_ts REAL, types TEXT NOT NULL DEFAULT '[]',"
        " bytes_recorded INTEGER NOT NULL DEFAULT 0, expire_ts REAL NOT NULL, holder TEXT NOT NULL DEFAULT '',"
        " PRIMARY KEY (tenant_id, id))",
        "CREATE INDEX deviceconnect_sessions_expire ON deviceconnect_sessions (expire_ts)",
        "CREATE TABLE deviceconnect_recordings ("
        " tenant_id TEXT NOT NULL, session_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,"
        " expire_ts REAL NOT NULL, PRIMARY KEY (tenant_id, session_id, seq))",
        "CREATE INDEX deviceconnect_recordings_expire ON deviceconnect_recordings (expire_ts)",
    ],
]

_PURGE_BATCH = 1000
_CHUNK_BATCH = 8


def _state(row) -> DeviceState | None:
    if row is None:
        return None
    return DeviceState(row["tenant_id"], row["device_id"], row["status"], row["created_ts"], row["updated_ts"],
                       row["version"], row["holder"])


class SqliteDeviceconnectStore(SqliteStore, DeviceconnectStore):
    migrations = MIGRATIONS

    # connection states -----------------------------------------------------
    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        self._conn.execute(
            "INSERT INTO deviceconnect_devices (tenant_id, device_id, status, created_ts, updated_ts)"
            " VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING", (tenant, device_id, UNKNOWN, now, now))

    def get_device(self, tenant: str, device_id: str) -> DeviceState | None:
        return _state(self._conn.execute(
            "SELECT * FROM deviceconnect_devices WHERE tenant_id = ? AND device_id = ?",
            (tenant, device_id)).fetchone())

    def set_connected(self, tenant: str, device_id: str, holder: str, now: float) -> int:
        row = self._conn.execute(
            "INSERT INTO deviceconnect_devices (tenant_id, device_id, status, created_ts, updated_ts, version, holder)"
            " VALUES (?,?,?,?,?,1,?) ON CONFLICT (tenant_id, device_id) DO UPDATE SET status = excluded.status,"
            " updated_ts = excluded.updated_ts, version = version + 1, holder = excluded.holder"
            " RETURNING version", (tenant, device_id, CONNECTED, now, now, holder)).fetchone()
        return row[0]

    def set_disconnected(self, tenant: str, device_id: str, version: int, now: float) -> bool:
        cur = self._conn.execute(
            "UPDATE deviceconnect_devices SET status = ?, updated_ts = ?, holder = NULL"
            " WHERE tenant_id = ? AND device_id = ? AND version = ?",
            (DISCONNECTED, now, tenant, device_id, version))
        return cur.rowcount > 0

    def release_holders(self, holders: list[str], now: float) -> list[tuple[str, str]]:
        if not holders:
            return []
        marks = ",".join("?" * len(holders))
        rows = self._conn.execute(
            f"UPDATE deviceconnect_devices SET status = ?, updated_ts = ?, holder = NULL"
            f" WHERE holder IN ({marks}) RETURNING tenant_id, device_id", (DISCONNECTED, now, *holders)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def delete_device(self, tenant: str, device_id: str) -> None:
        self._conn.execute("DELETE FROM deviceconnect_devices WHERE tenant_id = ? AND device_id = ?",
                           (tenant, device_id))

    def connected_devices(self, tenant: str) -> list[str]:
        return [row[0] for row in self._conn.execute(
            "SELECT device_id FROM deviceconnect_devices WHERE tenant_id = ? AND status = ?", (tenant, CONNECTED))]

    def delete_tenant(self, tenant: str) -> None:
        with self._db.transaction() as conn:
            for table in ("deviceconnect_devices", "deviceconnect_sessions", "deviceconnect_recordings"):
                conn.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant,))

    # holders -----------------------------------------------------------------
    def beat(self, holder: str, expires_ts: float) -> None:
        self._conn.execute("INSERT INTO deviceconnect_holders (id, expires_ts) VALUES (?, ?)"
                           " ON CONFLICT (id) DO UPDATE SET expires_ts = excluded.expires_ts", (holder, expires_ts))

    def expired_holders(self, now: float) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT id FROM deviceconnect_holders WHERE expires_ts < ?", (now,)).fetchall()]

    def delete_holders(self, holders: list[str]) -> None:
        if holders:
            marks = ",".join("?" * len(holders))
            self._conn.execute(f"DELETE FROM deviceconnect_holders WHERE id IN ({marks})", tuple(holders))

    # sessions ----------------------------------------------------------------
    def insert_session(self, session: Session) -> None:
        self._conn.execute(
            "INSERT INTO deviceconnect_sessions (tenant_id, id, user_id, device_id, start_ts, end_ts, types,"
            " bytes_recorded, expire_ts, holder) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (session.tenant_id, session.id, session.user_id, session.device_id, session.start_ts, session.end_ts,
             json.dumps(session.types), session.bytes_recorded, session.expire_ts, session.holder))

    def end_session(self, tenant: str, session_id: str, end_ts: float, types: list[str],
                    bytes_recorded: int) -> None:
        self._conn.execute(
            "UPDATE deviceconnect_sessions SET end_ts = ?, types = ?, bytes_recorded = ?"
            " WHERE tenant_id = ? AND id = ?", (end_ts, json.dumps(types), bytes_recorded, tenant, session_id))

    def get_session(self, tenant: str, session_id: str) -> Session | None:
        row = self._conn.execute("SELECT * FROM deviceconnect_sessions WHERE tenant_id = ? AND id = ?",
                                 (tenant, session_id)).fetchone()
        if row is None:
            return None
        return Session(row["id"], row["tenant_id"], row["user_id"], row["device_id"], row["start_ts"],
                       row["expire_ts"], row["end_ts"], json.loads(row["types"]), row["bytes_recorded"], row["holder"])

    # recordings --------------------------------------------------------------
    def append_recording(self, tenant: str, session_id: str, seq: int, data: bytes, expire_ts: float) -> None:
        self._conn.execute("INSERT INTO deviceconnect_recordings (tenant_id, session_id, seq, data, expire_ts)"
                           " VALUES (?,?,?,?,?)", (tenant, session_id, seq, data, expire_ts))

    def recording_chunks(self, tenant: str, session_id: str) -> Iterator[bytes]:
        last = -1
        while True:  # a few chunks per query: no cursor stays open between reads
            rows = self._conn.execute(
                "SELECT seq, data FROM deviceconnect_recordings WHERE tenant_id = ? AND session_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?", (tenant, session_id, last, _CHUNK_BATCH)).fetchall()
            for row in rows:
                last = row[0]
                yield bytes(row[1])
            if len(rows) < _CHUNK_BATCH:
                return

    def purge_expired(self, now: float) -> int:
        removed = 0
        for table in ("deviceconnect_recordings", "deviceconnect_sessions"):
            cur = self._conn.execute(
                f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE expire_ts < ? LIMIT ?)",
                (now, _PURGE_BATCH))
            removed += cur.rowcount
        return removed
