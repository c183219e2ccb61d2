"""auditlogs store on MongoDB (collection auditlogs_entries; a TTL index expires old entries)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import pymongo
from pymongo.errors import OperationFailure

from auditlogs.model import Actor, AuditEntry, EntryFilter
from auditlogs.store import AuditlogsStore

ENTRIES = "auditlogs_entries"
TTL_INDEX = "time_ttl"
INDEX_NOT_FOUND = 27  # MongoDB's error code for collMod on an index that does not exist
DEFAULT_RETENTION_SECONDS = 90 * 86400


def _m1_indexes(db) -> None:
    entries = db[ENTRIES]
    entries.create_index([("tenant_id", 1), ("time", 1), ("_id", 1)], name="tenant_time")
    entries.create_index([("tenant_id", 1), ("object.id", 1), ("time", 1)], name="tenant_object")
    entries.create_index([("tenant_id", 1), ("actor.id", 1), ("time", 1)], name="tenant_actor")
    entries.create_index([("tenant_id", 1), ("actor.email", 1), ("time", 1)], name="tenant_email")
    entries.create_index([("tenant_id", 1), ("object.type", 1), ("time", 1)], name="tenant_type")
    # retention: MongoDB removes entries past it by itself (ensure_retention sets the configured age)
    entries.create_index([("time", 1)], expireAfterSeconds=DEFAULT_RETENTION_SECONDS, name=TTL_INDEX)


MIGRATIONS = [_m1_indexes]


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _ts(value: datetime) -> float:
    if value.tzinfo is None:  # a client without tz_aware=True returns naive UTC datetimes
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _doc(e: AuditEntry) -> dict:
    actor = {"type": e.actor.type, "id": e.actor.id}
    if e.actor.email is not None:
        actor["email"] = e.actor.email
    if e.actor.token_id is not None:
        actor["token_id"] = e.actor.token_id
    obj = {"type": e.object_type, "id": e.object_id}
    if e.object_name is not None:
        obj["name"] = e.object_name
    if e.object_extra:
        obj["extra"] = e.object_extra
    return {"_id": e.id, "tenant_id": e.tenant_id, "time": _dt(e.time), "actor": actor, "action": e.action,
            "object": obj, "change": e.change, "request_id": e.request_id, "client": e.client}


def _entry(d: dict) -> AuditEntry:
    a, o = d["actor"], d["object"]
    return AuditEntry(id=d["_id"], tenant_id=d["tenant_id"], time=_ts(d["time"]),
                      actor=Actor(a["type"], a["id"], a.get("email"), a.get("token_id")),
                      action=d["action"], object_type=o["type"], object_id=o["id"], object_name=o.get("name"),
                      object_extra=dict(o.get("extra") or {}), change=d["change"], request_id=d["request_id"],
                      client=d["client"])


def _query(tenant: str, f: EntryFilter) -> dict:
    q: dict = {"tenant_id": tenant}
    if f.created_after is not None:
        q.setdefault("time", {})["$gte"] = _dt(f.created_after)
    if f.created_before is not None:
        q.setdefault("time", {})["$lte"] = _dt(f.created_before)
    for key, value in (("actor.id", f.actor_id), ("actor.type", f.actor_type), ("actor.email", f.actor_email),
                       ("object.id", f.object_id), ("object.type", f.object_type)):
        if value is not None:
            q[key] = value
    if f.object_deployment_name is not None:
        if q.get("object.type", "deployment") != "deployment":
            q["object.type"] = {"$in": []}  # matches nothing, as the SQL does
        else:
            q["object.type"] = "deployment"
        q["object.name"] = f.object_deployment_name
    return q


class MongoAuditlogsStore(AuditlogsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def _entries(self):
        return self._db.db[ENTRIES]

    def insert(self, entries: Sequence[AuditEntry]) -> None:
        if entries:
            self._entries.insert_many([_doc(e) for e in entries], ordered=False)

    def list(self, tenant, where, *, newest_first=True, skip=0, limit=20):
        q = _query(tenant, where)
        order = pymongo.DESCENDING if newest_first else pymongo.ASCENDING
        total = self._entries.count_documents(q)
        cursor = self._entries.find(q).sort([("time", order), ("_id", order)]).skip(skip).limit(limit)
        return [_entry(d) for d in cursor], total

    def after(self, tenant, where, *, newest_first, cursor, limit):
        q = _query(tenant, where)
        if cursor is not None:
            op = "$lt" if newest_first else "$gt"
            t = _dt(cursor[0])
            q = {"$and": [q, {"$or": [{"time": {op: t}}, {"time": t, "_id": {op: cursor[1]}}]}]}
        order = pymongo.DESCENDING if newest_first else pymongo.ASCENDING
        return [_entry(d) for d in self._entries.find(q).sort([("time", order), ("_id", order)]).limit(limit)]

    def prune(self, before, batch=1000):
        old = [d["_id"] for d in self._entries.find({"time": {"$lt": _dt(before)}}, {"_id": 1}).limit(batch)]
        if not old:
            return 0
        return self._entries.delete_many({"_id": {"$in": old}}).deleted_count

    def delete_tenant(self, tenant):
        self._entries.delete_many({"tenant_id": tenant})

    def ensure_retention(self, seconds: float) -> None:
        """Give the TTL index the configured age in place (collMod: no index rebuild over a large
        log); create it when it is missing (a server answers IndexNotFound)."""
        seconds = int(seconds)
        current = self._entries.index_information().get(TTL_INDEX, {}).get("expireAfterSeconds")
        if current == seconds:
            return
        try:
            self._db.db.command({"collMod": ENTRIES, "index": {"name": TTL_INDEX, "expireAfterSeconds": seconds}})
        except OperationFailure as exc:
            if exc.code != INDEX_NOT_FOUND:
                raise
            self._entries.create_index([("time", 1)], expireAfterSeconds=seconds, name=TTL_INDEX)
