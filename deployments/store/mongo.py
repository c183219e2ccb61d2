"""Deployments store on MongoDB: counters move with atomic `$inc`, status changes are
conditional updates, and every hot query has an index."""

from __future__ import annotations

import uuid
from dataclasses import asdict, fields, replace

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from deployments import model as m
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment, MaintenanceWindow, Phase
from deployments.store import (ASSIGNED, EXISTS, FINISHED, NO_SLOT, DeploymentQuery, DeploymentsStore,
                               DuplicateDeployment)

DEPLOYMENTS = "deployments"
TARGETS = "deployment_targets"
DEVICE_DEPLOYMENTS = "device_deployments"
LOGS = "deployment_logs"
EVENTS = "deployment_events"

_ACTIVE = sorted(m.ACTIVE)
_TERMINAL = sorted(m.TERMINAL)


def _m1_indexes(db) -> None:
    d = db[DEPLOYMENTS]
    d.create_index([("tenant_id", ASCENDING), ("created", DESCENDING)], name="tenant_created")
    d.create_index([("tenant_id", ASCENDING), ("status", ASCENDING), ("created", ASCENDING)], name="tenant_status")
    d.create_index([("tenant_id", ASCENDING), ("artifact_name", ASCENDING), ("status", ASCENDING)],
                   name="tenant_artifact")
    d.create_index([("tenant_id", ASCENDING), ("dynamic", ASCENDING), ("status", ASCENDING),
                    ("created", ASCENDING)], name="tenant_dynamic")
    # an identical unfinished deployment is a conflict: the checksum is unset once it finishes
    d.create_index([("tenant_id", ASCENDING), ("active_checksum", ASCENDING)], name="tenant_active_checksum",
                   unique=True, partialFilterExpression={"active_checksum": {"$type": "string"}})
    t = db[TARGETS]
    t.create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING), ("device_id", ASCENDING)],
                   name="tenant_deployment_device", unique=True)
    t.create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("active", ASCENDING),
                    ("created", ASCENDING)], name="tenant_device_active_created")
    dd = db[DEVICE_DEPLOYMENTS]
    dd.create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING), ("device_id", ASCENDING)],
                    name="tenant_deployment_device", unique=True)
    dd.create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("status", ASCENDING),
                     ("created", ASCENDING)], name="tenant_device_status_created")
    dd.create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("created", DESCENDING)],
                    name="tenant_device_created")
    dd.create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING), ("status", ASCENDING)],
                    name="tenant_deployment_status")
    dd.create_index([("tenant_id", ASCENDING), ("artifact_id", ASCENDING), ("status", ASCENDING)],
                    name="tenant_artifact_status")
    db[LOGS].create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING), ("device_id", ASCENDING)],
                          name="tenant_deployment_device", unique=True)


def _m2_rollout(db) -> None:
    db[EVENTS].create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING), ("seq", ASCENDING)],
                            name="tenant_deployment_seq")
    # the failure insight's sample: devices of one outcome in device-deployment id order, from the index
    db[DEVICE_DEPLOYMENTS].create_index([("tenant_id", ASCENDING), ("deployment_id", ASCENDING),
                                         ("status", ASCENDING), ("_id", ASCENDING)], name="tenant_deployment_status_id")


def _m3_history_index(db) -> None:
    """The poll's history read (a device's newest device deployments, newest first, ties by id)
    is an index range in sort order: no in-memory SORT stage."""
    db[DEVICE_DEPLOYMENTS].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING), ("created", DESCENDING),
                                         ("_id", DESCENDING)], name="tenant_device_created_id")


def _m4_pending_inc_index(db) -> None:
    """A poll reads the device deployments of the device that a crash left owing their deployment
    a counter change (poll_device_deployments) from an index of those alone: none, but for crashes."""
    db[DEVICE_DEPLOYMENTS].create_index([("tenant_id", ASCENDING), ("device_id", ASCENDING)],
                                        name="tenant_device_pending_inc",
                                        partialFilterExpression={"pending_inc": {"$exists": True}})


MIGRATIONS = [_m1_indexes, _m2_rollout, _m3_history_index, _m4_pending_inc_index]


def _failed_filter(failed_at_least) -> dict:
    """The filter for "the phase's failed count is at least n" (the crossing a threshold decides on)."""
    if failed_at_least is None:
        return {}
    phase, n = failed_at_least
    return {f"stats.{m.FAILURE}" if phase is None else f"phases.{phase}.failed": {"$gte": n}}


def _slot_conditions(deployment: Deployment, phase: int | None) -> dict:
    query = {}
    if deployment.dynamic and deployment.max_devices:
        query["slots_left"] = {"$gt": 0}
    if phase is not None and deployment.phases[phase].device_limit is not None:
        query[f"phases.{phase}.slots_left"] = {"$gt": 0}
    return query


def _slot_counts(deployment: Deployment, phase: int | None, delta: int) -> dict:
    """The `$inc` that counts a device into (delta 1) or out of (-1) the deployment and its phase."""
    inc = {"device_count": delta}
    if deployment.dynamic and deployment.max_devices:
        inc["slots_left"] = -delta
    if phase is not None:
        inc[f"phases.{phase}.device_count"] = delta
        if deployment.phases[phase].device_limit is not None:
            inc[f"phases.{phase}.slots_left"] = -delta
    return inc


_DEPLOYMENT_FIELDS = tuple(f.name for f in fields(Deployment))
_PHASE_FIELDS = tuple(f.name for f in fields(Phase))


def _dep(doc: dict | None) -> Deployment | None:
    """A stored deployment as a record (without the store's own fields: active_checksum, slots_left)."""
    if doc is None:
        return None
    out = {k: doc[k] for k in _DEPLOYMENT_FIELDS
           if k in doc and k not in ("phases", "assigning", "stats", "window")}
    stats = {s: 0 for s in m.DEVICE_STATUSES}
    stats.update(doc.get("stats") or {})
    window = doc.get("window")
    return Deployment(id=doc["_id"], stats=stats, assigning=[c["device_id"] for c in doc.get("assigning") or []],
                      window=MaintenanceWindow(**window) if window else None,
                      phases=[Phase(**{k: p[k] for k in _PHASE_FIELDS if k in p}) for p in doc.get("phases") or []],
                      **{k: v for k, v in out.items() if k != "id"})


def _dd(doc: dict | None) -> DeviceDeployment | None:
    if doc is None:
        return None
    out = dict(doc)
    out["id"] = out.pop("_id")
    out.pop("pending_inc", None)
    return DeviceDeployment(**out)


def _dd_doc(dd: DeviceDeployment) -> dict:
    doc = asdict(dd)
    doc["_id"] = doc.pop("id")
    return doc


class MongoDeploymentsStore(DeploymentsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self._db = db

    @property
    def deployments(self):
        return self._db.db[DEPLOYMENTS]

    @property
    def targets(self):
        return self._db.db[TARGETS]

    @property
    def dds(self):
        return self._db.db[DEVICE_DEPLOYMENTS]

    @property
    def logs(self):
        return self._db.db[LOGS]

    # ------------------------------------------------------------------ deployments
    def insert_deployment(self, deployment, targets):
        doc = asdict(deployment)
        doc["_id"] = doc.pop("id")
        doc["active_checksum"] = doc["checksum"]
        if doc["dynamic"] and doc["max_devices"]:
            doc["slots_left"] = doc["max_devices"]
        for p in doc["phases"]:
            p["slots_left"] = p["device_limit"]
        doc["assigning"] = []
        # The targets first, then the deployment: a crash in between leaves targets of a deployment
        # that does not exist (no device is offered it, candidate_static_deployments skips them),
        # never a deployment without its targets, which no device could finish and whose
        # checksum would refuse the operator's retry as a duplicate.
        if targets:
            batch = []
            for device_id in targets:
                batch.append({"tenant_id": doc["tenant_id"], "deployment_id": doc["_id"], "device_id": device_id,
                              "created": doc["created"], "active": True})
                if len(batch) == 1000:
                    self.targets.insert_many(batch, ordered=False)
                    batch = []
            if batch:
                self.targets.insert_many(batch, ordered=False)
        try:
            self.deployments.insert_one(doc)
        except DuplicateKeyError:
            self.targets.delete_many({"tenant_id": doc["tenant_id"], "deployment_id": doc["_id"]})
            raise DuplicateDeployment() from None

    def get_deployment(self, tenant, deployment_id, *, counts=True):
        return _dep(self.deployments.find_one({"_id": deployment_id, "tenant_id": tenant}))

    def get_deployments(self, tenant, deployment_ids):
        if not deployment_ids:
            return []
        return [_dep(d) for d in self.deployments.find({"_id": {"$in": list(deployment_ids)}, "tenant_id": tenant})]

    def find_deployments(self, tenant, q: DeploymentQuery):
        import re
        query: dict = {"tenant_id": tenant}
        if q.status == m.DEPLOYMENT_SCHEDULED:
            query.update(status="pending", start_ts={"$gt": q.now})
        elif q.status == m.DEPLOYMENT_PENDING:
            query["status"] = "pending"
            query["$or"] = [{"start_ts": None}, {"start_ts": {"$lte": q.now}}]
        elif q.status:
            query["status"] = q.status
        if q.type == m.SOFTWARE:  # deployments stored before types were recorded are software
            query["type"] = {"$in": [m.SOFTWARE, None]}
        elif q.type:
            query["type"] = q.type
        if q.search:
            pattern = re.compile(re.escape(q.search), re.IGNORECASE)
            query.setdefault("$and", []).append({"$or": [{"name": pattern}, {"artifact_name": pattern}]})
        if q.ids:
            query["_id"] = {"$in": q.ids}
        if q.names:
            query["name"] = {"$in": q.names}
        created = {}
        if q.created_before is not None:
            created["$lte"] = q.created_before
        if q.created_after is not None:
            created["$gte"] = q.created_after
        if created:
            query["created"] = created
        total = self.deployments.count_documents(query)
        order = DESCENDING if q.sort_desc else ASCENDING
        cursor = self.deployments.find(query).sort([("created", order), ("_id", order)]).skip(q.skip).limit(q.limit)
        return [_dep(d) for d in cursor], total

    def deployment_device_ids(self, tenant, deployment_id, skip, limit):
        cursor = self.targets.find({"tenant_id": tenant, "deployment_id": deployment_id}, {"device_id": 1})
        ids = [d["device_id"] for d in cursor.sort("device_id", ASCENDING).skip(skip).limit(limit)]
        if not ids:
            cursor = self.dds.find({"tenant_id": tenant, "deployment_id": deployment_id}, {"device_id": 1})
            ids = [d["device_id"] for d in cursor.sort("device_id", ASCENDING).skip(skip).limit(limit)]
        return ids

    def unfinished_deployment_with_artifact(self, tenant, artifact_name):
        return self.deployments.find_one({"tenant_id": tenant, "artifact_name": artifact_name,
                                          "status": {"$ne": m.DEPLOYMENT_FINISHED}}, {"_id": 1}) is not None

    def assign_device(self, tenant, deployment, phase, dd, size=0):
        # Three conditional steps, each atomic on one document, each safe to repeat: (1) claim the
        # slot and note the assignment in the deployment; (2) insert the device deployment under
        # the noted id; (3) settle the note (and count the device pending on a dynamic deployment).
        # A crash between them leaves the note; the device's next poll calls this again and resumes.
        deployment_id, device_id = deployment.id, dd.device_id
        key = {"_id": deployment_id, "tenant_id": tenant}
        # (the artifact's size is counted with the slot, and noted, so that an undo takes it back)
        claim = {"device_id": device_id, "dd_id": dd.id, "phase": phase, "size": size}
        query = {**key, "status": {"$ne": m.DEPLOYMENT_FINISHED}, "paused": {"$ne": True},
                 "assigning.device_id": {"$ne": device_id}}
        query.update(_slot_conditions(deployment, phase))
        if self.deployments.update_one(query, {"$inc": {**_slot_counts(deployment, phase, 1), "total_size": size},
                                               "$push": {"assigning": claim}}).modified_count != 1:
            doc = self.deployments.find_one({**key, "assigning.device_id": device_id}, {"assigning": 1})
            if doc is None:
                existing = self.get_device_deployment(tenant, deployment_id, device_id)
                return (NO_SLOT, None) if existing is None else (EXISTS, existing)
            claim = next(c for c in doc["assigning"] if c["device_id"] == device_id)  # resume it
            dd = replace(dd, id=claim["dd_id"], phase=claim["phase"])
        try:
            self.dds.insert_one(_dd_doc(dd))
        except DuplicateKeyError:
            existing = self.get_device_deployment(tenant, deployment_id, device_id)
            if existing is None or existing.id != dd.id:  # the device had one already: undo the claim
                self.deployments.update_one({**key, "assigning.dd_id": dd.id},
                                            {"$pull": {"assigning": {"dd_id": dd.id}},
                                             "$inc": {**_slot_counts(deployment, claim["phase"], -1),
                                                      "total_size": -claim.get("size", 0)}})
                return EXISTS, existing
            dd = existing  # inserted by the interrupted (or a concurrent) run of this assignment
        settle: dict = {"$pull": {"assigning": {"dd_id": dd.id}}}
        if deployment.dynamic:
            settle["$inc"] = {f"stats.{m.PENDING}": 1}
        after = self.deployments.find_one_and_update({**key, "assigning.dd_id": dd.id}, settle,
                                                     projection={"status": 1})
        if after is None:  # settled by a concurrent run
            after = self.deployments.find_one(key, {"status": 1}) or {}
        return (FINISHED if after.get("status") == m.DEPLOYMENT_FINISHED else ASSIGNED), dd

    def assign_artifact(self, tenant, dd, artifact_id, device_type, size):
        # two documents: a crash between the updates leaves total_size short by this artifact
        if self.dds.update_one({"_id": dd.id, "tenant_id": tenant, "status": dd.status, "artifact_id": None},
                               {"$set": {"artifact_id": artifact_id, "device_type": device_type}}).modified_count != 1:
            return False
        if size:
            self.deployments.update_one({"_id": dd.deployment_id, "tenant_id": tenant},
                                        {"$inc": {"total_size": size}})
        return True

    def adjust_stats(self, tenant, deployment_id, changes, retry_pending=0, total_size=0, fetch=True,
                     phase=None, phase_outcomes=None):
        # find_one_and_update returns the document at no extra cost: `fetch` changes nothing here;
        # the document returned is the one this update produced (the threshold decisions rely on it).
        # Not on an aborted deployment: its abort counts the statistics again from the device
        # deployments once it has closed them (_close_aborted), and a device's move that landed
        # before that close is in the count; adding its delta too would count it twice.
        inc = {f"stats.{s}": d for s, d in changes.items() if d}
        if phase is not None:
            inc.update({f"phases.{phase}.{k}": d for k, d in (phase_outcomes or {}).items() if d})
        if retry_pending:
            inc["retry_pending"] = retry_pending
        if total_size:
            inc["total_size"] = total_size
        if not inc:
            return self.get_deployment(tenant, deployment_id)
        doc = self.deployments.find_one_and_update({"_id": deployment_id, "tenant_id": tenant,
                                                    "aborted": {"$ne": True}}, {"$inc": inc},
                                                   return_document=ReturnDocument.AFTER)
        return _dep(doc) if doc is not None else self.get_deployment(tenant, deployment_id)

    def move_device_deployment(self, tenant, dd, expected_status, fields, changes, retry_pending=0, fetch=True,
                               phase=None, phase_outcomes=None):
        # Two documents, no transaction: the device deployment moves together with a note of the
        # counter change it owes its deployment (`pending_inc`, under a fresh id); the deployment
        # applies the change once per id (`applied_moves`), then the note and the id are cleared.
        # A crash after the move leaves the note, and the next read of that device deployment by
        # the device (its poll, its status report) applies it: at most once, whatever the step.
        inc = {f"stats.{s}": d for s, d in changes.items() if d}
        if phase is not None:
            inc.update({f"phases.{phase}.{k}": d for k, d in (phase_outcomes or {}).items() if d})
        if retry_pending:
            inc["retry_pending"] = retry_pending
        note = {"id": uuid.uuid4().hex, "deployment_id": dd.deployment_id, "inc": inc}
        if self.dds.update_one({"_id": dd.id, "tenant_id": tenant, "status": expected_status},
                               {"$set": {**fields, "pending_inc": note}}).matched_count != 1:
            return False, None
        return True, self._settle(tenant, dd.id, note)

    def _settle(self, tenant, dd_id, note) -> Deployment | None:
        """Apply a device deployment's noted counter change to its deployment, once (not on an
        aborted one: see adjust_stats), and clear the note; safe to repeat after a crash anywhere."""
        key = {"_id": note["deployment_id"], "tenant_id": tenant}
        doc = None
        if note["inc"]:
            doc = self.deployments.find_one_and_update(
                {**key, "aborted": {"$ne": True}, "applied_moves": {"$ne": note["id"]}},
                {"$inc": note["inc"], "$push": {"applied_moves": note["id"]}}, return_document=ReturnDocument.AFTER)
        self.dds.update_one({"_id": dd_id, "tenant_id": tenant, "pending_inc.id": note["id"]},
                            {"$unset": {"pending_inc": ""}})
        if doc is not None:
            self.deployments.update_one(key, {"$pull": {"applied_moves": note["id"]}})
            doc.pop("applied_moves", None)
            return _dep(doc)
        return self.get_deployment(tenant, note["deployment_id"])

    def _dd_settled(self, doc: dict | None) -> DeviceDeployment | None:
        """A device deployment as a device reads it: a counter change a crash left noted is applied first."""
        if doc is not None and doc.get("pending_inc"):
            self._settle(doc["tenant_id"], doc["_id"], doc["pending_inc"])
        return _dd(doc)

    def set_deployment_status(self, tenant, deployment_id, from_statuses, status, finished=None, aborted=False,
                              failed_at_least=None):
        update: dict = {"$set": {"status": status}}
        if status == m.DEPLOYMENT_FINISHED:
            update["$set"]["finished"] = finished
            update["$unset"] = {"active_checksum": ""}
        if aborted:
            update["$set"]["aborted"] = True
        query = {"_id": deployment_id, "tenant_id": tenant, "status": {"$in": list(from_statuses)},
                 **_failed_filter(failed_at_least)}
        changed = self.deployments.update_one(query, update).modified_count == 1
        if changed and status == m.DEPLOYMENT_FINISHED:
            # finished deployments drop out of the devices' candidate lists
            self.targets.update_many({"tenant_id": tenant, "deployment_id": deployment_id, "active": True},
                                     {"$set": {"active": False}})
        return changed

    # ------------------------------------------------------------------ rollout control
    def _update_unfinished(self, tenant, deployment_id, condition: dict, update: dict) -> bool:
        query = {"_id": deployment_id, "tenant_id": tenant, "status": {"$ne": m.DEPLOYMENT_FINISHED}, **condition}
        return self.deployments.update_one(query, update).modified_count == 1

    def pause_deployment(self, tenant, deployment_id, reason, ts, failed_at_least=None):
        # one conditional update: whichever worker's report crossed the threshold (each saw the
        # count its own $inc made), the first to get here pauses; the others match nothing
        return self._update_unfinished(tenant, deployment_id, {"paused": {"$ne": True}, **_failed_filter(failed_at_least)},
                                       {"$set": {"paused": True, "paused_reason": reason, "paused_ts": ts}})

    def resume_deployment(self, tenant, deployment_id, failure_ack):
        return self._update_unfinished(tenant, deployment_id, {"paused": True},
                                       {"$set": {"paused": False, "paused_reason": None, "paused_ts": None,
                                                 "failure_ack": failure_ack}})

    def promote_phase(self, tenant, deployment_id, phase):
        return self._update_unfinished(tenant, deployment_id, {"current_phase": {"$lt": phase}},
                                       {"$set": {"current_phase": phase}})

    def set_control_map(self, tenant, deployment_id, control_map):
        return self._update_unfinished(tenant, deployment_id, {"update_control_map": {"$type": "object"}},
                                       {"$set": {"update_control_map": control_map}})

    def set_device_control_map(self, tenant, deployment_id, device_id, control_map):
        return self.dds.update_one({"tenant_id": tenant, "deployment_id": deployment_id, "device_id": device_id,
                                    "status": {"$in": _ACTIVE}},
                                   {"$set": {"control_map": control_map}}).matched_count == 1

    # ------------------------------------------------------------------ failure insight
    def outcome_counts(self, tenant, deployment_id):
        pipeline = [{"$match": {"tenant_id": tenant, "deployment_id": deployment_id,
                                "status": {"$in": [m.SUCCESS, m.FAILURE]}}},
                    {"$group": {"_id": {"t": "$device_type", "a": "$previous_artifact", "s": "$status"},
                                "n": {"$sum": 1}}}]
        return [(r["_id"].get("t"), r["_id"].get("a"), r["_id"]["s"], r["n"]) for r in self.dds.aggregate(pipeline)]

    def outcome_sample(self, tenant, deployment_id, status, limit):
        # device deployment ids are random (UUID4): their order is a uniform, repeatable sample
        cursor = self.dds.find({"tenant_id": tenant, "deployment_id": deployment_id, "status": status},
                               {"device_id": 1}).sort("_id", ASCENDING).limit(limit)
        return [d["device_id"] for d in cursor]

    def logs_of(self, tenant, deployment_id, device_ids):
        if not device_ids:
            return []
        cursor = self.logs.find({"tenant_id": tenant, "deployment_id": deployment_id,
                                 "device_id": {"$in": list(device_ids)}}, {"messages": 1})
        return [d["messages"] for d in cursor]

    # ------------------------------------------------------------------ history
    def add_event(self, event):
        # the default ObjectId _id breaks ties between events of the same second in insertion order
        doc = asdict(event)
        doc["seq"] = event.ts
        self._db.db[EVENTS].insert_one(doc)

    def list_events(self, tenant, deployment_id, skip, limit):
        query = {"tenant_id": tenant, "deployment_id": deployment_id}
        events = self._db.db[EVENTS]
        total = events.count_documents(query)
        cursor = events.find(query).sort([("seq", ASCENDING), ("_id", ASCENDING)]).skip(skip).limit(limit)
        return [DeploymentEvent(id=d["id"], tenant_id=d["tenant_id"], deployment_id=d["deployment_id"], ts=d["ts"],
                                type=d["type"], actor=d["actor"], detail=d.get("detail") or {}) for d in cursor], total

    def replace_stats(self, tenant, deployment_id, stats):
        self.deployments.update_one({"_id": deployment_id, "tenant_id": tenant},
                                    {"$set": {f"stats.{s}": n for s, n in stats.items()}})

    # ------------------------------------------------------------------ device deployments
    def insert_device_deployment(self, dd):
        try:
            self.dds.insert_one(_dd_doc(dd))
        except DuplicateKeyError:
            return False
        return True

    def get_device_deployment(self, tenant, deployment_id, device_id):
        return self._dd_settled(self.dds.find_one({"tenant_id": tenant, "deployment_id": deployment_id,
                                                   "device_id": device_id}))

    def device_deployments_by_ids(self, tenant, ids):
        if not ids:
            return []
        return [_dd(d) for d in self.dds.find({"tenant_id": tenant, "_id": {"$in": list(ids)}})]

    def update_device_deployment(self, tenant, dd_id, expected_status, fields):
        if not fields:
            return True
        result = self.dds.update_one({"_id": dd_id, "tenant_id": tenant, "status": expected_status},
                                     {"$set": fields})
        return result.matched_count == 1

    def oldest_active_device_deployment(self, tenant, device_id):
        cursor = self.dds.find({"tenant_id": tenant, "device_id": device_id, "status": {"$in": _ACTIVE},
                                "deleted": None}).sort([("created", ASCENDING), ("_id", ASCENDING)]).limit(1)
        return next((_dd(d) for d in cursor), None)

    def device_deployments_of_device(self, tenant, device_id, statuses, include_deleted, skip, limit):
        query: dict = {"tenant_id": tenant, "device_id": device_id}
        if statuses is not None:
            query["status"] = {"$in": sorted(statuses)}
        if not include_deleted:
            query["deleted"] = None
        total = self.dds.count_documents(query)
        cursor = self.dds.find(query).sort([("created", DESCENDING), ("_id", ASCENDING)]).skip(skip).limit(limit)
        return [_dd(d) for d in cursor], total

    def poll_device_deployments(self, tenant, device_id, limit):
        # Two queries whatever the device's past: its newest final device deployment (the history
        # index from its newest end, past the active ones at most), then its active ones (the
        # status index) together with any device deployment of it a crash left owing its
        # deployment a counter change (`pending_inc`: its own partial index, empty but for
        # crashes), whose change this read applies (see move_device_deployment) and which is
        # returned only if it is active.
        key = {"tenant_id": tenant, "device_id": device_id}
        final = [self._dd_settled(d) for d in self.dds.find(
            {**key, "deleted": None, "status": {"$nin": _ACTIVE}}).sort(
            [("created", DESCENDING), ("_id", DESCENDING)]).hint("tenant_device_created_id").limit(1)]
        active = []
        for doc in self.dds.find({"$or": [{**key, "status": {"$in": _ACTIVE}, "deleted": None},
                                          {**key, "pending_inc": {"$exists": True}}]}).limit(limit):
            dd = self._dd_settled(doc)
            if dd.status in m.ACTIVE and dd.deleted is None:
                active.append(dd)
        return (final + active)[:limit]

    def candidate_static_deployments(self, tenant, device_id, created_after, limit):
        # three queries whatever the number of targets: the device's active targets, their
        # deployments, and the device deployments it has of them
        targets = list(self.targets.find({"tenant_id": tenant, "device_id": device_id, "active": True,
                                          "created": {"$gt": created_after}}, {"deployment_id": 1}
                                         ).sort("created", ASCENDING).limit(limit * 5))
        if not targets:
            return []
        ids = list(dict.fromkeys(t["deployment_id"] for t in targets))
        found = {d["_id"]: d for d in self.deployments.find({"_id": {"$in": ids}, "tenant_id": tenant})}
        finished = [i for i, d in found.items() if d.get("status") == m.DEPLOYMENT_FINISHED]
        if finished:
            # Targets left active by a finish whose update_many did not complete (a failover: it is
            # not retryable): deactivated here, so they never crowd newer deployments out of the
            # window above. Idempotent; a deployment never finishes twice.
            self.targets.update_many({"tenant_id": tenant, "device_id": device_id, "active": True,
                                      "deployment_id": {"$in": finished}}, {"$set": {"active": False}})
        deployments = {i: d for i, d in found.items() if d.get("status") != m.DEPLOYMENT_FINISHED}
        have = {d["deployment_id"] for d in self.dds.find(
            {"tenant_id": tenant, "device_id": device_id, "deployment_id": {"$in": list(deployments)}},
            {"deployment_id": 1})} if deployments else set()
        out = [_dep(deployments[i]) for i in ids if i in deployments and i not in have]
        return out[:limit]

    def unfinished_dynamic_deployments(self, tenant, created_after, limit):
        cursor = self.deployments.find({"tenant_id": tenant, "dynamic": True,
                                        "status": {"$in": [m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS]},
                                        "created": {"$gt": created_after}}).sort(
            [("created", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [_dep(d) for d in cursor]

    def static_deployments_listing(self, tenant, device_id):
        return self.candidate_static_deployments(tenant, device_id, -1.0, 1000)

    def list_device_deployments(self, tenant, deployment_id, statuses, skip, limit, count=True):
        query: dict = {"tenant_id": tenant, "deployment_id": deployment_id}
        if statuses is not None:
            query["status"] = {"$in": sorted(statuses)}
        total = self.dds.count_documents(query) if count else None
        cursor = self.dds.find(query).sort("device_id", ASCENDING).skip(skip)
        if limit is not None:
            cursor = cursor.limit(limit)
        return [_dd(d) for d in cursor], total

    def device_deployments_after(self, tenant, deployment_id, after_device_id, limit):
        cursor = self.dds.find({"tenant_id": tenant, "deployment_id": deployment_id,
                                "device_id": {"$gt": after_device_id}}).sort("device_id", ASCENDING).limit(limit)
        return [_dd(d) for d in cursor]

    def count_device_statuses(self, tenant, deployment_id):
        pipeline = [{"$match": {"tenant_id": tenant, "deployment_id": deployment_id}},
                    {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
        return {d["_id"]: d["n"] for d in self.dds.aggregate(pipeline)}

    def deployment_status_counts(self):
        out = dict.fromkeys((m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS, m.DEPLOYMENT_FINISHED), 0)
        out.update((d["_id"], d["n"]) for d in self.deployments.aggregate([{"$group": {"_id": "$status",
                                                                                     "n": {"$sum": 1}}}]))
        return out

    def active_device_status_counts(self):
        out = dict.fromkeys(m.DEVICE_STATUSES, 0)
        for doc in self.deployments.find({"status": {"$ne": m.DEPLOYMENT_FINISHED}}, {"stats": 1}):
            for status, n in (doc.get("stats") or {}).items():
                out[status] = out.get(status, 0) + int(n)
        return out

    def count_device_statuses_by_phase(self, tenant, deployment_id):
        pipeline = [{"$match": {"tenant_id": tenant, "deployment_id": deployment_id, "phase": {"$ne": None}}},
                    {"$group": {"_id": {"phase": "$phase", "status": "$status"}, "n": {"$sum": 1}}}]
        out: dict[int, dict[str, int]] = {}
        for d in self.dds.aggregate(pipeline):
            out.setdefault(int(d["_id"]["phase"]), {})[d["_id"]["status"]] = d["n"]
        return out

    def close_active_device_deployments(self, tenant, deployment_id, status, finished):
        self.dds.update_many({"tenant_id": tenant, "deployment_id": deployment_id, "status": {"$in": _ACTIVE}},
                             {"$set": {"status": status, "finished": finished}})

    def soft_delete_history(self, tenant, device_id, deleted):
        self.dds.update_many({"tenant_id": tenant, "device_id": device_id, "status": {"$in": _TERMINAL},
                              "deleted": None}, {"$set": {"deleted": deleted}})

    def device_deployment_uses_artifact(self, tenant, artifact_id):
        return self.dds.find_one({"tenant_id": tenant, "artifact_id": artifact_id, "status": {"$in": _ACTIVE}},
                                 {"_id": 1}) is not None

    def last_device_deployments(self, tenant, device_ids):
        out = []
        for device_id in dict.fromkeys(device_ids):
            cursor = self.dds.find({"tenant_id": tenant, "device_id": device_id}).sort(
                [("created", DESCENDING), ("_id", ASCENDING)]).limit(1)
            doc = next(iter(cursor), None)
            if doc:
                out.append(_dd(doc))
        return out

    # ------------------------------------------------------------------ logs
    def save_log(self, tenant, deployment_id, device_id, messages):
        self.logs.update_one({"tenant_id": tenant, "deployment_id": deployment_id, "device_id": device_id},
                             {"$set": {"messages": messages}}, upsert=True)

    def get_log(self, tenant, deployment_id, device_id):
        doc = self.logs.find_one({"tenant_id": tenant, "deployment_id": deployment_id, "device_id": device_id})
        return doc["messages"] if doc else None

    # ------------------------------------------------------------------ organizations
    def delete_tenant(self, tenant):
        self._db.delete_tenant_rows((DEVICE_DEPLOYMENTS, LOGS, TARGETS, EVENTS, DEPLOYMENTS), tenant)
