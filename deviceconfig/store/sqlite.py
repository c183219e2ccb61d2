"""SQLite implementation of the deviceconfig store (configurations as JSON text: only returned,
never searched)."""

from __future__ import annotations

import json

from common.db import SqliteStore
from deviceconfig.model import DeviceConfiguration
from deviceconfig.store import DeviceconfigStore

MIGRATIONS = [
    [
        "CREATE TABLE deviceconfig_devices ("
        " tenant_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " configured TEXT NOT NULL DEFAULT '{}', reported TEXT NOT NULL DEFAULT '{}',"
        " deployment_id TEXT, updated_ts REAL, reported_ts REAL,"
        " PRIMARY KEY (tenant_id, device_id))",
    ],
]


def _json(config: dict[str, str]) -> str:
    return json.dumps(config, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _record(row) -> DeviceConfiguration | None:
    if row is None:
        return None
    return DeviceConfiguration(row["tenant_id"], row["device_id"], json.loads(row["configured"]),
                               json.loads(row["reported"]), row["deployment_id"], row["updated_ts"],
                               row["reported_ts"])


class SqliteDeviceconfigStore(SqliteStore, DeviceconfigStore):
    migrations = MIGRATIONS

    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        self._conn.execute("INSERT INTO deviceconfig_devices (tenant_id, device_id, updated_ts) VALUES (?,?,?)"
                           " ON CONFLICT DO NOTHING", (tenant, device_id, now))

    def get_device(self, tenant: str, device_id: str) -> DeviceConfiguration | None:
        return _record(self._conn.execute(
            "SELECT * FROM deviceconfig_devices WHERE tenant_id = ? AND device_id = ?", (tenant, device_id)).fetchone())

    def set_configured(self, tenant: str, device_id: str, configured: dict[str, str], now: float) -> None:
        self._conn.execute(
            "INSERT INTO deviceconfig_devices (tenant_id, device_id, configured, updated_ts) VALUES (?,?,?,?)"
            " ON CONFLICT (tenant_id, device_id) DO UPDATE SET configured = excluded.configured,"
            " updated_ts = excluded.updated_ts", (tenant, device_id, _json(configured), now))

    def set_reported(self, tenant: str, device_id: str, reported: dict[str, str], now: float) -> None:
        self._conn.execute(
            "INSERT INTO deviceconfig_devices (tenant_id, device_id, reported, updated_ts, reported_ts)"
            " VALUES (?,?,?,?,?) ON CONFLICT (tenant_id, device_id) DO UPDATE SET reported = excluded.reported,"
            " reported_ts = excluded.reported_ts", (tenant, device_id, _json(reported), now, now))

    def set_deployment_id(self, tenant: str, device_id: str, deployment_id: str) -> bool:
        cur = self._conn.execute("UPDATE deviceconfig_devices SET deployment_id = ? WHERE tenant_id = ? AND device_id = ?",
                                 (deployment_id, tenant, device_id))
        return cur.rowcount > 0

    def delete_device(self, tenant: str, device_id: str) -> None:
        self._conn.execute("DELETE FROM deviceconfig_devices WHERE tenant_id = ? AND device_id = ?", (tenant, device_id))

    def delete_tenant(self, tenant: str) -> None:
        self._conn.execute("DELETE FROM deviceconfig_devices WHERE tenant_id = ?", (tenant,))
