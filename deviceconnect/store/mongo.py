"""MongoDB implementation of the deviceconnect store (collections prefixed `deviceconnect_`)."""

from __future__ import annotations

from typing import Iterator

from bson import Binary
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from deviceconnect.model import CONNECTED, DISCONNECTED, UNKNOWN, DeviceState, Session
from deviceconnect.store import DeviceconnectStore

DEVICES = "deviceconnect_devices"
HOLDERS = "deviceconnect_holders"
SESSIONS = "deviceconnect_sessions"
RECORDINGS = "deviceconnect_recordings"

_CHUNK_BATCH = 8


def _v1_indexes(db) -> None:
    db[DEVICES].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING)], unique=True,
                             name="tenant_device")
    db[DEVICES].create_index([("holder", ASCENDING)], name="holder",
                             partialFilterExpression={"holder": {"$type": "string"}})
    db[SESSIONS].create_index([("tenant_id", ASCENDING), ("_id", ASCENDING)], name="tenant_id")
    db[RECORDINGS].create_index([("tenant_id", ASCENDING), ("session_id", ASCENDING), ("seq", ASCENDING)],
                                unique=True, name="tenant_session_seq")
    # retention: MongoDB removes expired sessions and recordings itself
    db[SESSIONS].create_index([("expire_ts", ASCENDING)], expireAfterSeconds=0, name="expire_ttl")
    db[RECORDINGS].create_index([("expire_ts", ASCENDING)], expireAfterSeconds=0, name="expire_ttl")


MIGRATIONS = [_v1_indexes]


def _state(doc) -> DeviceState | None:
    if doc is None:
        return None
    return DeviceState(doc["tenant_id"], doc["device_id"], doc["status"], unix_seconds(doc["created_ts"]),
                       unix_seconds(doc["updated_ts"]), doc.get("version", 0), doc.get("holder"))


class MongoDeviceconnectStore(DeviceconnectStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    def _c(self, name: str):
        return self._db.db[name]

    # connection states -----------------------------------------------------
    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        try:
            self._c(DEVICES).update_one(
                {"tenant_id": tenant, "device_id": device_id},
                {"$setOnInsert": {"status": UNKNOWN, "created_ts": utc_datetime(now), "updated_ts": utc_datetime(now),
                                  "version": 0}},
                upsert=True)
        except DuplicateKeyError:  # created concurrently: it exists, which is all we want
            pass

    def get_device(self, tenant: str, device_id: str) -> DeviceState | None:
        return _state(self._c(DEVICES).find_one({"tenant_id": tenant, "device_id": device_id}))

    def set_connected(self, tenant: str, device_id: str, holder: str, now: float) -> int:
        for attempt in range(2):  # an upsert racing another one on the unique index retries as an update
            try:
                doc = self._c(DEVICES).find_one_and_update(
                    {"tenant_id": tenant, "device_id": device_id},
                    {"$set": {"status": CONNECTED, "updated_ts": utc_datetime(now), "holder": holder},
                     "$inc": {"version": 1}, "$setOnInsert": {"created_ts": utc_datetime(now)}},
                    upsert=True, return_document=ReturnDocument.AFTER, projection={"version": 1})
                return doc["version"]
            except DuplicateKeyError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def set_disconnected(self, tenant: str, device_id: str, version: int, now: float) -> bool:
        result = self._c(DEVICES).update_one(
            {"tenant_id": tenant, "device_id": device_id, "version": version},
            {"$set": {"status": DISCONNECTED, "updated_ts": utc_datetime(now)}, "$unset": {"holder": ""}})
        return result.modified_count > 0

    def release_holders(self, holders: list[str], now: float) -> list[tuple[str, str]]:
        if not holders:
            return []
        released = []
        # one document at a time: each is released exactly once even when two processes sweep together
        while True:
            doc = self._c(DEVICES).find_one_and_update(
                {"holder": {"$in": holders}},
                {"$set": {"status": DISCONNECTED, "updated_ts": utc_datetime(now)}, "$unset": {"holder": ""}},
                projection={"tenant_id": 1, "device_id": 1})
            if doc is None:
                return released
            released.append((doc["tenant_id"], doc["device_id"]))

    def delete_device(self, tenant: str, device_id: str) -> None:
        self._c(DEVICES).delete_one({"tenant_id": tenant, "device_id": device_id})

    def connected_devices(self, tenant: str) -> list[str]:
        return [doc["device_id"] for doc in self._c(DEVICES).find({"tenant_id": tenant, "status": CONNECTED},
                                                                  {"device_id": 1, "_id": 0})]

    def delete_tenant(self, tenant: str) -> None:
        for name in (DEVICES, SESSIONS, RECORDINGS):
            self._c(name).delete_many({"tenant_id": tenant})

    # holders -----------------------------------------------------------------
    def beat(self, holder: str, expires_ts: float) -> None:
        self._c(HOLDERS).update_one({"_id": holder}, {"$set": {"expires_ts": utc_datetime(expires_ts)}}, upsert=True)

    def expired_holders(self, now: float) -> list[str]:
        return [d["_id"] for d in self._c(HOLDERS).find({"expires_ts": {"$lt": utc_datetime(now)}}, {"_id": 1})]

    def delete_holders(self, holders: list[str]) -> None:
        if holders:
            self._c(HOLDERS).delete_many({"_id": {"$in": list(holders)}})

    # sessions ----------------------------------------------------------------
    def insert_session(self, session: Session) -> None:
        self._c(SESSIONS).insert_one({
            "_id": session.id, "tenant_id": session.tenant_id, "user_id": session.user_id,
            "device_id": session.device_id, "start_ts": utc_datetime(session.start_ts),
            "end_ts": utc_datetime(session.end_ts),
            "types": list(session.types), "bytes_recorded": session.bytes_recorded,
            "expire_ts": utc_datetime(session.expire_ts), "holder": session.holder})

    def end_session(self, tenant: str, session_id: str, end_ts: float, types: list[str],
                    bytes_recorded: int) -> None:
        self._c(SESSIONS).update_one(
            {"_id": session_id, "tenant_id": tenant},
            {"$set": {"end_ts": utc_datetime(end_ts), "types": list(types), "bytes_recorded": bytes_recorded}})

    def get_session(self, tenant: str, session_id: str) -> Session | None:
        doc = self._c(SESSIONS).find_one({"_id": session_id, "tenant_id": tenant})
        if doc is None:
            return None
        return Session(doc["_id"], doc["tenant_id"], doc["user_id"], doc["device_id"], unix_seconds(doc["start_ts"]),
                       unix_seconds(doc["expire_ts"]), unix_seconds(doc.get("end_ts")), list(doc.get("types") or []),
                       doc.get("bytes_recorded", 0), doc.get("holder", ""))

    # recordings --------------------------------------------------------------
    def append_recording(self, tenant: str, session_id: str, seq: int, data: bytes, expire_ts: float) -> None:
        self._c(RECORDINGS).insert_one({"tenant_id": tenant, "session_id": session_id, "seq": seq,
                                        "data": Binary(data), "expire_ts": utc_datetime(expire_ts)})

    def recording_chunks(self, tenant: str, session_id: str) -> Iterator[bytes]:
        last = -1
        while True:  # a few chunks per query: no cursor stays open between reads
            docs = list(self._c(RECORDINGS).find(
                {"tenant_id": tenant, "session_id": session_id, "seq": {"$gt": last}},
                {"seq": 1, "data": 1}).sort("seq", ASCENDING).limit(_CHUNK_BATCH))
            for doc in docs:
                last = doc["seq"]
                yield bytes(doc["data"])
            if len(docs) < _CHUNK_BATCH:
                return

    def purge_expired(self, now: float) -> int:
        # the TTL indexes do this too, but MongoDB's TTL monitor runs once a minute and may lag
        # behind under load: an explicit pass holds the documented retention exactly
        removed = 0
        for name in (RECORDINGS, SESSIONS):
            removed += self._c(name).delete_many({"expire_ts": {"$lt": utc_datetime(now)}}).deleted_count
        return removed
