"""tenantadm store on MongoDB (collections tenantadm_tenants, tenantadm_limits)."""

from __future__ import annotations

import re
from typing import Sequence

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from common.errors import Conflict
from tenantadm.model import Tenant
from tenantadm.store import TenantadmStore

TENANTS = "tenantadm_tenants"
LIMITS = "tenantadm_limits"


def _m1_indexes(db) -> None:
    db[TENANTS].create_index([("created_ts", ASCENDING), ("_id", ASCENDING)], name="created")
    db[TENANTS].create_index([("name_key", ASCENDING)], name="name_key")
    db[LIMITS].create_index([("tenant_id", ASCENDING), ("name", ASCENDING)], unique=True, name="tenant_name")


MIGRATIONS = [_m1_indexes]


def _out(doc: dict | None) -> Tenant | None:
    if doc is None:
        return None
    return Tenant(id=doc["_id"], name=doc["name"], status=doc["status"], tenant_token=doc["tenant_token"],
                  token_id=doc["token_id"], created_ts=unix_seconds(doc["created_ts"]),
                  updated_ts=unix_seconds(doc["updated_ts"]))


class MongoTenantadmStore(TenantadmStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def _tenants(self):
        return self._db.db[TENANTS]

    @property
    def _limits(self):
        return self._db.db[LIMITS]

    def insert_tenant(self, tenant: Tenant) -> None:
        # `tenant_id` repeats `_id`: every collection has the field the tenant-scope checks look for
        doc = {"_id": tenant.id, "tenant_id": tenant.id, "name": tenant.name, "name_key": tenant.name.casefold(),
               "status": tenant.status, "tenant_token": tenant.tenant_token, "token_id": tenant.token_id,
               "created_ts": utc_datetime(tenant.created_ts), "updated_ts": utc_datetime(tenant.updated_ts)}
        try:
            self._tenants.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("an organization with this id already exists") from None

    def get_tenant(self, tenant_id: str) -> Tenant | None:
        return _out(self._tenants.find_one({"_id": tenant_id}))

    def list_tenants(self, *, ids: Sequence[str] | None = None, q: str | None = None,
                     name: str | None = None, skip: int = 0, limit: int = 20) -> tuple[list[Tenant], int]:
        query: dict = {}
        if ids is not None:
            query["_id"] = {"$in": list(ids)}
        if q:
            query["$or"] = [{"_id": q}, {"name_key": {"$regex": re.escape(q.casefold())}}]
        if name is not None:
            query["name_key"] = name.casefold()
        total = self._tenants.count_documents(query)
        cursor = self._tenants.find(query).sort([("created_ts", ASCENDING), ("_id", ASCENDING)]).skip(skip).limit(limit)
        return [_out(d) for d in cursor], total

    def update_tenant(self, tenant_id: str, *, updated_ts: float, name: str | None = None,
                      status: str | None = None, expect_status: Sequence[str] | None = None) -> bool:
        fields: dict = {"updated_ts": utc_datetime(updated_ts)}
        if name is not None:
            fields.update(name=name, name_key=name.casefold())
        if status is not None:
            fields["status"] = status
        query: dict = {"_id": tenant_id}
        if expect_status is not None:
            query["status"] = {"$in": list(expect_status)}
        return self._tenants.update_one(query, {"$set": fields}).matched_count > 0

    def set_token(self, tenant_id: str, tenant_token: str, token_id: str, updated_ts: float) -> bool:
        result = self._tenants.update_one({"_id": tenant_id}, {"$set": {
            "tenant_token": tenant_token, "token_id": token_id, "updated_ts": utc_datetime(updated_ts)}})
        return result.matched_count > 0

    def delete_tenant(self, tenant_id: str) -> bool:
        # limits first: a retry after a failure part-way still finds the organization to delete
        self._limits.delete_many({"tenant_id": tenant_id})
        return self._tenants.delete_one({"_id": tenant_id}).deleted_count > 0

    def get_limit(self, tenant_id: str, name: str) -> int | None:
        doc = self._limits.find_one({"tenant_id": tenant_id, "name": name})
        return None if doc is None else int(doc["value"])

    def set_limit(self, tenant_id: str, name: str, value: int) -> None:
        try:
            self._limits.update_one({"tenant_id": tenant_id, "name": name}, {"$set": {"value": value}}, upsert=True)
        except DuplicateKeyError:  # a concurrent first write won: last writer wins
            self._limits.update_one({"tenant_id": tenant_id, "name": name}, {"$set": {"value": value}})

    def delete_limit(self, tenant_id: str, name: str) -> None:
        self._limits.delete_one({"tenant_id": tenant_id, "name": name})
