"""useradm store on MongoDB (collections useradm_users, useradm_tokens, useradm_settings)."""

from __future__ import annotations

import json
from typing import Sequence

import pymongo
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from common.errors import Conflict, PreconditionFailed
from common.permissions import PERMIT_ALL
from useradm.model import PAT, SESSION, Role, Token, User
from useradm.store import UseradmStore, grants_from, grants_json

USERS = "useradm_users"
TOKENS = "useradm_tokens"
SETTINGS = "useradm_settings"
RATE_LIMITS = "useradm_rate_limits"
ROLES = "useradm_roles"

_USER_TIMES = ("created_ts", "updated_ts", "login_ts")
_TOKEN_TIMES = ("created_ts", "exp", "last_used")


def _m1_indexes(db) -> None:
    users = db[USERS]
    users.create_index([("tenant_id", 1), ("email", 1)], unique=True, name="tenant_email")
    users.create_index([("email", 1), ("created_ts", 1)], name="email_created")
    users.create_index([("tenant_id", 1), ("created_ts", 1)], name="tenant_created")
    tokens = db[TOKENS]
    tokens.create_index([("tenant_id", 1), ("user_id", 1), ("kind", 1), ("created_ts", 1)], name="user_kind")
    tokens.create_index([("tenant_id", 1), ("user_id", 1), ("name", 1)], unique=True, name="pat_name",
                        partialFilterExpression={"kind": PAT})
    # expired tokens are removed by MongoDB itself; tokens without `exp` never expire
    tokens.create_index([("exp", 1)], expireAfterSeconds=0, name="exp_ttl")
    db[SETTINGS].create_index([("tenant_id", 1), ("user_id", 1)], unique=True, name="tenant_user")


def _m2_rate_limits(db) -> None:
    # ended windows are removed by MongoDB itself
    db[RATE_LIMITS].create_index([("expires_at", 1)], expireAfterSeconds=0, name="expires_ttl")


def _m3_roles(db) -> None:
    # users hold role names (existing users stay administrators, as before roles); custom roles
    # per organization, unique by name
    db[USERS].update_many({"roles": {"$exists": False}}, {"$set": {"roles": [PERMIT_ALL]}})
    db[USERS].create_index([("tenant_id", 1), ("roles", 1)], name="tenant_roles")
    db[ROLES].create_index([("tenant_id", 1), ("name", 1)], unique=True, name="tenant_name")




def _m4_unique_email(db) -> None:
    # one account per email on the whole server, so that login needs no organization (as hosted
    # Mender); fails if two organizations share an email (docs/tenants.md)
    db[USERS].create_index([("email", 1)], unique=True, name="email_unique")


MIGRATIONS = [_m1_indexes, _m2_rate_limits, _m3_roles, _m4_unique_email]


def _user_out(doc: dict | None) -> User | None:
    if doc is None:
        return None
    return User(id=doc["_id"], tenant_id=doc["tenant_id"], email=doc["email"], password_hash=doc["password_hash"],
                roles=list(doc.get("roles", [PERMIT_ALL])), **{key: unix_seconds(doc.get(key)) for key in _USER_TIMES})


def _token_out(doc: dict | None) -> Token | None:
    if doc is None:
        return None
    roles = doc.get("roles")
    return Token(id=doc["_id"], tenant_id=doc["tenant_id"], user_id=doc["user_id"], kind=doc["kind"],
                 name=doc.get("name"), roles=list(roles) if roles is not None else None,
                 **{key: unix_seconds(doc.get(key)) for key in _TOKEN_TIMES})


def _role_out(doc: dict) -> Role:
    return Role(tenant_id=doc["tenant_id"], name=doc["name"], description=doc.get("description", ""),
                grants=grants_from(doc.get("grants")), created_ts=unix_seconds(doc["created_ts"]),
                updated_ts=unix_seconds(doc["updated_ts"]))


class MongoUseradmStore(UseradmStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def _users(self):
        return self._db.db[USERS]

    @property
    def _tokens(self):
        return self._db.db[TOKENS]

    @property
    def _settings(self):
        return self._db.db[SETTINGS]

    # users ------------------------------------------------------------------
    def insert_user(self, user: User) -> None:
        doc = {"_id": user.id, "tenant_id": user.tenant_id, "email": user.email,
               "password_hash": user.password_hash, "roles": list(user.roles)}
        for key in _USER_TIMES:
            if getattr(user, key) is not None:
                doc[key] = utc_datetime(getattr(user, key))
        try:
            self._users.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("user with the same email already exists") from None

    def get_user(self, tenant: str, user_id: str) -> User | None:
        return _user_out(self._users.find_one({"_id": user_id, "tenant_id": tenant}))

    def get_user_by_email(self, tenant: str, email: str) -> User | None:
        return _user_out(self._users.find_one({"tenant_id": tenant, "email": email}))

    def find_login_candidates(self, email: str, limit: int) -> list[User]:
        cursor = self._users.find({"email": email}).sort([("created_ts", 1), ("_id", 1)]).limit(limit)
        return [_user_out(d) for d in cursor]

    def list_users(self, tenant: str | None, *, ids: Sequence[str] = (), emails: Sequence[str] = (),
                   created_after=None, created_before=None, updated_after=None, updated_before=None,
                   skip: int = 0, limit: int = 20) -> tuple[list[User], int]:
        query: dict = {"tenant_id": tenant} if tenant is not None else {}
        if ids:
            query["_id"] = {"$in": list(ids)}
        if emails:
            query["email"] = {"$in": list(emails)}
        for field, op, value in (("created_ts", "$gt", created_after), ("created_ts", "$lt", created_before),
                                 ("updated_ts", "$gt", updated_after), ("updated_ts", "$lt", updated_before)):
            if value is not None:
                query.setdefault(field, {})[op] = utc_datetime(value)
        total = self._users.count_documents(query)
        cursor = self._users.find(query).sort([("created_ts", 1), ("_id", 1)]).skip(skip).limit(limit)
        return [_user_out(d) for d in cursor], total

    def update_user(self, tenant: str, user_id: str, fields: dict) -> bool:
        allowed = {"email", "password_hash", "updated_ts", "login_ts", "roles"}
        assert fields and set(fields) <= allowed, fields
        update = {k: (utc_datetime(v) if k in _USER_TIMES else list(v) if k == "roles" else v)
                  for k, v in fields.items()}
        try:
            result = self._users.update_one({"_id": user_id, "tenant_id": tenant}, {"$set": update})
        except DuplicateKeyError:
            raise Conflict("user with the same email already exists") from None
        return result.matched_count > 0

    def delete_user(self, tenant: str, user_id: str) -> bool:
        # user last: a token row whose user is gone is refused by get_live_token anyway
        self._tokens.delete_many({"tenant_id": tenant, "user_id": user_id})
        self._settings.delete_many({"tenant_id": tenant, "user_id": user_id})
        return self._users.delete_one({"_id": user_id, "tenant_id": tenant}).deleted_count > 0

    def count_role_holders(self, tenant: str, role: str) -> int:
        return self._users.count_documents({"tenant_id": tenant, "roles": role})

    def delete_tenant(self, tenant: str) -> None:
        # users last: a token whose user is gone is refused by get_live_token anyway
        self._tokens.delete_many({"tenant_id": tenant})
        self._settings.delete_many({"tenant_id": tenant})
        self._db.db[ROLES].delete_many({"tenant_id": tenant})
        self._users.delete_many({"tenant_id": tenant})

    def any_user(self) -> bool:
        return self._users.find_one({}, {"_id": 1}) is not None

    # tokens -----------------------------------------------------------------
    def insert_token(self, token: Token) -> None:
        doc = {"_id": token.id, "tenant_id": token.tenant_id, "user_id": token.user_id, "kind": token.kind}
        if token.name is not None:
            doc["name"] = token.name
        if token.roles is not None:
            doc["roles"] = list(token.roles)
        for key in _TOKEN_TIMES:
            if getattr(token, key) is not None:
                doc[key] = utc_datetime(getattr(token, key))
        try:
            self._tokens.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("Personal Access Token with the same name already exists") from None

    def get_live_token(self, tenant: str, token_id: str, user_id: str) -> Token | None:
        found = self.get_live_token_and_roles(tenant, token_id, user_id)
        return found[0] if found else None

    def get_live_token_and_roles(self, tenant: str, token_id: str, user_id: str) -> tuple[Token, list[str]] | None:
        doc = self._tokens.find_one({"_id": token_id, "tenant_id": tenant, "user_id": user_id})
        if doc is None:
            return None
        user = self._users.find_one({"_id": user_id, "tenant_id": tenant}, {"_id": 1, "roles": 1})
        if user is None:
            return None
        return _token_out(doc), list(user.get("roles", [PERMIT_ALL]))

    def list_tokens(self, tenant: str, user_id: str, kind: str) -> list[Token]:
        cursor = self._tokens.find({"tenant_id": tenant, "user_id": user_id, "kind": kind}).sort(
            [("created_ts", 1), ("_id", 1)])
        return [_token_out(d) for d in cursor]

    def count_tokens(self, tenant: str, user_id: str, kind: str) -> int:
        return self._tokens.count_documents({"tenant_id": tenant, "user_id": user_id, "kind": kind})

    def delete_token(self, tenant: str, token_id: str, user_id: str | None = None,
                     kind: str | None = None) -> bool:
        query = {"_id": token_id, "tenant_id": tenant}
        if user_id is not None:
            query["user_id"] = user_id
        if kind is not None:
            query["kind"] = kind
        return self._tokens.delete_one(query).deleted_count > 0

    def delete_user_tokens(self, tenant: str, user_id: str | None = None, *,
                           except_id: str | None = None, kind: str | None = None) -> int:
        query: dict = {"tenant_id": tenant}
        if user_id is not None:
            query["user_id"] = user_id
        if except_id is not None:
            query["_id"] = {"$ne": except_id}
        if kind is not None:
            query["kind"] = kind
        return self._tokens.delete_many(query).deleted_count

    def trim_sessions(self, tenant: str, user_id: str, keep: int) -> int:
        stale = [d["_id"] for d in self._tokens.find(
            {"tenant_id": tenant, "user_id": user_id, "kind": SESSION}, {"_id": 1}).sort(
            [("created_ts", pymongo.DESCENDING), ("_id", pymongo.DESCENDING)]).skip(keep)]
        if not stale:
            return 0
        return self._tokens.delete_many({"tenant_id": tenant, "_id": {"$in": stale}}).deleted_count

    def touch_token(self, tenant: str, token_id: str, ts: float) -> None:
        self._tokens.update_one({"_id": token_id, "tenant_id": tenant}, {"$set": {"last_used": utc_datetime(ts)}})

    # custom roles -------------------------------------------------------------
    @property
    def _roles(self):
        return self._db.db[ROLES]

    def insert_role(self, role: Role) -> None:
        try:
            self._roles.insert_one({"tenant_id": role.tenant_id, "name": role.name, "description": role.description,
                                    "grants": grants_json(role.grants), "created_ts": utc_datetime(role.created_ts),
                                    "updated_ts": utc_datetime(role.updated_ts)})
        except DuplicateKeyError:
            raise Conflict("role with the same name already exists") from None

    def get_roles(self, tenant: str, names: Sequence[str] | None = None) -> list[Role]:
        query: dict = {"tenant_id": tenant}
        if names is not None:
            if not names:
                return []
            query["name"] = {"$in": list(names)}
        return [_role_out(d) for d in self._roles.find(query).sort("name", 1)]

    def update_role(self, role: Role) -> bool:
        return self._roles.update_one({"tenant_id": role.tenant_id, "name": role.name},
                                      {"$set": {"description": role.description, "grants": grants_json(role.grants),
                                                "updated_ts": utc_datetime(role.updated_ts)}}).matched_count > 0

    def delete_role(self, tenant: str, name: str) -> bool:
        return self._roles.delete_one({"tenant_id": tenant, "name": name}).deleted_count > 0

    # settings ---------------------------------------------------------------
    def get_settings(self, tenant: str, user_id: str) -> tuple[dict, str] | None:
        doc = self._settings.find_one({"tenant_id": tenant, "user_id": user_id})
        return (json.loads(doc["data"]), doc["etag"]) if doc else None

    def put_settings(self, tenant: str, user_id: str, data: dict, etag: str,
                     if_match: str | None) -> None:
        # kept as JSON text: settings keys may be anything ("$x", "a.b"), and are never queried
        update = {"$set": {"data": json.dumps(data, separators=(",", ":")), "etag": etag}}
        if if_match is None:
            try:
                self._settings.update_one({"tenant_id": tenant, "user_id": user_id}, update, upsert=True)
            except DuplicateKeyError:  # a concurrent first write won; last writer wins, as without If-Match
                self._settings.update_one({"tenant_id": tenant, "user_id": user_id}, update)
            return
        result = self._settings.update_one({"tenant_id": tenant, "user_id": user_id, "etag": if_match}, update)
        if result.matched_count == 0:
            raise PreconditionFailed("ETag doesn't match")

    # rate limits ------------------------------------------------------------
    @property
    def _rates(self):
        return self._db.db[RATE_LIMITS]

    def rate_hit(self, key: str, amount: int, window: float, now: float) -> int:
        now_dt = utc_datetime(now)
        for _ in range(10):
            doc = self._rates.find_one_and_update({"_id": key, "expires_at": {"$gt": now_dt}},
                                                  {"$inc": {"count": amount}},
                                                  return_document=pymongo.ReturnDocument.AFTER)
            if doc is not None:
                return int(doc["count"])
            fresh = {"count": amount, "expires_at": utc_datetime(now + window)}
            if self._rates.find_one_and_update({"_id": key, "expires_at": {"$lte": now_dt}},
                                               {"$set": fresh}) is not None:
                return amount
            try:
                self._rates.insert_one({"_id": key, **fresh})
                return amount
            except DuplicateKeyError:  # another process started the window: count in it
                continue
        raise RuntimeError("rate limit counter contended")  # pragma: no cover

    def rate_get(self, key: str, now: float) -> tuple[int, float] | None:
        doc = self._rates.find_one({"_id": key, "expires_at": {"$gt": utc_datetime(now)}})
        return (int(doc["count"]), unix_seconds(doc["expires_at"])) if doc else None

    def rate_clear(self, key: str) -> None:
        self._rates.delete_one({"_id": key})

    def rate_reset(self) -> int:
        return self._rates.delete_many({}).deleted_count
