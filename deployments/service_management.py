"""Deployment management (a mixin of DeploymentsService): creation and targeting, phase planning,
reads and statistics, abort, decommission, history."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from typing import Any

from common.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from deployments import model as m
from deployments import rollout
from deployments.artifacts.model import Artifact
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment, Phase
from deployments.store import DeploymentQuery, DuplicateDeployment
from deviceconfig.model import check_configuration

MAX_RETRIES = 100
MAX_PHASES = 100
MAX_LAST_DEVICE_IDS = 1000
DEVICE_BATCH = 1000  # device deployments read at a time by the unpaged device listing


class DeploymentManagement:
    """Operators' side of DeploymentsService (uses its store, clock, services and state changes)."""

    # ------------------------------------------------------------------ creation
    def create_deployment(self, tenant: str, *, name: str, artifact_name: str,
                          devices: list[str] | None = None, all_devices: bool = False,
                          group: str | None = None, filter_terms: list[dict] | None = None,
                          filter_id: str | None = None, phases: list[dict] | None = None,
                          retries: int = 0, max_devices: int | None = None,
                          force_installation: bool = False, failure_threshold: int | None = None,
                          failure_action: str | None = None, success_threshold: int | None = None,
                          maintenance_window: dict | None = None,
                          update_control_map: dict | None = None, visible_groups: frozenset[str] | None = None,
                          visible_tags: frozenset[str] | None = None) -> Deployment:
        """Create a deployment to a device list, all accepted devices, a group or an inventory filter,
        with its rollout rules (thresholds, maintenance window, update control map).

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
        failure_threshold = rollout.check_threshold(failure_threshold, "failure_threshold")
        failure_action = rollout.check_action(failure_action, "failure_action") or m.FAILURE_PAUSE
        success_threshold = rollout.check_threshold(success_threshold, "success_threshold")
        window = rollout.check_window(maintenance_window)
        if update_control_map is not None:
            update_control_map = check_control_map(update_control_map)
        artifacts = self._services.artifacts.find_by_name(tenant, artifact_name)
        if not artifacts:
            raise Unprocessable(f"no artifact named {artifact_name!r}")
        self._check_target(tenant, artifact_name, devices, group, visible_groups, visible_tags)

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
        planned = self._plan_phases(phases, base_count, dynamic, now)

        stats = {s: 0 for s in m.DEVICE_STATUSES}
        if not dynamic:
            stats[m.PENDING] = len(target_ids)
        deployment = Deployment(
            id=str(uuid.uuid4()), tenant_id=tenant, name=name, artifact_name=artifact_name, created=now,
            start_ts=planned[0].start_ts if planned else None, dynamic=dynamic,
            max_devices=(max_devices or 0) if dynamic else len(target_ids), groups=groups, filter=filter_doc,
            phases=planned, retries=retries, force_installation=bool(force_installation),
            artifacts=[a.id for a in artifacts], initial_device_count=initial, stats=stats,
            checksum=_checksum(name, artifact_name, target_ids, group, filter_doc, force_installation),
            failure_threshold=failure_threshold, failure_action=failure_action, success_threshold=success_threshold,
            window=window, update_control_map=update_control_map,
            target=m.target(devices=target_ids if devices else None, all_devices=all_devices, group=group,
                            filter_doc=filter_doc))
        try:
            self.store.insert_deployment(deployment, target_ids)
        except DuplicateDeployment:
            raise Conflict("an active deployment with the same parameters already exists") from None
        return deployment

    def create_configuration_deployment(self, tenant: str, deployment_id: str, device_id: str, *, name: str,
                                        configuration: Any, retries: int = 0,
                                        update_control_map: dict | None = None) -> Deployment:
        """A configuration deployment (deviceconfig's): one device, the configuration kept in the
        deployment, its `mender-configure` artifact generated when the device downloads it.
        `configuration` is a JSON object of strings, or a string holding one (as Mender accepts);
        an update control map applies as to any deployment.

        Raises BadRequest (invalid id, name, configuration, retries or control map), Conflict (a
        deployment with that id exists)."""
        try:
            deployment_id = str(uuid.UUID(deployment_id))
        except (TypeError, ValueError, AttributeError):
            raise BadRequest("deployment id: must be a UUID") from None
        name = _check_name("name", name)
        if not isinstance(device_id, str) or not device_id or len(device_id) > 128:
            raise BadRequest("device id: a non-empty string of at most 128 characters")
        if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= MAX_RETRIES:
            raise BadRequest(f"retries: must be between 0 and {MAX_RETRIES}")
        if isinstance(configuration, str):
            try:
                configuration = json.loads(configuration)
            except ValueError:
                raise BadRequest("configuration: not a JSON object") from None
        config = check_configuration(configuration)
        if update_control_map is not None:
            update_control_map = check_control_map(update_control_map)
        if self.store.get_deployment(tenant, deployment_id, counts=False) is not None:
            raise Conflict("a deployment with this id already exists")
        group = self._services.inventory.device_group(tenant, device_id)
        stats = {s: 0 for s in m.DEVICE_STATUSES}
        stats[m.PENDING] = 1
        deployment = Deployment(
            id=deployment_id, tenant_id=tenant, name=name, artifact_name=name, created=self.clock.now(),
            max_devices=1, groups=[group] if group else [], retries=retries, initial_device_count=1, stats=stats,
            type=m.CONFIGURATION, configuration=json.dumps(config, ensure_ascii=False, separators=(",", ":")),
            update_control_map=update_control_map,
            # unique among unfinished deployments, as the id: a concurrent duplicate conflicts
            checksum=hashlib.sha256(f"{m.CONFIGURATION}:{deployment_id}".encode()).hexdigest())
        try:
            self.store.insert_deployment(deployment, [device_id])
        except DuplicateDeployment:
            raise Conflict("a deployment with this id already exists") from None
        return deployment

    def _check_target(self, tenant: str, artifact_name: str, devices, group, visible_groups, visible_tags) -> None:
        """A role limited to device groups deploys only to its groups or listed devices of them
        (never to all devices or a filter, whose devices change); one limited to release tags
        only releases carrying one of its tags. Forbidden otherwise."""
        if visible_tags is not None and not self._services.artifacts.release_visible(tenant, artifact_name,
                                                                                    visible_tags):
            raise Forbidden("forbidden: the release carries none of the tags the caller may deploy")
        if visible_groups is None:
            return
        if group is not None:
            if group not in visible_groups:
                raise Forbidden("forbidden: the caller may not deploy to this group")
        elif devices:
            ids = [d for d in devices if isinstance(d, str)]
            if len(ids) != len(devices) or not self._services.inventory.devices_visible(tenant, ids, visible_groups):
                raise Forbidden("forbidden: the caller may deploy only to devices of its groups")
        else:
            raise Forbidden("forbidden: a role limited to device groups deploys to its groups or to listed "
                            "devices of them, not to all devices or a filter")

    def _all_ids(self, tenant: str, group: str | None) -> list[str]:
        ids = self._services.inventory.all_device_ids(tenant, group=group, status="accepted",
                                                      limit=m.MAX_DEVICES_PER_LIST_DEPLOYMENT + 1)
        if len(ids) > m.MAX_DEVICES_PER_LIST_DEPLOYMENT:
            raise BadRequest(f"a deployment may target at most {m.MAX_DEVICES_PER_LIST_DEPLOYMENT} devices;"
                             " use a filter (dynamic) deployment")
        return ids

    @staticmethod
    def _plan_phases(phases: list[dict] | None, n: int, dynamic: bool, now: float) -> list[Phase]:
        """Phase sizes as Mender computes them: floor(batch_size% × devices), the last phase takes
        the rest; a phase of zero devices is an error."""
        if not phases:
            return []
        if len(phases) > MAX_PHASES:
            raise BadRequest(f"phases: at most {MAX_PHASES}")
        planned: list[Phase] = []
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
            planned.append(Phase(
                id=str(uuid.uuid4()), batch_size=batch, start_ts=start,
                failure_threshold=rollout.check_threshold(phase.get("failure_threshold"),
                                                          f"phases[{i}].failure_threshold"),
                failure_action=rollout.check_action(phase.get("failure_action"), f"phases[{i}].failure_action"),
                success_threshold=rollout.check_threshold(phase.get("success_threshold"),
                                                          f"phases[{i}].success_threshold")))
        if total_pct > 100:
            raise BadRequest("phases: batch sizes add up to more than 100%")
        assigned = 0
        for i, phase in enumerate(planned):
            if i == len(planned) - 1:
                size = n - assigned
                phase.batch_size = 100 - (total_pct - (phase.batch_size or 0))
                phase.device_limit = None if dynamic else size
            else:
                size = math.floor(phase.batch_size * n / 100)
                phase.device_limit = size
                assigned += size
            if size <= 0:
                raise BadRequest(f"phases[{i}]: {phase.batch_size}% of {n} devices is no device")
        return planned

    # ------------------------------------------------------------------ reads
    def get_deployment(self, tenant: str, deployment_id: str) -> Deployment:
        dep = self.store.get_deployment(tenant, deployment_id)
        if dep is None:
            raise NotFound("deployment not found")
        return dep

    def find_deployments(self, tenant: str, query: DeploymentQuery) -> tuple[list[Deployment], int]:
        query.now = self.clock.now()
        return self.store.find_deployments(tenant, query)

    def status_of(self, dep: Deployment) -> str:
        """The deployment status the API shows: `scheduled` while its first phase has not started."""
        if dep.status == m.DEPLOYMENT_PENDING and dep.start_ts and dep.start_ts > self.clock.now():
            return m.DEPLOYMENT_SCHEDULED
        return dep.status

    def statistics_list(self, tenant: str, deployment_ids: list[str]) -> list[Deployment]:
        """The deployments (with their statistics) among these ids; NotFound when none exists."""
        if not deployment_ids:
            raise BadRequest("deployment_ids: at least one id is required")
        if len(deployment_ids) > m.MAX_STATISTICS_LIST_IDS:
            raise BadRequest(f"deployment_ids: at most {m.MAX_STATISTICS_LIST_IDS}")
        deps = self.store.get_deployments(tenant, list(dict.fromkeys(deployment_ids)))
        if not deps:
            raise NotFound("deployments not found")
        return deps

    def phase_statistics(self, tenant: str, deployment_id: str) -> list[tuple[Phase, dict[str, int]]]:
        """Each phase of a phased deployment with its devices by status (one counting query over
        the deployment's devices); `[]` without phases."""
        dep = self.get_deployment(tenant, deployment_id)
        counts = self.store.count_device_statuses_by_phase(tenant, deployment_id)
        return [(phase, {k: int(counts.get(i, {}).get(k, 0)) for k in m.STATISTICS_KEYS})
                for i, phase in enumerate(dep.phases)]

    def device_ids(self, tenant: str, deployment_id: str) -> list[str]:
        self.get_deployment(tenant, deployment_id)
        return self.store.deployment_device_ids(tenant, deployment_id, 0, m.MAX_DEVICES_PER_LIST_DEPLOYMENT)

    def device_deployments(self, tenant: str, deployment_id: str, status: str | None,
                           skip: int = 0, limit: int | None = None) -> tuple[list[DeviceDeployment], int]:
        statuses = _status_filter(status)
        known = _rows_by_counters(self.get_deployment(tenant, deployment_id), statuses)
        dds, counted = self.store.list_device_deployments(tenant, deployment_id, statuses, skip, limit,
                                                          count=known is None)
        return dds, counted if known is None else known

    def each_device_deployment(self, tenant: str, deployment_id: str):
        """Every device deployment of a deployment in device id order, read in batches of
        DEVICE_BATCH (memory bounded by a batch, not by the deployment's size). NotFound is
        raised here, before the first batch."""
        self.get_deployment(tenant, deployment_id)

        def batches():
            after = ""
            while True:
                batch = self.store.device_deployments_after(tenant, deployment_id, after, DEVICE_BATCH)
                if not batch:
                    return
                yield batch
                after = batch[-1].device_id
        return batches()

    def device_log(self, tenant: str, deployment_id: str, device_id: str) -> list[dict]:
        """The messages `{timestamp, level, message}` of a device's deployment log; NotFound."""
        messages = self.store.get_log(tenant, deployment_id, device_id)
        if messages is None:
            raise NotFound("deployment log not found")
        return messages

    def device_history(self, tenant: str, device_id: str, status: str | None, skip: int,
                       limit: int) -> tuple[list[tuple[DeviceDeployment, Deployment]], int]:
        """The device's device deployments (newest first) with their deployments."""
        dds, total = self.store.device_deployments_of_device(tenant, device_id, _status_filter(status),
                                                             include_deleted=True, skip=skip, limit=limit)
        return self._with_deployments(tenant, dds), total

    def device_deployments_by_ids(self, tenant: str, ids: list[str]) -> list[tuple[DeviceDeployment, Deployment]]:
        return self._with_deployments(tenant, self.store.device_deployments_by_ids(tenant, ids))

    def _with_deployments(self, tenant: str, dds: list[DeviceDeployment]):
        deps = {d.id: d for d in self.store.get_deployments(tenant, list({dd.deployment_id for dd in dds}))}
        return [(dd, deps[dd.deployment_id]) for dd in dds if dd.deployment_id in deps]

    def last_device_deployments(self, tenant: str, device_ids: list[str]) -> list[DeviceDeployment]:
        if len(device_ids) > MAX_LAST_DEVICE_IDS:
            raise BadRequest(f"device_ids: at most {MAX_LAST_DEVICE_IDS}")
        return self.store.last_device_deployments(tenant, device_ids)

    def assigned_artifact(self, tenant: str, artifact_id: str | None, cache: dict) -> Artifact | None:
        """The artifact a device deployment was given (None when none was or it is gone);
        `cache` memoizes the lookups of one listing."""
        if not artifact_id:
            return None
        if artifact_id not in cache:
            try:
                cache[artifact_id] = self._services.artifacts.get(tenant, artifact_id)
            except NotFound:
                cache[artifact_id] = None
        return cache[artifact_id]

    def artifact_in_use(self, tenant: str, artifact_id: str) -> bool:
        """Whether an unfinished deployment may still hand this artifact out."""
        try:
            artifact = self._services.artifacts.get(tenant, artifact_id)
        except NotFound:
            return False
        return (self.store.unfinished_deployment_with_artifact(tenant, artifact.name)
                or self.store.device_deployment_uses_artifact(tenant, artifact_id))

    # ------------------------------------------------------------------ writes
    def abort(self, tenant: str, deployment_id: str, actor: str = m.SYSTEM_ACTOR) -> None:
        """Abort: active device deployments become `aborted`, devices that have not asked yet never
        start, the deployment is finished. Raises NotFound, Unprocessable (already finished)."""
        dep = self.get_deployment(tenant, deployment_id)
        if dep.status != m.DEPLOYMENT_FINISHED:
            # finished first: from then on no device is given it (assignments check the status)
            with self.store.transaction():  # one commit on SQLite
                if self.store.set_deployment_status(tenant, deployment_id,
                                                    (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                                    m.DEPLOYMENT_FINISHED, finished=self.clock.now(), aborted=True):
                    self._close_aborted(tenant, dep)
                    self._emit(tenant, deployment_id, m.EVENT_ABORTED, actor, {"reason": "operator"})
                    return
        if dep.aborted:  # aborted before: finish the work of an abort that was interrupted
            self._close_aborted(tenant, dep)
        raise Unprocessable("deployment already finished")

    def pause(self, tenant: str, deployment_id: str, actor: str) -> None:
        """The operator pauses: no new device starts it (devices already installing finish).
        Raises NotFound, Conflict (finished or already paused)."""
        self._unfinished(tenant, deployment_id)
        with self.store.transaction():
            if not self.store.pause_deployment(tenant, deployment_id, "operator", self.clock.now()):
                raise Conflict("deployment is already paused")
            self._emit(tenant, deployment_id, m.EVENT_PAUSED, actor, {"reason": "operator"})

    def resume(self, tenant: str, deployment_id: str, actor: str) -> None:
        """Resume a paused deployment. After a pause by a failure threshold the failures so far
        count as accepted: the deployment pauses again when the failures since the resume cross
        the threshold. Raises NotFound, Conflict (finished or not paused)."""
        dep = self._unfinished(tenant, deployment_id)
        if not dep.paused:
            raise Conflict("deployment is not paused")
        ack = dict(dep.failure_ack)
        if dep.paused_reason == "failure_threshold":
            ack[rollout.phase_key(None)] = rollout.failed_count(dep, None)
            for i in range(len(dep.phases)):
                ack[rollout.phase_key(i)] = rollout.failed_count(dep, i)
        with self.store.transaction():
            if not self.store.resume_deployment(tenant, deployment_id, ack):
                raise Conflict("deployment is not paused")
            self._emit(tenant, deployment_id, m.EVENT_RESUMED, actor,
                       {"paused_reason": dep.paused_reason, "accepted_failures": ack})

    def continue_phase(self, tenant: str, deployment_id: str, actor: str) -> int:
        """Open the next phase now, before its start time or success threshold; returns its index.
        Raises NotFound, Conflict (finished, no phases, or the last phase is open)."""
        dep = self._unfinished(tenant, deployment_id)
        opened = rollout.opened_through(dep, self.clock.now()) if dep.phases else 0
        if opened + 1 >= len(dep.phases):
            raise Conflict("deployment has no next phase")
        with self.store.transaction():
            if not self.store.promote_phase(tenant, deployment_id, opened + 1):
                raise Conflict("the phase was opened meanwhile; try again")
            self._emit(tenant, deployment_id, m.EVENT_PHASE_CONTINUED, actor,
                       {"phase": opened + 1, "from_phase": opened})
        return opened + 1

    def set_control_map(self, tenant: str, deployment_id: str, control_map: Any, actor: str,
                        device_id: str | None = None) -> None:
        """Replace the update control map of a deployment, or of one device's part in it (devices
        read it at their next map refresh). Raises BadRequest (not a map), NotFound (no such
        deployment, or the device has no unfinished part in it), Conflict (finished, or created
        without a map)."""
        control_map = check_control_map(control_map)
        dep = self._unfinished(tenant, deployment_id)
        if dep.update_control_map is None:
            raise Conflict("the deployment was created without an update control map")
        with self.store.transaction():
            if device_id is not None:
                if not self.store.set_device_control_map(tenant, deployment_id, device_id, control_map):
                    raise NotFound("the device has no unfinished part in this deployment")
            elif not self.store.set_control_map(tenant, deployment_id, control_map):
                raise Conflict("deployment is finished")
            self._emit(tenant, deployment_id, m.EVENT_CONTROL_MAP, actor,
                       {"update_control_map": control_map, **({"device_id": device_id} if device_id else {})})

    def events(self, tenant: str, deployment_id: str, skip: int, limit: int) -> tuple[list[DeploymentEvent], int]:
        """The deployment's history (oldest first) and its total. Raises NotFound."""
        self.get_deployment(tenant, deployment_id)
        return self.store.list_events(tenant, deployment_id, skip, limit)

    def _unfinished(self, tenant: str, deployment_id: str) -> Deployment:
        dep = self.get_deployment(tenant, deployment_id)
        if dep.status == m.DEPLOYMENT_FINISHED:
            raise Conflict("deployment is finished")
        return dep

    def delete_tenant(self, tenant: str) -> None:
        """Remove every deployment, device deployment and log of the organization; idempotent."""
        self.store.delete_tenant(tenant)

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
            dd.finished = now
            with self.store.transaction():  # the record, the counters and what they settle: one commit on SQLite
                if self.store.insert_device_deployment(dd):
                    after = self.store.adjust_stats(tenant, dep.id, {m.PENDING: -1, status: 1})
                    self._after_change(after, m.PENDING)

    def reset_history(self, tenant: str, device_id: str) -> None:
        """Forget the device's finished device deployments: it is eligible again for active deployments."""
        self.store.soft_delete_history(tenant, device_id, self.clock.now())


def check_control_map(value: Any) -> dict:
    """An update control map as Mender's deployments service takes it (priority, states with
    actions); BadRequest otherwise."""
    return rollout.check_control_map(value)


def _check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field}: required")
    if len(value) > m.MAX_NAME_LENGTH:
        raise BadRequest(f"{field}: at most {m.MAX_NAME_LENGTH} characters")
    return value


def _rows_by_counters(dep: Deployment, statuses: frozenset[str] | None) -> int | None:
    """How many device deployments the deployment has (with one of `statuses`; None: any), from
    its counters, when they tell exactly; None when they cannot (the rows must be counted). A
    device deployment is counted under its status as it is written or moves. A dynamic
    deployment's counters are its rows. A static one counts its listed devices that never asked,
    which have no row, as pending (once it is aborted: as aborted), so its other statuses only."""
    wanted = m.DEVICE_STATUSES if statuses is None else statuses
    if not dep.dynamic and (m.PENDING in wanted or m.ABORTED in wanted):
        return None
    return sum(max(0, dep.stats.get(s, 0)) for s in wanted)


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
