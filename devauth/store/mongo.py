"""MongoDB implementation of the devauth store (collections prefixed `devauth_`)."""

from __future__ import annotations

import contextlib
from dataclasses import fields, replace
from typing import Iterable

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from common.errors import Conflict
from devauth.model import DEVICE_STATUSES, AuthSet, Device, DeviceToken, TokenContext
from devauth.store import DevauthStore

DEVICES = "devauth_devices"
AUTH_SETS = "devauth_auth_sets"
TOKENS = "devauth_tokens"
LIMITS = "devauth_limits"


def _v1_indexes(db) -> None:
    db[DEVICES].create_index([("tenant_id", ASCENDING), ("id_hash", ASCENDING)], unique=True,
                             name="tenant_hash")
    db[DEVICES].create_index([("tenant_id", ASCENDING), ("created_ts", ASCENDING), ("_id", ASCENDING)],
                             name="tenant_created")
    db[DEVICES].create_index([("tenant_id", ASCENDING), ("status", ASCENDING), ("created_ts", ASCENDING),
                              ("_id", ASCENDING)], name="tenant_status_created")
    db[AUTH_SETS].create_index([("tenant_id", ASCENDING), ("id_hash", ASCENDING), ("pubkey", ASCENDING)],
                               unique=True, name="tenant_hash_pubkey")
    db[AUTH_SETS].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("ts", ASCENDING)],
                               name="tenant_device_ts")
    db[TOKENS].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("iat", ASCENDING)],
                            name="tenant_device_iat")
    # expired tokens are removed by MongoDB itself
    db[TOKENS].create_index([("exp", ASCENDING)], expireAfterSeconds=0, name="exp_ttl")
    db[LIMITS].create_index([("tenant_id", ASCENDING), ("name", ASCENDING)], unique=True, name="tenant_name")


def _v2_status_index(db) -> None:
    """Devices by status over every tenant (the /metrics gauge) as index counts."""
    db[DEVICES].create_index([("status", ASCENDING)], name="status")


def _v3_provisioned(db) -> None:
    # accepted once (Mender's `provisioned`): devices accepted before this version count as provisioned
    db[DEVICES].update_many({"status": "accepted", "provisioned": {"$ne": True}}, {"$set": {"provisioned": True}})


MIGRATIONS = [_v1_indexes, _v2_status_index, _v3_provisioned]


_DEVICE_TIMES = ("created_ts", "updated_ts", "check_in_time")
_TOKEN_TIMES = ("iat", "exp")


def _doc(record, times: tuple[str, ...], skip: tuple[str, ...] = ()) -> dict:
    """A record as stored: `_id`, times as datetimes."""
    doc = {f.name: getattr(record, f.name) for f in fields(record) if f.name not in skip}
    doc["_id"] = doc.pop("id")
    for key in times:
        doc[key] = utc_datetime(doc[key])
    return doc


def _fields(doc: dict, times: tuple[str, ...]) -> dict:
    out = dict(doc)
    out["id"] = out.pop("_id")
    for key in times:
        if key in out:
            out[key] = unix_seconds(out[key])
    return out


def _device(doc: dict | None) -> Device | None:
    if doc is None:
        return None
    out = _fields(doc, _DEVICE_TIMES)
    out.pop("provisioned", None)  # a flag only mark_provisioned reads
    return Device(**out)


def _auth_set(doc: dict | None) -> AuthSet | None:
    return None if doc is None else AuthSet(**_fields(doc, ("ts",)))


def _token(doc: dict | None) -> DeviceToken | None:
    return None if doc is None else DeviceToken(**_fields(doc, _TOKEN_TIMES))


def _insert_skipping_duplicates(collection, docs: list[dict]) -> set[int]:
    """insert_many, unordered; the indexes of the documents refused as duplicates (others raise)."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors) or exc.details.get("writeConcernErrors"):
            raise
        return {e["index"] for e in errors}
    return set()


class MongoDevauthStore(DevauthStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._database = db

    @property
    def _db(self):
        return self._database.db

    def transaction(self):
        return contextlib.nullcontext()

    # devices ---------------------------------------------------------------
    def insert_device(self, device: Device) -> None:
        doc = _doc(device, _DEVICE_TIMES, skip=("auth_sets",))
        try:
            self._db[DEVICES].insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("device already exists") from None

    def import_devices(self, tenant, pairs):
        # No transaction on a standalone server: auth sets first, then devices, both unordered with
        # duplicates skipped. A crash in between leaves auth sets whose device is missing; the auth
        # path discards such an orphan, and a repeated import inserts the devices.
        inserted: list[str] = []
        for start in range(0, len(pairs), 1000):
            chunk = pairs[start:start + 1000]
            known = {d["id_hash"] for d in self._db[DEVICES].find(
                {"tenant_id": tenant, "id_hash": {"$in": [d.id_hash for d, _ in chunk]}}, {"id_hash": 1})}
            fresh, seen = [], set()
            for device, auth_set in chunk:
                if device.id_hash not in known and device.id_hash not in seen:
                    seen.add(device.id_hash)
                    fresh.append((device, auth_set))
            if not fresh:
                continue
            _insert_skipping_duplicates(self._db[AUTH_SETS], [
                _doc(replace(a, tenant_id=tenant, device_id=d.id, id_hash=d.id_hash), ("ts",)) for d, a in fresh])
            failed = _insert_skipping_duplicates(self._db[DEVICES], [
                _doc(replace(d, tenant_id=tenant), _DEVICE_TIMES, skip=("auth_sets",)) for d, _ in fresh])
            inserted += [d.id for i, (d, _) in enumerate(fresh) if i not in failed]
        return inserted

    def get_device(self, tenant: str, device_id: str) -> Device | None:
        return _device(self._db[DEVICES].find_one({"_id": device_id, "tenant_id": tenant}))

    def get_device_by_hash(self, tenant: str, id_hash: str) -> Device | None:
        return _device(self._db[DEVICES].find_one({"tenant_id": tenant, "id_hash": id_hash}))

    def update_device(self, tenant: str, device_id: str, fields: dict) -> bool:
        update = {k: (utc_datetime(v) if k in _DEVICE_TIMES else v) for k, v in fields.items()}
        res = self._db[DEVICES].update_one({"_id": device_id, "tenant_id": tenant}, {"$set": update})
        return res.matched_count > 0

    def next_revision(self, tenant, device_id):
        doc = self._db[DEVICES].find_one_and_update({"_id": device_id, "tenant_id": tenant}, {"$inc": {"revision": 1}},
                                                    projection={"revision": 1}, return_document=ReturnDocument.AFTER)
        return None if doc is None else doc["revision"]

    def set_device_status(self, tenant, device_id, status, revision, updated_ts):
        # a document written before revisions existed has none: it counts as 0
        res = self._db[DEVICES].update_one(
            {"_id": device_id, "tenant_id": tenant,
             "$or": [{"status_revision": {"$lt": revision}}, {"status_revision": {"$exists": False}}]},
            {"$set": {"status": status, "status_revision": revision, "updated_ts": utc_datetime(updated_ts)}})
        return res.modified_count > 0

    def touch_check_ins(self, tenant: str, device_ids: list[str], ts: float, older_than: float) -> list[str]:
        written: list[str] = []
        for start in range(0, len(device_ids), 500):
            query = {"_id": {"$in": device_ids[start:start + 500]}, "tenant_id": tenant,
                     "$or": [{"check_in_time": None}, {"check_in_time": {"$lt": utc_datetime(older_than)}}]}
            ids = [d["_id"] for d in self._db[DEVICES].find(query, {"_id": 1})]
            if ids:  # the same condition again: a device written meanwhile is left alone
                self._db[DEVICES].update_many(dict(query, _id={"$in": ids}), {"$set": {"check_in_time": utc_datetime(ts)}})
                written += ids
        return written

    def mark_provisioned(self, tenant: str, device_id: str) -> bool:
        res = self._db[DEVICES].update_one({"_id": device_id, "tenant_id": tenant, "provisioned": {"$ne": True}},
                                           {"$set": {"provisioned": True}})
        return res.modified_count > 0

    def delete_device(self, tenant: str, device_id: str) -> bool:
        return self._db[DEVICES].delete_one({"_id": device_id, "tenant_id": tenant}).deleted_count > 0

    @staticmethod
    def _device_query(tenant, statuses, ids) -> dict:
        query: dict = {"tenant_id": tenant}
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        if ids is not None:
            query["_id"] = {"$in": list(ids)}
        return query

    def list_devices(self, tenant, statuses=None, ids=None, skip=0, limit=20) -> list[Device]:
        cursor = (self._db[DEVICES].find(self._device_query(tenant, statuses, ids))
                  .sort([("created_ts", ASCENDING), ("_id", ASCENDING)]).skip(skip).limit(limit))
        return [_device(d) for d in cursor]

    def status_counts(self):
        # a COUNT_SCAN of the status index per status (migration 2)
        return {s: self._db[DEVICES].count_documents({"status": s}) for s in DEVICE_STATUSES}

    def count_devices(self, tenant, statuses=None, ids=None) -> int:
        return self._db[DEVICES].count_documents(self._device_query(tenant, statuses, ids))

    # auth sets -------------------------------------------------------------
    def insert_auth_set(self, auth_set: AuthSet) -> None:
        try:
            self._db[AUTH_SETS].insert_one(_doc(auth_set, ("ts",)))
        except DuplicateKeyError:
            raise Conflict("auth set already exists") from None

    def get_auth_set(self, tenant: str, auth_set_id: str) -> AuthSet | None:
        return _auth_set(self._db[AUTH_SETS].find_one({"_id": auth_set_id, "tenant_id": tenant}))

    def get_auth_set_by_key(self, tenant: str, id_hash: str, pubkey: str) -> AuthSet | None:
        return _auth_set(self._db[AUTH_SETS].find_one({"tenant_id": tenant, "id_hash": id_hash, "pubkey": pubkey}))

    def list_auth_sets(self, tenant: str, device_ids: Iterable[str]) -> list[AuthSet]:
        ids = list(device_ids)
        if not ids:
            return []
        cursor = self._db[AUTH_SETS].find({"tenant_id": tenant, "device_id": {"$in": ids}}).sort(
            [("ts", ASCENDING), ("_id", ASCENDING)])
        return [_auth_set(a) for a in cursor]

    def set_auth_set_status(self, tenant: str, auth_set_id: str, status: str) -> bool:
        res = self._db[AUTH_SETS].update_one({"_id": auth_set_id, "tenant_id": tenant},
                                             {"$set": {"status": status}})
        return res.matched_count > 0

    def replace_auth_set_status(self, tenant, device_id, old, new, except_id=None) -> int:
        query = {"tenant_id": tenant, "device_id": device_id, "status": old}
        if except_id is not None:
            query["_id"] = {"$ne": except_id}
        return self._db[AUTH_SETS].update_many(query, {"$set": {"status": new}}).modified_count

    def delete_auth_set(self, tenant: str, auth_set_id: str) -> bool:
        return self._db[AUTH_SETS].delete_one({"_id": auth_set_id, "tenant_id": tenant}).deleted_count > 0

    def delete_auth_sets_of_device(self, tenant: str, device_id: str) -> int:
        return self._db[AUTH_SETS].delete_many({"tenant_id": tenant, "device_id": device_id}).deleted_count

    # tokens ------------------------------------------------------------------
    def insert_token(self, token: DeviceToken) -> None:
        self._db[TOKENS].insert_one(_doc(token, _TOKEN_TIMES))

    def get_token(self, jti: str) -> DeviceToken | None:
        return _token(self._db[TOKENS].find_one({"_id": jti}))

    def get_token_context(self, jti: str) -> TokenContext | None:
        doc = self._db[TOKENS].find_one({"_id": jti})
        if doc is None:
            return None
        token = TokenContext(**_fields(doc, _TOKEN_TIMES))
        auth_set = self._db[AUTH_SETS].find_one({"_id": token.auth_set_id, "tenant_id": token.tenant_id},
                                                {"status": 1})
        device = self._db[DEVICES].find_one({"_id": token.device_id, "tenant_id": token.tenant_id},
                                            {"decommissioning": 1, "check_in_time": 1})
        token.auth_set_status = auth_set["status"] if auth_set else None
        token.device_decommissioning = bool(device["decommissioning"]) if device else None
        token.check_in_time = unix_seconds(device.get("check_in_time")) if device else None
        return token

    def delete_token(self, tenant: str, jti: str) -> bool:
        return self._db[TOKENS].delete_one({"_id": jti, "tenant_id": tenant}).deleted_count > 0

    def delete_tokens(self, tenant: str, device_id: str | None = None) -> int:
        query = {"tenant_id": tenant}
        if device_id is not None:
            query["device_id"] = device_id
        return self._db[TOKENS].delete_many(query).deleted_count

    def prune_tokens(self, tenant: str, device_id: str, now: float, keep: int) -> int:
        coll = self._db[TOKENS]
        n = coll.delete_many({"tenant_id": tenant, "device_id": device_id, "exp": {"$lte": utc_datetime(now)}}).deleted_count
        old = [d["_id"] for d in coll.find({"tenant_id": tenant, "device_id": device_id}, {"_id": 1})
               .sort([("iat", DESCENDING), ("_id", DESCENDING)]).skip(keep)]
        if old:
            n += coll.delete_many({"tenant_id": tenant, "_id": {"$in": old}}).deleted_count
        return n

    # limits ------------------------------------------------------------------
    def get_limit(self, tenant: str, name: str) -> int | None:
        doc = self._db[LIMITS].find_one({"tenant_id": tenant, "name": name})
        return int(doc["value"]) if doc else None

    def set_limit(self, tenant: str, name: str, value: int) -> None:
        self._db[LIMITS].update_one({"tenant_id": tenant, "name": name}, {"$set": {"value": int(value)}},
                                    upsert=True)

    def delete_limit(self, tenant: str, name: str) -> None:
        self._db[LIMITS].delete_one({"tenant_id": tenant, "name": name})

    def delete_tenant(self, tenant: str) -> None:
        # tokens first: a device whose tokens are gone cannot act while the rest goes
        self._database.delete_tenant_rows((TOKENS, AUTH_SETS, DEVICES, LIMITS), tenant)
