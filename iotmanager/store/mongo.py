"""MongoDB implementation of the iotmanager store (collections prefixed `iotmanager_`).

MongoDB has no transaction here: an event is written right after the change it reports (the
caller's writes are already done), in three steps that each stand alone — the sequence number
(`$inc` on the organization's counter), the event, its deliveries — and then the integrations are
made due (`$min`). A crash between steps loses at most that event, or leaves deliveries that the
worker finds and delivers, or fails as orphans.

Claims are `find_one_and_update` with the due-and-unleased condition in the filter: atomic on a
MongoDB (the concurrent-claim tests run on SQLite and, with TEST_MONGO_URL, on a real MongoDB;
the test stand-in for MongoDB runs them one after the other, as it does not apply the filter and
the update atomically).
"""

from __future__ import annotations

from datetime import datetime, timezone

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from common.clock import unix_seconds, utc_datetime
from common.errors import Conflict
from iotmanager.model import FAILED, PENDING, PROVIDER_WEBHOOK, Attempt, Claim, Delivery, Event, HTTPCredentials, Integration
from iotmanager.store import (IotManagerStore, attempt_doc, attempt_from, credentials_doc,
                              credentials_from)

INTEGRATIONS = "iotmanager_integrations"
EVENTS = "iotmanager_events"
DELIVERIES = "iotmanager_deliveries"
COUNTERS = "iotmanager_counters"

REMOVED = "integration removed"
# `next_due` of an integration with nothing queued: later than any time ($min with null would
# keep null, so "unset" is a date in the far future).
IDLE = datetime(9999, 12, 31, tzinfo=timezone.utc)
FREE = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _v1_indexes(db) -> None:
    db[INTEGRATIONS].create_index([("tenant_id", ASCENDING), ("created_ts", ASCENDING), ("_id", ASCENDING)],
                                  name="tenant_created")
    db[INTEGRATIONS].create_index([("next_due", ASCENDING)], name="next_due")
    db[EVENTS].create_index([("tenant_id", ASCENDING), ("seq", DESCENDING)], name="tenant_seq")
    db[EVENTS].create_index([("expire_ts", ASCENDING)], expireAfterSeconds=0, name="expire_ttl")
    db[DELIVERIES].create_index([("tenant_id", ASCENDING), ("integration_id", ASCENDING), ("state", ASCENDING),
                                 ("seq", ASCENDING)], name="queue")
    db[DELIVERIES].create_index([("tenant_id", ASCENDING), ("integration_id", ASCENDING), ("seq", DESCENDING)],
                                name="tenant_integration_seq")
    db[DELIVERIES].create_index([("tenant_id", ASCENDING), ("event_id", ASCENDING)], name="tenant_event")
    db[DELIVERIES].create_index([("state", ASCENDING), ("deadline", ASCENDING)], name="state_deadline")
    db[DELIVERIES].create_index([("expire_ts", ASCENDING)], expireAfterSeconds=0, name="expire_ttl")


MIGRATIONS = [_v1_indexes]


_dt = utc_datetime
_ts = unix_seconds


def _integration(doc: dict | None) -> Integration | None:
    if doc is None:
        return None
    return Integration(id=doc["_id"], tenant_id=doc["tenant_id"], provider=doc["provider"],
                       credentials=credentials_from(doc["credentials"]), description=doc.get("description", ""),
                       created_ts=_ts(doc["created_ts"]))


def _delivery(doc: dict, body: str | None = None) -> Delivery:
    return Delivery(tenant_id=doc["tenant_id"], event_id=doc["event_id"], integration_id=doc["integration_id"],
                    seq=doc["seq"], state=doc["state"], next_attempt_ts=_ts(doc["next_attempt"]),
                    deadline_ts=_ts(doc["deadline"]), attempts=[attempt_from(a) for a in doc.get("attempts", [])],
                    attempt_count=doc.get("attempt_count", 0), error=doc.get("error"), body=body)


class MongoIotManagerStore(IotManagerStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._database = db

    @property
    def _db(self):
        return self._database.db

    # integrations -----------------------------------------------------------
    def insert_integration(self, integration: Integration, limit: int) -> None:
        # count, then insert: concurrent creations can pass the limit by their number at most
        if self._db[INTEGRATIONS].count_documents({"tenant_id": integration.tenant_id}) >= limit:
            raise Conflict(f"an organization has at most {limit} integrations")
        try:
            self._db[INTEGRATIONS].insert_one({
                "_id": integration.id, "tenant_id": integration.tenant_id, "provider": integration.provider,
                "credentials": credentials_doc(integration.credentials), "description": integration.description,
                "created_ts": _dt(integration.created_ts), "next_due": IDLE, "lease_owner": None,
                "lease_until": FREE})
        except DuplicateKeyError:
            raise Conflict("integration already exists") from None

    def get_integration(self, tenant: str, integration_id: str) -> Integration | None:
        return _integration(self._db[INTEGRATIONS].find_one({"_id": integration_id, "tenant_id": tenant}))

    def list_integrations(self, tenant: str, skip: int = 0, limit: int = 20) -> list[Integration]:
        cursor = self._db[INTEGRATIONS].find({"tenant_id": tenant}).sort(
            [("created_ts", ASCENDING), ("_id", ASCENDING)]).skip(skip).limit(limit)
        return [_integration(d) for d in cursor]

    def count_integrations(self, tenant: str) -> int:
        return self._db[INTEGRATIONS].count_documents({"tenant_id": tenant})

    def set_credentials(self, tenant: str, integration_id: str, credentials: HTTPCredentials) -> bool:
        res = self._db[INTEGRATIONS].update_one({"_id": integration_id, "tenant_id": tenant},
                                                {"$set": {"credentials": credentials_doc(credentials)}})
        return res.matched_count > 0

    def delete_integration(self, tenant: str, integration_id: str, now: float) -> bool:
        res = self._db[INTEGRATIONS].delete_one({"_id": integration_id, "tenant_id": tenant})
        if res.deleted_count == 0:
            return False
        self._db[DELIVERIES].update_many(
            {"tenant_id": tenant, "integration_id": integration_id, "state": PENDING},
            {"$set": {"state": FAILED, "error": REMOVED}})
        return True

    # events -------------------------------------------------------------------
    def webhook_ids(self, tenant: str) -> list[str]:
        cursor = self._db[INTEGRATIONS].find({"tenant_id": tenant, "provider": PROVIDER_WEBHOOK}, {"_id": 1}).sort(
            [("created_ts", ASCENDING), ("_id", ASCENDING)])
        return [d["_id"] for d in cursor]

    def enqueue(self, event: Event, integration_ids: list[str], now: float, deadline: float,
                expire: float) -> list[str]:
        if not integration_ids:
            return []
        tenant = event.tenant_id
        present = {d["_id"] for d in self._db[INTEGRATIONS].find(
            {"tenant_id": tenant, "_id": {"$in": integration_ids}}, {"_id": 1})}
        ids = [i for i in integration_ids if i in present]
        if not ids:
            return []
        seq = self._db[COUNTERS].find_one_and_update({"_id": tenant}, {"$inc": {"seq": 1}}, upsert=True,
                                                     return_document=ReturnDocument.AFTER)["seq"]
        expire_dt = _dt(expire)
        self._db[EVENTS].insert_one({"_id": event.id, "tenant_id": tenant, "seq": seq, "type": event.type,
                                     "time": _dt(event.time), "body": event.body, "expire_ts": expire_dt})
        self._db[DELIVERIES].insert_many([
            {"_id": f"{event.id}:{i}", "tenant_id": tenant, "event_id": event.id, "integration_id": i, "seq": seq,
             "state": PENDING, "next_attempt": _dt(now), "deadline": _dt(deadline), "attempts": [],
             "attempt_count": 0, "error": None, "expire_ts": expire_dt} for i in ids])
        self._db[INTEGRATIONS].update_many({"tenant_id": tenant, "_id": {"$in": ids}},
                                           {"$min": {"next_due": _dt(now)}})
        return ids

    def list_events(self, tenant: str, integration_id: str | None = None, skip: int = 0,
                    limit: int = 20) -> list[Event]:
        if integration_id is None:
            docs = list(self._db[EVENTS].find({"tenant_id": tenant}).sort([("seq", DESCENDING)]).skip(skip).limit(limit))
        else:
            order = [d["event_id"] for d in self._db[DELIVERIES].find(
                {"tenant_id": tenant, "integration_id": integration_id}, {"event_id": 1}).sort(
                [("seq", DESCENDING)]).skip(skip).limit(limit)]
            by_id = {d["_id"]: d for d in self._db[EVENTS].find({"tenant_id": tenant, "_id": {"$in": order}})}
            docs = [by_id[i] for i in order if i in by_id]
        events = {d["_id"]: Event(id=d["_id"], tenant_id=d["tenant_id"], type=d["type"], time=_ts(d["time"]),
                                  body=d["body"]) for d in docs}
        if events:
            cursor = self._db[DELIVERIES].find({"tenant_id": tenant, "event_id": {"$in": list(events)}}).sort(
                [("seq", ASCENDING), ("integration_id", ASCENDING)])
            for doc in cursor:
                events[doc["event_id"]].deliveries.append(_delivery(doc))
        return list(events.values())

    # the delivery queue --------------------------------------------------------------
    def has_integrations(self) -> bool:
        return self._db[INTEGRATIONS].find_one({}, {"_id": 1}) is not None

    def claim(self, owner: str, now: float, lease_until: float) -> Claim | None:
        now_dt = _dt(now)
        doc = self._db[INTEGRATIONS].find_one_and_update(
            {"next_due": {"$lte": now_dt}, "lease_until": {"$lt": now_dt}},
            {"$set": {"lease_owner": owner, "lease_until": _dt(lease_until)}},
            sort=[("next_due", ASCENDING)], projection={"tenant_id": 1}, return_document=ReturnDocument.AFTER)
        if doc is None:
            return None
        return Claim(tenant_id=doc["tenant_id"], integration_id=doc["_id"], owner=owner, lease_until=lease_until)

    def _held(self, claim: Claim) -> dict:
        return {"_id": claim.integration_id, "tenant_id": claim.tenant_id, "lease_owner": claim.owner}

    def renew(self, claim: Claim, lease_until: float) -> bool:
        res = self._db[INTEGRATIONS].update_one(self._held(claim), {"$set": {"lease_until": _dt(lease_until)}})
        if res.matched_count:
            claim.lease_until = lease_until
        return res.matched_count > 0

    def release(self, claim: Claim, next_due: float | None) -> None:
        update: dict = {"lease_owner": None, "lease_until": FREE}
        if next_due is not None:
            update["next_due"] = _dt(next_due)
        self._db[INTEGRATIONS].update_one(self._held(claim), {"$set": update})

    def set_idle(self, claim: Claim) -> None:
        self._db[INTEGRATIONS].update_one(self._held(claim), {"$set": {"next_due": IDLE}})

    def queue_head(self, tenant: str, integration_id: str) -> Delivery | None:
        doc = self._db[DELIVERIES].find_one({"tenant_id": tenant, "integration_id": integration_id, "state": PENDING},
                                            sort=[("seq", ASCENDING)])
        if doc is None:
            return None
        event = self._db[EVENTS].find_one({"_id": doc["event_id"], "tenant_id": tenant}, {"body": 1})
        if event is None:  # expired under it: nothing left to send
            self._db[DELIVERIES].delete_one({"_id": doc["_id"]})
            return self.queue_head(tenant, integration_id)
        return _delivery(doc, event["body"])

    def record_attempt(self, delivery: Delivery, attempt: Attempt, state: str, next_attempt_ts: float,
                       keep: int) -> bool:
        res = self._db[DELIVERIES].update_one(
            {"_id": f"{delivery.event_id}:{delivery.integration_id}", "tenant_id": delivery.tenant_id,
             "state": PENDING, "attempt_count": delivery.attempt_count},
            {"$push": {"attempts": {"$each": [attempt_doc(attempt)], "$slice": -keep}},
             "$inc": {"attempt_count": 1},
             "$set": {"state": state, "next_attempt": _dt(next_attempt_ts)}})
        return res.matched_count > 0

    def fail_orphans(self, before: float, limit: int) -> int:
        candidates = list(self._db[DELIVERIES].find({"state": PENDING, "deadline": {"$lt": _dt(before)}},
                                                    {"tenant_id": 1, "integration_id": 1}).limit(limit))
        keys = {(d["tenant_id"], d["integration_id"]) for d in candidates}
        existing = {(d["tenant_id"], d["_id"]) for d in self._db[INTEGRATIONS].find(
            {"_id": {"$in": [k[1] for k in keys]}}, {"tenant_id": 1})}
        orphans = [d["_id"] for d in candidates if (d["tenant_id"], d["integration_id"]) not in existing]
        if not orphans:
            return 0
        res = self._db[DELIVERIES].update_many({"_id": {"$in": orphans}, "state": PENDING},
                                               {"$set": {"state": FAILED, "error": REMOVED}})
        return res.modified_count

    def prune(self, now: float, limit: int) -> int:
        # the TTL indexes do this on a real MongoDB; done here too, so the rule holds on any server
        expired = [d["_id"] for d in self._db[EVENTS].find({"expire_ts": {"$lt": _dt(now)}}, {"_id": 1}).limit(limit)]
        if not expired:
            return 0
        self._db[DELIVERIES].delete_many({"event_id": {"$in": expired}})
        return self._db[EVENTS].delete_many({"_id": {"$in": expired}}).deleted_count

    # organizations --------------------------------------------------------------
    def delete_tenant(self, tenant: str) -> None:
        self._db[DELIVERIES].delete_many({"tenant_id": tenant})
        self._db[EVENTS].delete_many({"tenant_id": tenant})
        self._db[INTEGRATIONS].delete_many({"tenant_id": tenant})
        self._db[COUNTERS].delete_one({"_id": tenant})
