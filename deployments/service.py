"""Deployments: DeploymentsService assembles the operators' side (service_management) and the
devices' side (service_protocol) around the state changes both make. Plain Python; no Flask."""

from __future__ import annotations

import threading
import uuid

from deployments import model as m
from deployments import rollout
from deployments.events import publish_deployment_event
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment
from deployments.service_insights import FailureInsight
from deployments.service_management import DeploymentManagement
from deployments.service_protocol import DeviceProtocol
from deployments.store import DeploymentsStore

STARTED_MEMORY = 4096  # deployments a process remembers it saw started (see DeploymentsService._pending)


class DeploymentsService(DeploymentManagement, DeviceProtocol, FailureInsight):
    """The rules of deployments. Cross-service: inventory (targets), artifacts (what to hand out)."""

    def __init__(self, store: DeploymentsStore, config: dict, clock, services):
        self.store = store
        self.config = config
        self.clock = clock
        self._services = services
        self._started_ids: dict[tuple[str, str], None] = {}  # oldest first
        self._started_lock = threading.Lock()

    @staticmethod
    def _new_device_deployment(dep: Deployment, device_id: str, device_type: str, phase: int | None,
                               status: str = m.PENDING, previous_artifact: str | None = None) -> DeviceDeployment:
        return DeviceDeployment(id=str(uuid.uuid4()), tenant_id=dep.tenant_id, deployment_id=dep.id,
                                device_id=device_id, created=dep.created, status=status, device_type=device_type,
                                retries=dep.retries, phase=phase, previous_artifact=previous_artifact)

    # ------------------------------------------------------------------ state changes
    def _move(self, dd: DeviceDeployment, status: str, fields: dict | None = None, retry: bool = False) -> bool:
        """Move a device deployment to `status` (if nobody moved it meanwhile) and keep the
        deployment's counters and status exact; `dd` takes the new values. Returns False when it
        lost a race (`dd` unchanged)."""
        tenant, old = dd.tenant_id, dd.status
        now = self.clock.now()
        update = dict(fields or {})
        update["status"] = status
        if old == m.PENDING and status != m.PENDING and not dd.started:
            update["started"] = now
        if status in m.TERMINAL:
            update["finished"] = now
        retry_delta = 0
        if status == m.FAILURE and dd.attempts < dd.retries:
            retry_delta = 1
        if retry:
            retry_delta = -1
        # Only a move into or out of a final status can finish the deployment; the others (the
        # device's downloading → installing → rebooting reports) need no read-back of the counters.
        settles = status in m.TERMINAL or old in m.TERMINAL or retry_delta != 0
        outcomes = {"failed": int(status == m.FAILURE) - int(old == m.FAILURE),
                    "succeeded": int(status == m.SUCCESS) - int(old == m.SUCCESS)}
        if not settles and not (old == m.PENDING and self._pending(tenant, dd.deployment_id)):
            # a move between active statuses of a started deployment: the move and its counters
            # alone (one statement on SQLite, a move carrying its counter change on MongoDB)
            moved, _ = self.store.move_device_deployment(tenant, dd, old, update, {old: -1, status: 1}, fetch=False)
            if not moved:
                return False
            for name, value in update.items():
                setattr(dd, name, value)
            return True
        # the device's move, the counters and the threshold decision they may cross (or the
        # deployment's start): one commit on SQLite; on MongoDB a move that carries its counter
        # change until the deployment has it (store.move_device_deployment) and conditional
        # updates (see _check_failures)
        with self.store.transaction():
            moved, after = self.store.move_device_deployment(tenant, dd, old, update, {old: -1, status: 1},
                                                             retry_pending=retry_delta, fetch=settles,
                                                             phase=dd.phase, phase_outcomes=outcomes)
            if not moved:
                return False
            if settles:
                if not self._after_change(after, old) and status == m.FAILURE:
                    self._check_failures(after, dd.phase)
            elif old == m.PENDING:  # the first device to start makes the deployment in progress
                self._started(tenant, dd.deployment_id)
                self._remember_started(tenant, dd.deployment_id)
        for name, value in update.items():
            setattr(dd, name, value)
        return True

    def _pending(self, tenant: str, deployment_id: str) -> bool:
        """The deployment has not started: a read, unless this process saw it started. Once started
        a deployment never returns to pending, so after the first device's report has started it,
        the first reports of the others (one per device) need not read it again."""
        if (tenant, deployment_id) in self._started_ids:
            return False
        dep = self.store.get_deployment(tenant, deployment_id, counts=False)
        if dep is None:
            return False
        if dep.status == m.DEPLOYMENT_PENDING:
            return True
        self._remember_started(tenant, deployment_id)
        return False

    def _remember_started(self, tenant: str, deployment_id: str) -> None:
        with self._started_lock:
            self._started_ids[(tenant, deployment_id)] = None
            if len(self._started_ids) > STARTED_MEMORY:
                del self._started_ids[next(iter(self._started_ids))]

    def _started(self, tenant: str, deployment_id: str) -> None:
        if self.store.set_deployment_status(tenant, deployment_id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS):
            self._emit(tenant, deployment_id, m.EVENT_STARTED)

    def _after_change(self, dep: Deployment | None, old_status: str) -> bool:
        """A device deployment left `old_status`: the deployment is in progress, or finished
        (True: this call finished it)."""
        if dep is None:
            return False
        if old_status == m.PENDING and dep.status == m.DEPLOYMENT_PENDING:
            self._started(dep.tenant_id, dep.id)
        stats = dep.stats
        if dep.dynamic:
            completed = stats.get(m.SUCCESS, 0) + stats.get(m.FAILURE, 0) - dep.retry_pending
            finished = dep.max_devices > 0 and completed >= dep.max_devices
        else:
            finished = sum(stats.get(s, 0) for s in m.TERMINAL) - dep.retry_pending >= dep.max_devices
        if finished and self.store.set_deployment_status(dep.tenant_id, dep.id,
                                                         (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                                         m.DEPLOYMENT_FINISHED, finished=self.clock.now()):
            self._emit(dep.tenant_id, dep.id, m.EVENT_FINISHED, detail={"statistics": _counts(stats)})
            return True
        return False

    def _check_failures(self, dep: Deployment, phase: int | None) -> None:
        """A device of phase `phase` failed: when the phase's failures crossed its threshold,
        pause or abort the deployment. `dep` holds the counts this very report produced (on
        MongoDB the document its own `$inc` returned), and the pause or abort is conditional on
        that count still holding, so of several concurrent reports at least the one that crossed
        sees it, and exactly one decision is taken."""
        needed = rollout.crossed(dep, phase)
        if needed is None or dep.status == m.DEPLOYMENT_FINISHED:
            return
        threshold, action = rollout.failure_rule(dep, phase)
        detail = {"reason": "failure_threshold", "phase": phase, "failed": rollout.failed_count(dep, phase),
                  "devices": rollout.phase_size(dep, phase), "failure_threshold": threshold}
        tenant, now = dep.tenant_id, self.clock.now()
        if action == m.FAILURE_ABORT:
            if self.store.set_deployment_status(tenant, dep.id, (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                                m.DEPLOYMENT_FINISHED, finished=now, aborted=True,
                                                failed_at_least=(phase, needed)):
                self._close_aborted(tenant, dep)
                self._emit(tenant, dep.id, m.EVENT_ABORTED, detail={**detail, "statistics": _counts(dep.stats)})
        elif not dep.paused and self.store.pause_deployment(tenant, dep.id, "failure_threshold", now,
                                                             failed_at_least=(phase, needed)):
            self._emit(tenant, dep.id, m.EVENT_PAUSED, detail=detail)

    def _emit(self, tenant: str, deployment_id: str, type_: str, actor: str = m.SYSTEM_ACTOR,
              detail: dict | None = None) -> DeploymentEvent:
        """Record an event in the deployment's history and publish it (webhooks, audit log)."""
        event = DeploymentEvent(id=str(uuid.uuid4()), tenant_id=tenant, deployment_id=deployment_id,
                                ts=self.clock.now(), type=type_, actor=actor, detail=detail or {})
        self.store.add_event(event)
        publish_deployment_event(self._services, event)
        return event

    def _close_aborted(self, tenant: str, dep: Deployment) -> None:
        """The rest of an abort, safe to repeat: active device deployments become `aborted`, the
        statistics are counted again from the device deployments; listed devices that never asked
        have no device deployment yet: they count as aborted too, not gone from the counts (the
        statistics still add up to the devices targeted)."""
        with self.store.transaction():
            self.store.close_active_device_deployments(tenant, dep.id, m.ABORTED, self.clock.now())
            counts = self.store.count_device_statuses(tenant, dep.id)
            stats = {s: counts.get(s, 0) for s in m.DEVICE_STATUSES}
            if not dep.dynamic:
                stats[m.ABORTED] += max(0, dep.max_devices - sum(stats.values()))
            self.store.replace_stats(tenant, dep.id, stats)


def _counts(stats: dict[str, int]) -> dict[str, int]:
    return {k: max(0, int(stats.get(k, 0))) for k in m.STATISTICS_KEYS if stats.get(k)}
