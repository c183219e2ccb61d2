"""MongoDB implementation of the deviceconfig store (collection `deviceconfig_devices`).

A configuration is stored as a list of `{key, value}` documents, as Mender stores it: a key may
hold `.` or start with `$`, which a field name may not."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds as _ts, utc_datetime as _dt
from deviceconfig.model import DeviceConfiguration
from deviceconfig.store import DeviceconfigStore

DEVICES = "deviceconfig_devices"


def _v1_indexes(db) -> None:
    db[DEVICES].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING)], unique=True,
                             name="tenant_device")


MIGRATIONS = [_v1_indexes]


def _pairs(config: dict[str, str]) -> list[dict]:
    return [{"key": k, "value": config[k]} for k in sorted(config)]


def _config(pairs) -> dict[str, str]:
    return {p["key"]: p["value"] for p in sorted(pairs or [], key=lambda p: p["key"])}


def _record(doc) -> DeviceConfiguration | None:
    if doc is None:
        return None
    return DeviceConfiguration(doc["tenant_id"], doc["device_id"], _config(doc.get("configured")),
                               _config(doc.get("reported")), doc.get("deployment_id"), _ts(doc.get("updated_ts")),
                               _ts(doc.get("reported_ts")))


class MongoDeviceconfigStore(DeviceconfigStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def _devices(self):
        return self._db.db[DEVICES]

    def _upsert(self, tenant: str, device_id: str, update: dict) -> None:
        key = {"tenant_id": tenant, "device_id": device_id}
        try:
            self._devices.update_one(key, update, upsert=True)
        except DuplicateKeyError:  # inserted concurrently: now it exists, and the update applies
            self._devices.update_one(key, update)

    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        try:
            self._devices.update_one(
                {"tenant_id": tenant, "device_id": device_id},
                {"$setOnInsert": {"configured": [], "reported": [], "updated_ts": _dt(now)}}, upsert=True)
        except DuplicateKeyError:  # created concurrently: it exists, which is all we want
            pass

    def get_device(self, tenant: str, device_id: str) -> DeviceConfiguration | None:
        return _record(self._devices.find_one({"tenant_id": tenant, "device_id": device_id}))

    def set_configured(self, tenant: str, device_id: str, configured: dict[str, str], now: float) -> None:
        self._upsert(tenant, device_id, {"$set": {"configured": _pairs(configured), "updated_ts": _dt(now)},
                                         "$setOnInsert": {"reported": []}})

    def set_reported(self, tenant: str, device_id: str, reported: dict[str, str], now: float) -> None:
        self._upsert(tenant, device_id, {"$set": {"reported": _pairs(reported), "reported_ts": _dt(now)},
                                         "$setOnInsert": {"configured": [], "updated_ts": _dt(now)}})

    def set_deployment_id(self, tenant: str, device_id: str, deployment_id: str) -> bool:
        result = self._devices.update_one({"tenant_id": tenant, "device_id": device_id},
                                          {"$set": {"deployment_id": deployment_id}})
        return result.matched_count > 0

    def delete_device(self, tenant: str, device_id: str) -> None:
        self._devices.delete_one({"tenant_id": tenant, "device_id": device_id})

    def delete_tenant(self, tenant: str) -> None:
        self._devices.delete_many({"tenant_id": tenant})
