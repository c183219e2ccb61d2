"""Deployments: creation and targeting, phased rollouts, retries, the device update protocol,
status aggregation. Plain Python; no Flask."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from typing import Any

from common.clock import rfc3339
from common.errors import BadRequest, Conflict, NotFound, Unprocessable
from deployments import model as m
from deployments.store import (ASSIGNED, EXISTS, FINISHED, DeploymentQuery, DeploymentsStore,
                               DuplicateDeployment)

MAX_RETRIES = 100
MAX_PHASES = 100
CANDIDATE_BATCH = 20
HISTORY_WINDOW = 100  # device deployments read per poll: a device has few active ones, the newest matter
MAX_DYNAMIC_CANDIDATES = 50


class DeploymentsService:
    """The rules of deployments. Cross-service: inventory (targets), artifacts (what to hand out)."""

    def __init__(self, store: DeploymentsStore, config: dict, clock, services):
        self.store = store
        self.config = config
        self.clock = clock
        self._services = services

    # ------------------------------------------------------------------ creation
    def create_deployment(self, tenant: str, *, name: str, artifact_name: str,
                          devices: list[str] | None = None, all_devices: bool = False,
                          group: str | None = None, filter_terms: list[dict] | None = None,
                          filter_id: str | None = None, phases: list[dict] | None = None,
                          retries: int = 0, max_devices: int | None = None,
                          force_installation: bool = False) -> dict:
        """Create a deployment to a device list, all accepted devices, a group or an inventory filter.

        Raises BadRequest (invalid input, no devices, a phase of zero devices), Unprocessable (no
        artifact with that name), NotFound (unknown saved filter), Conflict (an identical
        unfinished deployment exists)."""
        name, artifact_name = _check_name("name", name), _check_name("artifact_name", artifact_name)
        targets = [bool(devices), bool(all_devices), group is not None,
                   filter_terms is not None or filter_id is not None]
        if sum(targets) != 1:
            raise BadRequest("exactly one of devices, all_devices, group or filter must be given")
        if not 0 <= retries <= MAX_RETRIES:
            raise BadRequest(f"retries: must be between 0 and {MAX_RETRIES}")
        if max_devices is not None and max_devices < 0:
            raise BadRequest("max_devices: must not be negative")
        artifacts = self._services.artifacts.find_by_name(tenant, artifact_name)
        if not artifacts:
            raise Unprocessable(f"no artifact named {artifact_name!r}")

        inventory = self._services.inventory
        now = self.clock.now()
        filter_doc = None
        target_ids: list[str] | None = None
        groups: list[str] = []
        if devices:
            target_ids = list(dict.fromkeys(devices))
            if len(target_ids) > m.MAX_DEVICES_PER_LIST_DEPLOYMENT:
                raise BadRequest(f"devices: at most {m.MAX_DEVICES_PER_LIST_DEPLOYMENT} devices")
            if any(not isinstance(d, str) or not d or len(d) > 128 for d in target_ids):
                raise BadRequest("devices: every device id must be a non-empty string")
            if len(target_ids) == 1:
                group_of = inventory.device_group(tenant, target_ids[0])
                groups = [group_of] if group_of else []
        elif all_devices or group is not None:
            target_ids = self._all_ids(tenant, group=group)
            groups = [group] if group is not None else []
            if not target_ids:
                raise BadRequest(f"no accepted devices in group {group!r}" if group else "no accepted devices")
        else:
            if filter_id is not None:
                saved = inventory.get_filter(tenant, filter_id)
                filter_doc = {"id": saved.id, "name": saved.name, "terms": saved.terms}
            else:
                filter_doc = {"terms": list(filter_terms or [])}
            if not filter_doc["terms"]:
                raise BadRequest("filter: at least one term is required")
        dynamic = filter_doc is not None
        if dynamic:
            _, initial = inventory.search_device_ids(tenant, filters=filter_doc["terms"], status="accepted",
                                                     page=1, per_page=1)
            base_count = initial
        else:
            initial = base_count = len(target_ids)
        phase_docs = self._plan_phases(phases, base_count, dynamic, now)

        deployment = {
            "id": str(uuid.uuid4()), "tenant_id": tenant, "name": name, "artifact_name": artifact_name,
            "created": now, "finished": None, "status": m.DEPLOYMENT_PENDING,
            "start_ts": phase_docs[0]["start_ts"] if phase_docs else None,
            "dynamic": dynamic, "max_devices": (max_devices or 0) if dynamic else len(target_ids),
            "device_count": 0, "retry_pending": 0, "aborted": False,
            "groups": groups, "filter": filter_doc, "phases": phase_docs, "retries": retries,
            "force_installation": bool(force_installation), "artifacts": [a["id"] for a in artifacts],
            "initial_device_count": initial, "type": "software", "total_size": 0,
            "stats": {s: 0 for s in m.DEVICE_STATUSES},
        }
        if not dynamic:
            deployment["stats"][m.PENDING] = len(target_ids)
        deployment["checksum"] = _checksum(name, artifact_name, target_ids, group, filter_doc, force_installation)
        try:
            self.store.insert_deployment(deployment, target_ids)
        except DuplicateDeployment:
            raise Conflict("an active deployment with the same parameters already exists") from None
        return deployment

    def _all_ids(self, tenant: str, group: str | None) -> list[str]:
        ids: list[str] = []
        page = 1
        while True:
            batch, total = self._services.inventory.search_device_ids(tenant, group=group, status="accepted",
                                                                      page=page, per_page=500)
            ids.extend(batch)
            if not batch or len(ids) >= total:
                return list(dict.fromkeys(ids))
            if len(ids) > m.MAX_DEVICES_PER_LIST_DEPLOYMENT:
                raise BadRequest(f"a deployment may target at most {m.MAX_DEVICES_PER_LIST_DEPLOYMENT} devices;"
                                 " use a filter (dynamic) deployment")
            page += 1

    def _plan_phases(self, phases: list[dict] | None, n: int, dynamic: bool, now: float) -> list[dict]:
        """Phase sizes as Mender computes them: floor(batch_size% × devices), the last phase takes
        the rest; a phase of zero devices is an error."""
        if not phases:
            return []
        if len(phases) > MAX_PHASES:
            raise BadRequest(f"phases: at most {MAX_PHASES}")
        docs: list[dict] = []
        total_pct = 0
        previous_start = None
        for i, phase in enumerate(phases):
            last = i == len(phases) - 1
            batch = phase.get("batch_size")
            start = phase.get("start_ts")
            if batch is None and not last:
                raise BadRequest(f"phases[{i}].batch_size: required except on the last phase")
            if batch is not None and not 1 <= batch <= 100:
                raise BadRequest(f"phases[{i}].batch_size: must be a percentage between 1 and 100")
            if start is None:
                if i > 0:
                    raise BadRequest(f"phases[{i}].start_ts: required after the first phase")
                start = now
            elif start < now - 60:
                raise BadRequest(f"phases[{i}].start_ts: in the past")
            if previous_start is not None and start <= previous_start:
                raise BadRequest(f"phases[{i}].start_ts: must be later than the previous phase's")
            previous_start = start
            total_pct += batch or 0
            docs.append({"id": str(uuid.uuid4()), "batch_size": batch, "start_ts": start,
                         "device_limit": None, "device_count": 0})
        if total_pct > 100:
            raise BadRequest("phases: batch sizes add up to more than 100%")
        assigned = 0
        for i, doc in enumerate(docs):
            last = i == len(docs) - 1
            if last:
                size = n - assigned
                doc["batch_size"] = 100 - (total_pct - (doc["batch_size"] or 0))
                doc["device_limit"] = None if dynamic else size
            else:
                size = math.floor(doc["batch_size"] * n / 100)
                doc["device_limit"] = size
                assigned += size
            if size <= 0:
                raise BadRequest(f"phases[{i}]: {doc['batch_size']}% of {n} devices is no device")
        return docs

    # ------------------------------------------------------------------ management reads
    def get_deployment(self, tenant: str, deployment_id: str) -> dict:
        dep = self.store.get_deployment(tenant, deployment_id)
        if dep is None:
            raise NotFound("deployment not found")
        return dep

    def find_deployments(self, tenant: str, query: DeploymentQuery) -> tuple[list[dict], int]:
        query.now = self.clock.now()
        return self.store.find_deployments(tenant, query)

    def status_of(self, dep: dict) -> str:
        """The deployment status the API shows: `scheduled` while its first phase has not started."""
        if dep["status"] == m.DEPLOYMENT_PENDING and dep.get("start_ts") and dep["start_ts"] > self.clock.now():
            return m.DEPLOYMENT_SCHEDULED
        return dep["status"]

    def statistics(self, tenant: str, deployment_id: str) -> dict:
        dep = self.get_deployment(tenant, deployment_id)
        return {k: max(0, int(dep["stats"].get(k, 0))) for k in m.STATISTICS_KEYS}

    def statistics_list(self, tenant: str, deployment_ids: list[str]) -> list[dict]:
        if not deployment_ids:
            raise BadRequest("deployment_ids: at least one id is required")
        if len(deployment_ids) > m.MAX_STATISTICS_LIST_IDS:
            raise BadRequest(f"deployment_ids: at most {m.MAX_STATISTICS_LIST_IDS}")
        deps = self.store.get_deployments(tenant, list(dict.fromkeys(deployment_ids)))
        if not deps:
            raise NotFound("deployments not found")
        return [{"id": d["id"], "stats": {k: max(0, int(d["stats"].get(k, 0))) for k in m.STATISTICS_KEYS}}
                for d in deps]

    def device_ids(self, tenant: str, deployment_id: str) -> list[str]:
        self.get_deployment(tenant, deployment_id)
        return self.store.deployment_device_ids(tenant, deployment_id, 0, m.MAX_DEVICES_PER_LIST_DEPLOYMENT)

    def device_deployments(self, tenant: str, deployment_id: str, status: str | None,
                           skip: int = 0, limit: int | None = None) -> tuple[list[dict], int]:
        self.get_deployment(tenant, deployment_id)
        return self.store.list_device_deployments(tenant, deployment_id, _status_filter(status), skip, limit)

    def device_log(self, tenant: str, deployment_id: str, device_id: str) -> str:
        messages = self.store.get_log(tenant, deployment_id, device_id)
        if messages is None:
            raise NotFound("deployment log not found")
        return "".join(f"{msg.get('timestamp', '')} {msg.get('level', '')}: {msg.get('message', '')}\n"
                       for msg in messages)

    def device_history(self, tenant: str, device_id: str, status: str | None, skip: int,
                       limit: int) -> tuple[list[tuple[dict, dict]], int]:
        """The device's device deployments (newest first) with their deployments."""
        dds, total = self.store.device_deployments_of_device(tenant, device_id, _status_filter(status),
                                                             include_deleted=True, skip=skip, limit=limit)
        deps = {d["id"]: d for d in self.store.get_deployments(tenant, list({dd["deployment_id"] for dd in dds}))}
        return [(dd, deps[dd["deployment_id"]]) for dd in dds if dd["deployment_id"] in deps], total

    def device_deployments_by_ids(self, tenant: str, ids: list[str]) -> list[tuple[dict, dict]]:
        dds = self.store.device_deployments_by_ids(tenant, ids)
        deps = {d["id"]: d for d in self.store.get_deployments(tenant, list({dd["deployment_id"] for dd in dds}))}
        return [(dd, deps[dd["deployment_id"]]) for dd in dds if dd["deployment_id"] in deps]

    def last_device_deployments(self, tenant: str, device_ids: list[str]) -> list[dict]:
        if len(device_ids) > 1000:
            raise BadRequest("device_ids: at most 1000")
        return self.store.last_device_deployments(tenant, device_ids)

    def artifact_image(self, tenant: str, artifact_id: str | None, cache: dict) -> dict | None:
        """The assigned artifact in the `image` shape of DeviceWithImage (None when not assigned or gone)."""
        if not artifact_id:
            return None
        if artifact_id not in cache:
            try:
                a = self._services.artifacts.get(tenant, artifact_id)
            except NotFound:
                a = None
            cache[artifact_id] = None if a is None else {
                "id": a["id"], "meta": {"description": a.get("description", "")},
                "meta_artifact": {k: a.get(k) for k in ("name", "device_types_compatible", "info", "signed",
                                                         "updates", "artifact_provides", "artifact_depends",
                                                         "clears_artifact_provides")},
                "size": a.get("size"), "modified": a.get("modified"),
            }
        return cache[artifact_id]

    def artifact_in_use(self, tenant: str, artifact_id: str) -> bool:
        """Whether an unfinished deployment may still hand this artifact out."""
        try:
            artifact = self._services.artifacts.get(tenant, artifact_id)
        except NotFound:
            return False
        return (self.store.unfinished_deployment_with_artifact(tenant, artifact["name"])
                or self.store.device_deployment_uses_artifact(tenant, artifact_id))

    # ------------------------------------------------------------------ management writes
    def abort(self, tenant: str, deployment_id: str) -> None:
        """Abort: active device deployments become `aborted`, devices that have not asked yet never
        start, the deployment is finished. Raises NotFound, Unprocessable (already finished)."""
        dep = self.get_deployment(tenant, deployment_id)
        if dep["status"] != m.DEPLOYMENT_FINISHED:
            # finished first: from then on no device is given it (assignments check the status)
            with self.store.transaction():  # one commit on SQLite
                if self.store.set_deployment_status(tenant, deployment_id,
                                                    (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                                    m.DEPLOYMENT_FINISHED, finished=self.clock.now(), aborted=True):
                    self._close_aborted(tenant, deployment_id)
                    return
        if dep["aborted"]:  # aborted before: finish the work of an abort that was interrupted
            self._close_aborted(tenant, deployment_id)
        raise Unprocessable("deployment already finished")

    def _close_aborted(self, tenant: str, deployment_id: str) -> None:
        """The rest of an abort, safe to repeat: active device deployments become `aborted`, the
        statistics are counted again from the device deployments."""
        with self.store.transaction():
            self.store.close_active_device_deployments(tenant, deployment_id, m.ABORTED, self.clock.now())
            counts = self.store.count_device_statuses(tenant, deployment_id)
            self.store.replace_stats(tenant, deployment_id, {s: counts.get(s, 0) for s in m.DEVICE_STATUSES})

    def decommission_device(self, tenant: str, device_id: str) -> None:
        """The device is gone: its unfinished device deployments become `decommissioned`, and the
        unfinished deployments that list it count it as such. Idempotent."""
        self._close_device(tenant, device_id, m.DECOMMISSIONED)

    def abort_device(self, tenant: str, device_id: str) -> None:
        """Abort every active and pending deployment of one device. Idempotent."""
        self._close_device(tenant, device_id, m.ABORTED)

    def _close_device(self, tenant: str, device_id: str, status: str) -> None:
        for _ in range(1000):  # a device has few active device deployments; bound the loop anyway
            dd = self.store.oldest_active_device_deployment(tenant, device_id)
            if dd is None:
                break
            self._move(dd, status)
        now = self.clock.now()
        for dep in self.store.static_deployments_listing(tenant, device_id):
            dd = self._new_device_deployment(dep, device_id, "", None, status=status)
            dd["finished"] = now
            if self.store.insert_device_deployment(dd):
                after = self.store.adjust_stats(tenant, dep["id"], {m.PENDING: -1, status: 1})
                self._after_change(after, m.PENDING)

    def reset_history(self, tenant: str, device_id: str) -> None:
        """Forget the device's finished device deployments: it is eligible again for active deployments."""
        self.store.soft_delete_history(tenant, device_id, self.clock.now())

    # ------------------------------------------------------------------ the device protocol
    def next_deployment(self, tenant: str, device_id: str, provides: dict[str, Any],
                        base_url: str) -> dict | None:
        """What the device should install next: deployment instructions, or None (204).

        `provides` holds at least `device_type` and `artifact_name` (BadRequest otherwise)."""
        device_type = provides.get("device_type")
        current = provides.get("artifact_name")
        if not isinstance(device_type, str) or not device_type:
            raise BadRequest("device_type: required")
        if not isinstance(current, str) or not current:
            raise BadRequest("artifact_name: required")

        # one query tells the device's active deployment, a failure to retry and its newest final one
        recent = self.store.recent_device_deployments(tenant, device_id, HISTORY_WINDOW)
        active = [d for d in recent if d["status"] in m.ACTIVE]
        dd = min(active, key=lambda d: (d["created"], d["id"])) if active else None
        dep = None
        if dd is not None:  # the device only needs the deployment's own fields, not its counts
            dep = self.store.get_deployment(tenant, dd["deployment_id"], counts=False)
            if dep["status"] == m.DEPLOYMENT_FINISHED:
                # an abort interrupted before it closed this device deployment: finish its work
                self._close_aborted(tenant, dep["id"])
                return None
            if device_id in dep["assigning"]:  # its assignment was interrupted after the insert
                self.store.assign_device(tenant, dep, dd.get("phase"), dd)
        if dd is None:
            dd, dep = self._retry_or_new(tenant, device_id, device_type, recent)
        if dd is None:
            return None
        return self._instructions(dd, dep, provides, base_url)

    def _retry_or_new(self, tenant: str, device_id: str, device_type: str, recent: list[dict]):
        retryable = [d for d in recent if d["status"] == m.FAILURE and d.get("attempts", 0) < d.get("retries", 0)]
        failed = min(retryable, key=lambda d: (d["created"], d["id"])) if retryable else None
        if failed is not None:
            dep = self.store.get_deployment(tenant, failed["deployment_id"])
            if dep is not None and dep["status"] != m.DEPLOYMENT_FINISHED:
                fields = {"attempts": failed["attempts"] + 1, "finished": None, "substate": None}
                if self._move(failed, m.PENDING, fields, retry=True):
                    failed.update(fields, status=m.PENDING)
                    return failed, dep
        after = max((d["created"] for d in recent if d["status"] in m.TERMINAL), default=0.0)
        now = self.clock.now()
        for dep in self._candidates(tenant, device_id, after):
            resuming = device_id in dep["assigning"]  # an interrupted assignment: finish it as it began
            phase = None if resuming else self._open_phase(dep, now)
            if phase is False:
                return None, None  # the oldest applicable deployment is waiting for its next phase
            outcome, dd = self.store.assign_device(tenant, dep, phase,
                                                   self._new_device_deployment(dep, device_id, device_type, phase))
            if outcome == ASSIGNED:
                return dd, dep
            if outcome == FINISHED:  # aborted while it was being assigned
                self._close_aborted(tenant, dep["id"])
                return None, None
            if outcome == EXISTS:  # a concurrent poll of this device assigned it first
                if dd is not None and dd["status"] in m.ACTIVE:
                    return dd, dep
                continue
            if dep["dynamic"]:
                continue  # capped at max_devices: move on to newer deployments
            return None, None  # phase full: wait for the next one
        return None, None

    def _candidates(self, tenant: str, device_id: str, after: float):
        """Deployments the device may get, oldest first: static ones listing it, and dynamic ones
        whose filter it matches now."""
        merged = self.store.candidate_deployments(tenant, device_id, after, CANDIDATE_BATCH, MAX_DYNAMIC_CANDIDATES)
        inventory = self._services.inventory
        for dep in merged:
            if dep["dynamic"] and device_id not in dep["assigning"]:
                if self.store.get_device_deployment(tenant, dep["id"], device_id) is not None:
                    continue
                if not inventory.device_matches(tenant, device_id, dep["filter"]["terms"]):
                    continue
            yield dep

    @staticmethod
    def _open_phase(dep: dict, now: float):
        """The index of the phase a new device joins (None without phases), or False when every
        started phase is full or none has started."""
        phases = dep.get("phases") or []
        if not phases:
            return None
        for i, phase in enumerate(phases):
            if phase["start_ts"] is not None and phase["start_ts"] > now:
                return False
            limit = phase.get("device_limit")
            if limit is None or phase.get("device_count", 0) < limit:
                return i
        return False

    def _new_device_deployment(self, dep: dict, device_id: str, device_type: str, phase,
                               status: str = m.PENDING) -> dict:
        return {"id": str(uuid.uuid4()), "tenant_id": dep["tenant_id"], "deployment_id": dep["id"],
                "device_id": device_id, "created": dep["created"], "started": None, "finished": None,
                "status": status, "substate": None, "device_type": device_type, "artifact_id": None,
                "attempts": 0, "retries": dep.get("retries", 0), "log": False, "deleted": None,
                "phase": phase}

    def _instructions(self, dd: dict, dep: dict, provides: dict, base_url: str) -> dict | None:
        tenant = dd["tenant_id"]
        device_type = provides["device_type"]
        if dd.get("artifact_id"):
            try:
                artifact = self._services.artifacts.get_for_device(tenant, dd["artifact_id"])
            except NotFound:
                artifact = None
        else:
            artifact = self._pick_artifact(tenant, dep["artifact_name"], provides)
            if artifact is None:
                self._move(dd, m.NOARTIFACT)
                return None
            self.store.assign_artifact(tenant, dd, artifact["id"], device_type, int(artifact.get("size") or 0))
        if artifact is None:
            self._move(dd, m.FAILURE, {"substate": "artifact deleted"})
            return None
        if (not dep.get("force_installation") and dd["status"] == m.PENDING
                and provides.get("artifact_name") == artifact["name"]):
            self._move(dd, m.ALREADY_INSTALLED)
            return None
        link = self._services.artifacts.device_link_for(tenant, artifact, base_url)
        return {"id": dep["id"], "artifact": {
            "id": artifact["id"], "artifact_name": artifact["name"],
            "source": {"uri": link["uri"], "expire": link["expire"]},
            "device_types_compatible": artifact.get("device_types_compatible") or [],
        }}

    def _pick_artifact(self, tenant: str, artifact_name: str, provides: dict) -> dict | None:
        """The smallest artifact of that name compatible with the device type whose depends the
        device's provides satisfy."""
        device_type = provides["device_type"]
        fitting = []
        for a in self._services.artifacts.find_by_name(tenant, artifact_name):
            if device_type not in (a.get("device_types_compatible") or []):
                continue
            depends = a.get("artifact_depends") or {}
            ok = True
            for key, wanted in depends.items():
                if key == "device_type":
                    continue
                values = wanted if isinstance(wanted, list) else [wanted]
                if provides.get(key) not in values:
                    ok = False
                    break
            if ok:
                fitting.append(a)
        return min(fitting, key=lambda a: (a.get("size") or 0, a["id"]), default=None)

    def report_status(self, tenant: str, device_id: str, deployment_id: str, status: str,
                      substate: str | None = None) -> None:
        """A device reports progress on its deployment.

        Raises NotFound (not this device's deployment), Conflict (aborted or already finished),
        BadRequest (a status out of order or unknown)."""
        if status not in m.REPORTABLE:
            raise BadRequest(f"status: must be one of {', '.join(m.REPORTABLE)}")
        if substate is not None and len(substate) > 1024:
            raise BadRequest("substate: at most 1024 characters")
        for _ in range(5):
            dd = self.store.get_device_deployment(tenant, deployment_id, device_id)
            if dd is None or dd.get("deleted"):
                raise NotFound("deployment not found for this device")
            current = dd["status"]
            if current == m.ABORTED:
                raise Conflict("deployment aborted")
            if current == m.DECOMMISSIONED:
                raise Conflict("device decommissioned")
            if current == status:
                if substate is not None and substate != dd.get("substate"):
                    self.store.update_device_deployment(tenant, dd["id"], current, {"substate": substate})
                return
            if current in m.TERMINAL:
                raise Conflict(f"deployment already finished for this device ({current})")
            if not m.report_allowed(current, status):
                raise BadRequest(f"status: {status} cannot follow {current}")
            if self._move(dd, status, {"substate": substate}):
                return
        raise Conflict("concurrent status reports; try again")

    def upload_log(self, tenant: str, device_id: str, deployment_id: str, messages: list[dict]) -> None:
        dd = self.store.get_device_deployment(tenant, deployment_id, device_id)
        if dd is None or dd.get("deleted"):
            raise NotFound("deployment not found for this device")
        if len(messages) > m.MAX_LOG_MESSAGES:
            raise BadRequest(f"messages: at most {m.MAX_LOG_MESSAGES}")
        self.store.save_log(tenant, deployment_id, device_id, messages)
        self.store.update_device_deployment(tenant, dd["id"], dd["status"], {"log": True})

    # ------------------------------------------------------------------ state changes
    def _move(self, dd: dict, status: str, fields: dict | None = None, retry: bool = False) -> bool:
        """Move a device deployment to `status` (if nobody moved it meanwhile) and keep the
        deployment's counters and status exact. Returns False when it lost a race."""
        tenant, old = dd["tenant_id"], dd["status"]
        now = self.clock.now()
        update = dict(fields or {})
        update["status"] = status
        if old == m.PENDING and status != m.PENDING and not dd.get("started"):
            update["started"] = now
        if status in m.TERMINAL:
            update["finished"] = now
        retry_delta = 0
        if status == m.FAILURE and dd.get("attempts", 0) < dd.get("retries", 0):
            retry_delta = 1
        if retry:
            retry_delta = -1
        # Only a move into or out of a final status can finish the deployment; the others (the
        # device's downloading → installing → rebooting reports) need no read-back of the counters.
        settles = status in m.TERMINAL or old in m.TERMINAL or retry_delta != 0
        with self.store.transaction():  # the device's move and the counters: one commit on SQLite
            if not self.store.update_device_deployment(tenant, dd["id"], old, update):
                return False
            after = self.store.adjust_stats(tenant, dd["deployment_id"], {old: -1, status: 1},
                                            retry_pending=retry_delta, fetch=settles)
            if settles:
                self._after_change(after, old)
            elif old == m.PENDING:  # the first device to start makes the deployment in progress
                self.store.set_deployment_status(tenant, dd["deployment_id"], (m.DEPLOYMENT_PENDING,),
                                                 m.DEPLOYMENT_INPROGRESS)
        return True

    def _after_change(self, dep: dict | None, old_status: str) -> None:
        if dep is None:
            return
        tenant = dep["tenant_id"]
        if old_status == m.PENDING and dep["status"] == m.DEPLOYMENT_PENDING:
            self.store.set_deployment_status(tenant, dep["id"], (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
        stats = dep["stats"]
        done = sum(stats.get(s, 0) for s in m.TERMINAL) - dep.get("retry_pending", 0)
        if dep["dynamic"]:
            completed = stats.get(m.SUCCESS, 0) + stats.get(m.FAILURE, 0) - dep.get("retry_pending", 0)
            finished = dep["max_devices"] > 0 and completed >= dep["max_devices"]
        else:
            finished = done >= dep["max_devices"]
        if finished:
            self.store.set_deployment_status(tenant, dep["id"], (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                             m.DEPLOYMENT_FINISHED, finished=self.clock.now())


def _check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field}: required")
    if len(value) > m.MAX_NAME_LENGTH:
        raise BadRequest(f"{field}: at most {m.MAX_NAME_LENGTH} characters")
    return value


def _status_filter(status: str | None) -> frozenset[str] | None:
    if status is None:
        return None
    if status in m.STATUS_GROUPS:
        return frozenset(m.STATUS_GROUPS[status])
    if status in m.DEVICE_STATUSES:
        return frozenset({status})
    raise BadRequest(f"status: unknown status {status!r}")


def _checksum(name, artifact_name, target_ids, group, filter_doc, force) -> str:
    doc = {"name": name, "artifact_name": artifact_name, "devices": sorted(target_ids or []),
           "group": group, "filter": filter_doc, "force": bool(force)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def render_deployment(dep: dict, status: str) -> dict:
    """The DeploymentV1/V2 shape."""
    out = {"id": dep["id"], "name": dep["name"], "artifact_name": dep["artifact_name"],
           "created": rfc3339(dep["created"]), "status": status,
           "device_count": dep.get("device_count", 0), "artifacts": dep.get("artifacts", []),
           "type": dep.get("type", "software"),
           "statistics": {"status": {k: max(0, int(dep["stats"].get(k, 0))) for k in m.STATISTICS_KEYS},
                          "total_size": int(dep.get("total_size", 0))}}
    if dep.get("finished"):
        out["finished"] = rfc3339(dep["finished"])
    if dep.get("groups"):
        out["groups"] = dep["groups"]
    if dep.get("phases"):
        out["phases"] = [{"id": p["id"], "batch_size": p["batch_size"], "start_ts": rfc3339(p["start_ts"]),
                          "device_count": p.get("device_count", 0)} for p in dep["phases"]]
    out["retries"] = dep.get("retries", 0)
    out["max_devices"] = dep.get("max_devices", 0)
    out["initial_device_count"] = dep.get("initial_device_count", 0)
    out["dynamic"] = bool(dep.get("dynamic"))
    if dep.get("filter"):
        out["filter"] = dep["filter"]
    return out
