"""MongoDB inventory store, in Mender's document shape: one document per device whose
`attributes` object is keyed "<scope>-<name>" → {name, scope, value, description?, timestamp?};
searched through a wildcard index on `attributes`."""

from __future__ import annotations

import logging
import re

import pymongo
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from common.clock import unix_seconds, utc_datetime
from common.errors import BadRequest, Conflict
from inventory.model import (ATTR_GROUP, ATTR_STATUS, SCOPE_IDENTITY, SCOPE_SYSTEM, TEXT_SCOPES, Attribute,
                             AttributeCount, AttributeValueCount, Cond, Device, Filter, text_values)
from inventory.store import InventoryStore

log = logging.getLogger(__name__)

SEARCH_SECONDS = 5.0  # one search (count and page) ends within this, else 503
_BAD_VALUE, _REGEX_INVALID = 2, 51091  # MongoDB error codes

DEVICES = "inventory_devices"
FILTERS = "inventory_filters"


def attr_key(scope: str, name: str) -> str:
    """The key of an attribute in `attributes` ('.' and '$' escaped as Mender does; NUL, which no
    stored name holds but a query may name, as U+2400: MongoDB refuses it in a field name)."""
    return f"{scope}-" + name.replace(".", "\uff0e").replace("$", "\uff04").replace("\x00", "\u2400")


def _value_path(scope: str, name: str) -> str:
    return f"attributes.{attr_key(scope, name)}.value"


def _m1_indexes(db) -> None:
    devices = db[DEVICES]
    devices.create_index([("tenant_id", 1), ("device_id", 1)], unique=True, name="tenant_device")
    try:
        # one index over every attribute value (MongoDB >= 4.2): a predicate on any
        # (scope, name) is an index scan, as Mender's per-attribute indexing intends
        devices.create_index([("attributes.$**", 1)], name="attributes_wildcard")
    except OperationFailure as exc:  # servers without wildcard indexes (< 4.2)
        log.warning("inventory: wildcard index not created: %s", exc)
    db[FILTERS].create_index([("tenant_id", 1), ("name", 1)], unique=True, name="tenant_name")
    db[FILTERS].create_index([("tenant_id", 1), ("id", 1)], unique=True, name="tenant_id_id")


def _m2_text(db) -> None:
    """Free-text search: each device keeps `text`, its folded values of TEXT_SCOPES (multikey index)."""
    devices = db[DEVICES]
    devices.create_index([("tenant_id", 1), ("text", 1)], name="tenant_text")
    for doc in devices.find({"text": {"$exists": False}}, {"attributes": 1}):
        attrs = [_from_doc(a) for a in (doc.get("attributes") or {}).values()]
        devices.update_one({"_id": doc["_id"], "text": {"$exists": False}}, {"$set": {"text": text_values(attrs)}})




def _m3_hot_filter_indexes(db) -> None:
    """Compound indexes led by tenant_id for the filters every listing and deployment uses
    (status, group), ending in device_id so that a page in id order is an index range; the
    group list is a DISTINCT_SCAN of the group index, not a read of every device. On MongoDB 7.0+
    the wildcard index is compounded with tenant_id too (one tenant's predicates never scan
    another's keys); older servers keep the plain one."""
    devices = db[DEVICES]
    status, group = _value_path(SCOPE_IDENTITY, ATTR_STATUS), _value_path(SCOPE_SYSTEM, ATTR_GROUP)
    devices.create_index([("tenant_id", 1), (status, 1), ("device_id", 1)], name="tenant_status_device")
    devices.create_index([("tenant_id", 1), (group, 1), ("device_id", 1)], name="tenant_group_device")
    devices.create_index([("tenant_id", 1), (status, 1), (group, 1)], name="tenant_status_group")
    try:
        devices.create_index([("tenant_id", 1), ("attributes.$**", 1)], name="tenant_attributes_wildcard")
    except OperationFailure as exc:  # MongoDB < 7.0
        log.warning("inventory: compound wildcard index not created (MongoDB < 7.0): %s", exc)
    else:
        try:
            devices.drop_index("attributes_wildcard")
        except OperationFailure:  # pragma: no cover - already gone
            pass


MIGRATIONS = [_m1_indexes, _m2_text, _m3_hot_filter_indexes]


def _to_doc(attr: Attribute) -> dict:
    doc = {"name": attr.name, "scope": attr.scope, "value": attr.value}
    if attr.description:
        doc["description"] = attr.description
    if attr.timestamp is not None:
        doc["timestamp"] = attr.timestamp
    return doc


def _from_doc(doc: dict) -> Attribute:
    value = doc.get("value")
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif isinstance(value, list):
        value = [float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return Attribute(doc["scope"], doc["name"], value, doc.get("description"), doc.get("timestamp"))


def _cond_filter(c: Cond) -> dict:
    field = "device_id" if c.on_id else _value_path(c.scope, c.name)
    op = c.op
    if op == "text":  # an anchored literal prefix: an index range on the multikey `text`, or on the id
        prefix = {"$regex": "^" + re.escape(c.strs[0])}
        return {"$or": [{"text": prefix}, {"device_id": prefix}]}
    if op == "exists":
        if c.on_id:
            return {} if c.exists else {"_id": {"$exists": False}}
        return {f"attributes.{attr_key(c.scope, c.name)}": {"$exists": c.exists}}
    if op == "regex":
        return {field: {"$regex": c.regex, "$options": c.flags}} if c.flags else {field: {"$regex": c.regex}}
    values = list(c.strs) + list(c.nums)
    if op == "ltne":  # below the value, or the attribute absent (a device id is never absent)
        if c.on_id:
            return {field: {"$lt": values[0]}}
        return {"$or": [{field: {"$lt": values[0]}},
                        {f"attributes.{attr_key(c.scope, c.name)}": {"$exists": False}}]}
    if op in ("in", "nin"):
        return {field: {f"${op}": values}}
    return {field: {f"${op}": values[0]}}


class MongoInventoryStore(InventoryStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self.db = db

    @property
    def devices(self):
        return self.db.db[DEVICES]

    @property
    def filters(self):
        return self.db.db[FILTERS]

    def _new_doc(self, tenant, device_id, now, etag, attributes) -> dict:
        return {"tenant_id": tenant, "device_id": device_id, "created_ts": utc_datetime(now),
                "updated_ts": utc_datetime(now),
                "version": 0, "revision": 0, "tags_etag": etag,
                "attributes": {attr_key(a.scope, a.name): _to_doc(a) for a in attributes},
                "text": text_values(attributes)}

    # devices ------------------------------------------------------------------
    def create_device(self, tenant, device_id, now, etag, attributes=()):
        try:
            result = self.devices.update_one({"tenant_id": tenant, "device_id": device_id},
                                             {"$setOnInsert": self._new_doc(tenant, device_id, now, etag,
                                                                            attributes)}, upsert=True)
        except DuplicateKeyError:  # a concurrent insert won
            return False
        return result.upserted_id is not None

    def import_devices(self, tenant, devices, now, etag_factory):
        docs = [self._new_doc(tenant, device_id, now, etag_factory(), attrs) for device_id, attrs in devices]
        if not docs:
            return 0
        try:  # unordered: devices that exist already fail on the unique index, the rest go in
            return len(self.devices.insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            return exc.details.get("nInserted", 0)

    def _record(self, doc, select=None) -> Device:
        attrs = [_from_doc(a) for a in (doc.get("attributes") or {}).values()]
        if select is not None:
            attrs = [a for a in attrs if a.key() in select]
        attrs.sort(key=lambda a: (a.scope, a.name))
        return Device(id=doc["device_id"], created_ts=unix_seconds(doc["created_ts"]),
                      updated_ts=unix_seconds(doc["updated_ts"]), version=doc.get("version", 0),
                      revision=doc.get("revision", 0), tags_etag=doc.get("tags_etag", ""), attributes=attrs)

    def get_device(self, tenant, device_id, scopes=None):
        doc = self.devices.find_one({"tenant_id": tenant, "device_id": device_id})
        if not doc:
            return None
        record = self._record(doc)
        if scopes is not None:
            record.attributes = [a for a in record.attributes if a.scope in scopes]
        return record

    def get_devices(self, tenant, device_ids, select=None):
        if not device_ids:
            return []
        docs = {d["device_id"]: d for d in self.devices.find({"tenant_id": tenant,
                                                             "device_id": {"$in": list(device_ids)}})}
        wanted = set(select) if select is not None else None
        return [self._record(docs[i], wanted) for i in device_ids if i in docs]

    def apply(self, tenant, device_id, version, set_attrs, unset, updated_ts=None, tags_etag=None):
        update: dict = {"$inc": {"version": 1}}
        sets = {f"attributes.{attr_key(a.scope, a.name)}": _to_doc(a) for a in set_attrs}
        if updated_ts is not None:
            sets["updated_ts"] = utc_datetime(updated_ts)
        if tags_etag is not None:
            sets["tags_etag"] = tags_etag
        if sets:
            update["$set"] = sets
        unsets = {f"attributes.{attr_key(s, n)}": "" for s, n in unset}
        if unsets:
            update["$unset"] = unsets
        where = {"tenant_id": tenant, "device_id": device_id, "version": version}
        if not any(a.scope in TEXT_SCOPES for a in set_attrs) and not any(s in TEXT_SCOPES for s, _ in unset):
            return self.devices.update_one(where, update).matched_count == 1
        doc = self.devices.find_one_and_update(where, update, projection={"attributes": 1, "version": 1},
                                               return_document=pymongo.ReturnDocument.AFTER)
        if doc is None:
            return False
        # the text values follow from the whole device: set them from what this write left, unless
        # a later write got in between (it sets them from its own, newer, state)
        attrs = [_from_doc(a) for a in (doc.get("attributes") or {}).values()]
        self.devices.update_one({**where, "version": doc["version"]}, {"$set": {"text": text_values(attrs)}})
        return True

    def set_status(self, tenant, items, status):
        sets = {f"attributes.{attr_key(s, ATTR_STATUS)}": _to_doc(Attribute(s, ATTR_STATUS, status))
                for s in (SCOPE_IDENTITY, SCOPE_SYSTEM)}
        unguarded = [device_id for device_id, revision in items if revision is None]
        count = 0
        if unguarded:
            count += self.devices.update_many({"tenant_id": tenant, "device_id": {"$in": unguarded}},
                                              {"$set": sets, "$inc": {"version": 1}}).modified_count
        for device_id, revision in items:
            if revision is not None:  # only a newer revision wins (devauth's optimistic concurrency)
                count += self.devices.update_one(
                    {"tenant_id": tenant, "device_id": device_id, "revision": {"$lt": revision}},
                    {"$set": {**sets, "revision": revision}, "$inc": {"version": 1}}).modified_count
        return count

    def delete_device(self, tenant, device_id):
        return self.devices.delete_one({"tenant_id": tenant, "device_id": device_id}).deleted_count > 0

    def set_group(self, tenant, device_ids, group):
        ids = list(dict.fromkeys(device_ids))
        if not ids:
            return 0, 0
        key = f"attributes.{attr_key(SCOPE_SYSTEM, ATTR_GROUP)}"
        base = {"tenant_id": tenant, "device_id": {"$in": ids}}
        matched = self.devices.count_documents(base)
        result = self.devices.update_many(
            {**base, f"{key}.value": {"$ne": group}},
            {"$set": {key: _to_doc(Attribute(SCOPE_SYSTEM, ATTR_GROUP, group))}, "$inc": {"version": 1}})
        return matched, result.modified_count

    def clear_group(self, tenant, group, device_ids=None):
        key = f"attributes.{attr_key(SCOPE_SYSTEM, ATTR_GROUP)}"
        query: dict = {"tenant_id": tenant, f"{key}.value": group}
        if device_ids is not None:
            query["device_id"] = {"$in": list(device_ids)}
        return self.devices.update_many(query, {"$unset": {key: ""}, "$inc": {"version": 1}}).modified_count

    def record_check_ins(self, tenant, device_ids, value, stale_before):
        key = f"attributes.{attr_key(SCOPE_SYSTEM, 'check_in_time')}"
        ids = list(device_ids)
        for start in range(0, len(ids), 500):
            self.devices.update_many(
                {"tenant_id": tenant, "device_id": {"$in": ids[start:start + 500]},
                 "$or": [{key: {"$exists": False}}, {f"{key}.value": {"$lt": stale_before}}]},
                {"$set": {key: {"name": "check_in_time", "scope": SCOPE_SYSTEM, "value": value}}})

    # search -------------------------------------------------------------------
    def _query(self, tenant, conds) -> dict | None:
        parts = []
        for c in conds:
            if c.op == "regex" and not c.valid_regex:
                return None
            part = _cond_filter(c)
            if part:
                parts.append(part)
        query: dict = {"tenant_id": tenant}
        if parts:
            query["$and"] = parts
        return query

    def search(self, tenant, conds, sort, skip, limit, exact=True):
        """A page of matching ids and the count. Bounded: the whole search ends within
        SEARCH_SECONDS (client-side deadline, sent to the server as maxTimeMS; past it 503), a sort
        by attribute may spill to disk (MongoDB's in-memory sort limit is 100 MiB: error 292
        otherwise). A pattern MongoDB rejects matches nothing, as on SQLite; a sort MongoDB cannot
        do (two array attributes: parallel arrays) is BadRequest; any other failure propagates."""
        query = self._query(tenant, conds)
        if query is None:
            return [], 0
        try:
            with pymongo.timeout(SEARCH_SECONDS):
                total = self.devices.count_documents(query)
                if total == 0 or skip >= total:
                    return [], total
                keys = [("device_id" if (s.scope, s.name) == (SCOPE_IDENTITY, "id") else _value_path(s.scope, s.name),
                         pymongo.DESCENDING if s.descending else pymongo.ASCENDING) for s in sort]
                if "device_id" not in {k for k, _ in keys}:
                    keys.append(("device_id", pymongo.ASCENDING))
                cursor = self.devices.find(query, {"device_id": 1}).sort(keys).skip(skip).limit(limit)
                if sort:
                    cursor = cursor.allow_disk_use(True)
                return [d["device_id"] for d in cursor], total
        except OperationFailure as exc:
            if exc.code == _REGEX_INVALID or (exc.code == _BAD_VALUE and "regular expression" in str(exc).lower()):
                return [], 0  # a pattern RE2 accepts and PCRE does not: no match, as RE2's rejects
            if exc.code == _BAD_VALUE and "parallel arrays" in str(exc):
                raise BadRequest("sort: cannot sort by two attributes that both hold arrays") from None
            raise

    def status_tier_counts(self, tenant, statuses, tier):
        status_path, tier_path = _value_path(SCOPE_IDENTITY, ATTR_STATUS), _value_path(*tier)
        pipeline = [{"$match": {"tenant_id": tenant, status_path: {"$in": list(statuses)}}},
                    {"$group": {"_id": {"s": f"${status_path}", "t": f"${tier_path}"}, "n": {"$sum": 1}}}]
        with pymongo.timeout(SEARCH_SECONDS):
            rows = list(self.devices.aggregate(pipeline))
        out: dict = {}
        for r in rows:
            tier_value = r["_id"].get("t")
            key = (r["_id"]["s"], tier_value if isinstance(tier_value, str) else None)
            out[key] = out.get(key, 0) + r["n"]
        return out

    def matching_ids(self, tenant, conds, limit):
        # the status and group filters are ranges of the tenant-led indexes in device_id order
        query = self._query(tenant, conds)
        if query is None:
            return []
        cursor = self.devices.find(query, {"device_id": 1, "_id": 0}).sort("device_id", pymongo.ASCENDING)
        return [d["device_id"] for d in cursor.limit(limit).batch_size(10_000)]

    def groups(self, tenant, status=None):
        query: dict = {"tenant_id": tenant}
        if status is not None:
            query[_value_path(SCOPE_IDENTITY, ATTR_STATUS)] = status
        values = self.devices.distinct(_value_path(SCOPE_SYSTEM, ATTR_GROUP), query)
        return sorted(v for v in values if isinstance(v, str))

    def attribute_counts(self, tenant, sample, limit):
        pipeline = [
            {"$match": {"tenant_id": tenant}},
            {"$limit": sample},
            {"$project": {"a": {"$objectToArray": "$attributes"}}},
            {"$unwind": "$a"},
            {"$group": {"_id": {"scope": "$a.v.scope", "name": "$a.v.name"}, "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id.scope": 1, "_id.name": 1}},
            {"$limit": limit},
        ]
        return [AttributeCount(r["_id"]["scope"], r["_id"]["name"], r["count"]) for r in self.devices.aggregate(pipeline)]

    def attribute_value_counts(self, tenant, device_ids, scope, names):
        if not device_ids:
            return []
        wanted = [attr_key(scope, n) for n in names] if names else None
        pipeline = [
            {"$match": {"tenant_id": tenant, "device_id": {"$in": list(dict.fromkeys(device_ids))}}},
            {"$project": {"a": {"$objectToArray": "$attributes"}}},
            {"$unwind": "$a"},
            {"$match": {"a.k": {"$in": wanted}} if wanted else {"a.v.scope": scope}},
            {"$unwind": "$a.v.value"},  # an array counts each element; a scalar unwinds to itself
            {"$group": {"_id": {"name": "$a.v.name", "value": "$a.v.value"}, "count": {"$sum": 1}}},
        ]
        out = []
        for r in self.devices.aggregate(pipeline):
            value = r["_id"]["value"]
            if value is None or isinstance(value, (dict, list, bool)):
                continue
            out.append(AttributeValueCount(scope, r["_id"]["name"], float(value) if isinstance(value, int) else value,
                                           r["count"]))
        return out

    # saved filters ------------------------------------------------------------
    def insert_filter(self, tenant, saved):
        try:
            self.filters.insert_one({"tenant_id": tenant, "id": saved.id, "name": saved.name, "terms": saved.terms,
                                     "created_ts": saved.created_ts})
        except DuplicateKeyError:
            raise Conflict("a filter with this name already exists") from None

    @staticmethod
    def _filter(doc) -> Filter:
        return Filter(id=doc["id"], name=doc["name"], terms=doc["terms"], created_ts=doc["created_ts"])

    def list_filters(self, tenant, skip, limit):
        total = self.filters.count_documents({"tenant_id": tenant})
        docs = self.filters.find({"tenant_id": tenant}).sort([("name", 1)]).skip(skip).limit(limit)
        return [self._filter(d) for d in docs], total

    def get_filter(self, tenant, filter_id):
        doc = self.filters.find_one({"tenant_id": tenant, "id": filter_id})
        return self._filter(doc) if doc else None

    def delete_filter(self, tenant, filter_id):
        return self.filters.delete_one({"tenant_id": tenant, "id": filter_id}).deleted_count > 0

    def delete_tenant(self, tenant: str) -> None:
        self.db.delete_tenant_rows((DEVICES, FILTERS), tenant)
