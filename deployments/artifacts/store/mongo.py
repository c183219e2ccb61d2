"""The artifacts store on MongoDB.

Uniqueness of (name, dependency combination) is the unique multikey index on
(tenant_id, name, depends_idx), as in Mender. Release summaries are recomputed from the
release's artifacts (an indexed query) after each change; two concurrent changes of one
release are reconciled by re-checking the artifact count after writing.
"""

from __future__ import annotations

import contextlib
import json

import pymongo
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from common.errors import Conflict
from deployments.artifacts.model import Artifact, ArtifactBrief, Release
from deployments.artifacts.store import ArtifactsStore, Filter, prefix_upper

ARTIFACTS = "artifacts"
RELEASES = "artifact_releases"
UPLOADS = "artifact_uploads"
LIMITS = "artifact_limits"


def _m1_indexes(db) -> None:
    a = db[ARTIFACTS]
    a.create_index([("tenant_id", 1), ("id", 1)], unique=True, name="tenant_id_1_id_1")
    a.create_index([("tenant_id", 1), ("name", 1), ("depends_idx", 1)], unique=True, name="name_depends")
    a.create_index([("tenant_id", 1), ("device_types", 1)], name="device_types")
    a.create_index([("tenant_id", 1), ("description", 1)], name="description")
    a.create_index([("tenant_id", 1), ("modified", 1)], name="modified")
    r = db[RELEASES]
    r.create_index([("tenant_id", 1), ("name", 1)], unique=True, name="tenant_id_1_name_1")
    r.create_index([("tenant_id", 1), ("tags", 1)], name="tags")
    r.create_index([("tenant_id", 1), ("update_types", 1)], name="update_types")
    r.create_index([("tenant_id", 1), ("modified", 1)], name="modified")
    r.create_index([("tenant_id", 1), ("artifacts_count", 1)], name="artifacts_count")
    db[UPLOADS].create_index([("tenant_id", 1), ("id", 1)], unique=True, name="tenant_id_1_id_1")


def _m2_storage_keys(db) -> None:
    """Each artifact names its object; those stored before upload nonces keep `<tenant>/<id>`."""
    coll = db[ARTIFACTS]
    for doc in coll.find({"storage_key": {"$exists": False}}, {"_id": 1, "tenant_id": 1, "id": 1}):
        key = f"{doc['tenant_id']}/{doc['id']}" if doc["tenant_id"] else doc["id"]
        coll.update_one({"_id": doc["_id"], "storage_key": {"$exists": False}}, {"$set": {"storage_key": key}})


def _m3_limits(db) -> None:
    db[LIMITS].create_index([("tenant_id", 1), ("name", 1)], unique=True, name="tenant_name")


def _m4_upload_expiry(db) -> None:
    """The sweep of expired direct uploads."""
    db[UPLOADS].create_index([("expire", 1)], name="expire")


MIGRATIONS = [_m1_indexes, _m2_storage_keys, _m3_limits, _m4_upload_expiry]

_INDEXED = ("id", "name", "description", "device_types", "update_types", "depends_idx", "size", "modified",
            "storage_key")
_DOC_FIELDS = ("info", "signed", "updates", "provides", "depends", "clears_provides")


def _match(field: str, flt: Filter) -> dict:
    kind, value = flt
    if kind == "prefix":
        return {field: {"$gte": value, "$lt": prefix_upper(value)}}
    return {field: {"$in": list(value)}}


class MongoArtifactsStore(ArtifactsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self.database = db

    @property
    def _db(self):
        return self.database.db

    # artifacts ---------------------------------------------------------------
    @staticmethod
    def _artifact(doc: dict) -> Artifact:
        fields = {k: doc[k] for k in _INDEXED}
        fields["modified"] = unix_seconds(doc["modified"])
        fields.update(json.loads(doc["doc"]))
        return Artifact(**fields)

    def insert_artifact(self, tenant, a):
        # free-form maps (provides, meta-data …) may hold keys MongoDB refuses ('$x', 'a.b'): kept as JSON
        doc = {k: getattr(a, k) for k in _INDEXED}
        doc.update(tenant_id=tenant, modified=utc_datetime(a.modified),
                   doc=json.dumps({k: getattr(a, k) for k in _DOC_FIELDS}))
        # an indexed lookup answers the common conflict before any write; the unique multikey
        # index on (tenant, name, depends) decides the race between two concurrent uploads
        if self.find_conflict(tenant, a.name, a.depends_idx) is not None:
            raise Conflict("an artifact with the same name and depends already exists")
        try:
            self._db[ARTIFACTS].insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("an artifact with the same name and depends already exists") from None
        self._refresh_release(tenant, a.name)

    def find_conflict(self, tenant, name, depends_idx):
        if not depends_idx:
            return None
        doc = self._db[ARTIFACTS].find_one({"tenant_id": tenant, "name": name, "depends_idx": {"$in": depends_idx}})
        return self._artifact(doc) if doc else None

    def get_artifact(self, tenant, artifact_id):
        doc = self._db[ARTIFACTS].find_one({"tenant_id": tenant, "id": artifact_id})
        return self._artifact(doc) if doc else None

    def get_artifact_brief(self, tenant, artifact_id):
        doc = self._db[ARTIFACTS].find_one({"tenant_id": tenant, "id": artifact_id},
                                           {"_id": 0, "id": 1, "name": 1, "device_types": 1, "size": 1,
                                            "storage_key": 1})
        return ArtifactBrief(**doc) if doc else None

    def artifacts_by_names(self, tenant, names):
        if not names:
            return []
        cursor = self._db[ARTIFACTS].find({"tenant_id": tenant, "name": {"$in": list(names)}}).sort(
            [("name", 1), ("id", 1)])
        return [self._artifact(d) for d in cursor]

    def list_artifacts(self, tenant, *, name=None, description=None, device_type=None, sort=("name", True),
                       skip=0, limit=None):
        query: dict = {"tenant_id": tenant}
        for field, flt in (("name", name), ("description", description), ("device_types", device_type)):
            if flt:
                query.update(_match(field, flt))
        coll = self._db[ARTIFACTS]
        total = coll.count_documents(query)
        field, asc = sort
        direction = pymongo.ASCENDING if asc else pymongo.DESCENDING
        order = [(field, direction), ("id", direction)] if field == "modified" else [("name", direction), ("id", 1)]
        cursor = coll.find(query).sort(order).skip(skip)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [self._artifact(d) for d in cursor], total

    def update_description(self, tenant, artifact_id, description, modified):
        doc = self._db[ARTIFACTS].find_one_and_update(
            {"tenant_id": tenant, "id": artifact_id},
            {"$set": {"description": description, "modified": utc_datetime(modified)}})
        if doc is None:
            return False
        self._refresh_release(tenant, doc["name"])
        return True

    def delete_artifact(self, tenant, artifact_id):
        doc = self._db[ARTIFACTS].find_one_and_delete({"tenant_id": tenant, "id": artifact_id})
        if doc is None:
            return None
        self._refresh_release(tenant, doc["name"])
        return self._artifact(doc)

    def storage_usage(self, tenant):
        result = list(self._db[ARTIFACTS].aggregate([
            {"$match": {"tenant_id": tenant}}, {"$group": {"_id": None, "total": {"$sum": "$size"}}}]))
        return int(result[0]["total"]) if result else 0

    # releases ----------------------------------------------------------------
    def _refresh_release(self, tenant: str, name: str) -> None:
        releases = self._db[RELEASES]
        for _ in range(5):
            docs = list(self._db[ARTIFACTS].find({"tenant_id": tenant, "name": name},
                                                 {"device_types": 1, "update_types": 1, "modified": 1}))
            if not docs:
                releases.delete_one({"tenant_id": tenant, "name": name})
            else:
                releases.update_one({"tenant_id": tenant, "name": name}, {
                    "$set": {"artifacts_count": len(docs),
                             "modified": max(utc_datetime(unix_seconds(d["modified"])) for d in docs),
                             "device_types": sorted({t for d in docs for t in d["device_types"]}),
                             "update_types": sorted({t for d in docs for t in d["update_types"]})},
                    "$setOnInsert": {"notes": "", "tags": [], "tags_sort": ""}}, upsert=True)
            # a concurrent change of the same release may have read an older state: settle it
            if self._db[ARTIFACTS].count_documents({"tenant_id": tenant, "name": name}) == len(docs):
                return

    @staticmethod
    def _release(doc: dict) -> Release:
        return Release(name=doc["name"], notes=doc.get("notes", ""), tags=list(doc.get("tags", [])),
                       artifacts_count=doc["artifacts_count"], modified=unix_seconds(doc["modified"]),
                       update_types=list(doc.get("update_types", [])), device_types=list(doc.get("device_types", [])))

    def list_releases(self, tenant, *, name=None, tags=None, update_type=None, device_type=None,
                      description=None, sort=("name", True), skip=0, limit=None):
        query: dict = {"tenant_id": tenant}
        if name:
            query.update(_match("name", name))
        if tags:
            query["tags"] = {"$in": list(tags)}
        if update_type:
            query["update_types"] = update_type
        if device_type:
            query["device_types"] = device_type
        if description:
            names = self._db[ARTIFACTS].distinct("name", {"tenant_id": tenant, "description": description})
            query.setdefault("$and", []).append({"name": {"$in": names}})
        coll = self._db[RELEASES]
        total = coll.count_documents(query)
        field, asc = sort
        direction = pymongo.ASCENDING if asc else pymongo.DESCENDING
        key = "tags_sort" if field == "tags" else field
        order = [(key, direction)] + ([("name", 1)] if field != "name" else [])
        cursor = coll.find(query).sort(order).skip(skip)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [self._release(d) for d in cursor], total

    def get_release(self, tenant, name):
        doc = self._db[RELEASES].find_one({"tenant_id": tenant, "name": name})
        return self._release(doc) if doc else None

    def set_release_notes(self, tenant, name, notes):
        return self._db[RELEASES].update_one({"tenant_id": tenant, "name": name},
                                             {"$set": {"notes": notes}}).matched_count > 0

    def set_release_tags(self, tenant, name, tags, max_unique):
        releases = self._db[RELEASES]
        if releases.find_one({"tenant_id": tenant, "name": name}, {"_id": 1}) is None:
            return False
        others = set(releases.distinct("tags", {"tenant_id": tenant, "name": {"$ne": name}}))
        if len(others | set(tags)) > max_unique:
            raise Conflict("the total number of unique tags has been exceeded")
        return releases.update_one({"tenant_id": tenant, "name": name},
                                   {"$set": {"tags": list(tags), "tags_sort": ",".join(sorted(tags))}}).matched_count > 0

    def release_tags(self, tenant):
        return sorted(self._db[RELEASES].distinct("tags", {"tenant_id": tenant}))

    def update_types(self, tenant):
        return sorted(t for t in self._db[RELEASES].distinct("update_types", {"tenant_id": tenant}) if t)

    # direct uploads ----------------------------------------------------------
    def insert_upload(self, tenant, upload_id, expire, created):
        self._db[UPLOADS].insert_one({"tenant_id": tenant, "id": upload_id, "status": "pending",
                                      "expire": utc_datetime(expire), "created": utc_datetime(created)})

    def upload_status(self, tenant, upload_id):
        doc = self._db[UPLOADS].find_one({"tenant_id": tenant, "id": upload_id}, {"status": 1})
        return doc["status"] if doc else None

    def claim_upload(self, tenant, upload_id):
        return self._db[UPLOADS].find_one_and_update(
            {"tenant_id": tenant, "id": upload_id, "status": "pending"},
            {"$set": {"status": "processing"}}) is not None

    def set_upload_status(self, tenant, upload_id, status):
        self._db[UPLOADS].update_one({"tenant_id": tenant, "id": upload_id}, {"$set": {"status": status}})

    def expired_uploads(self, before, limit):
        docs = self._db[UPLOADS].find({"expire": {"$lt": utc_datetime(before)}},
                                      {"tenant_id": 1, "id": 1, "status": 1}).sort("expire", 1).limit(limit)
        return [(d["tenant_id"], d["id"], d["status"]) for d in docs]

    def delete_upload(self, tenant, upload_id, status):
        return self._db[UPLOADS].delete_one({"tenant_id": tenant, "id": upload_id, "status": status}).deleted_count > 0

    # limits and organizations --------------------------------------------------
    def transaction(self):
        return contextlib.nullcontext()  # single-document writes; the service re-checks limits after them

    def get_limit(self, tenant, name):
        doc = self._db[LIMITS].find_one({"tenant_id": tenant, "name": name})
        return None if doc is None else int(doc["value"])

    def set_limit(self, tenant, name, value):
        try:
            self._db[LIMITS].update_one({"tenant_id": tenant, "name": name}, {"$set": {"value": value}}, upsert=True)
        except DuplicateKeyError:  # a concurrent first write won: last writer wins
            self._db[LIMITS].update_one({"tenant_id": tenant, "name": name}, {"$set": {"value": value}})

    def delete_tenant(self, tenant):
        self.database.delete_tenant_rows((UPLOADS, RELEASES, ARTIFACTS, LIMITS), tenant)
