"""Deployments: DeploymentsService assembles the operators' side (service_management) and the
devices' side (service_protocol) around the state changes both make. Plain Python; no Flask."""

from __future__ import annotations

import uuid

from deployments import model as m
from deployments.model import Deployment, DeviceDeployment
from deployments.service_management import DeploymentManagement
from deployments.service_protocol import DeviceProtocol
from deployments.store import DeploymentsStore


class DeploymentsService(DeploymentManagement, DeviceProtocol):
    """The rules of deployments. Cross-service: inventory (targets), artifacts (what to hand out)."""

    def __init__(self, store: DeploymentsStore, config: dict, clock, services):
        self.store = store
        self.config = config
        self.clock = clock
        self._services = services

    @staticmethod
    def _new_device_deployment(dep: Deployment, device_id: str, device_type: str, phase: int | None,
                               status: str = m.PENDING) -> DeviceDeployment:
        return DeviceDeployment(id=str(uuid.uuid4()), tenant_id=dep.tenant_id, deployment_id=dep.id,
                                device_id=device_id, created=dep.created, status=status, device_type=device_type,
                                retries=dep.retries, phase=phase)

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
        with self.store.transaction():  # the device's move and the counters: one commit on SQLite
            if not self.store.update_device_deployment(tenant, dd.id, old, update):
                return False
            after = self.store.adjust_stats(tenant, dd.deployment_id, {old: -1, status: 1},
                                            retry_pending=retry_delta, fetch=settles)
            if settles:
                self._after_change(after, old)
            elif old == m.PENDING:  # the first device to start makes the deployment in progress
                self.store.set_deployment_status(tenant, dd.deployment_id, (m.DEPLOYMENT_PENDING,),
                                                 m.DEPLOYMENT_INPROGRESS)
        for name, value in update.items():
            setattr(dd, name, value)
        return True

    def _after_change(self, dep: Deployment | None, old_status: str) -> None:
        """A device deployment left `old_status`: the deployment is in progress, or finished."""
        if dep is None:
            return
        if old_status == m.PENDING and dep.status == m.DEPLOYMENT_PENDING:
            self.store.set_deployment_status(dep.tenant_id, dep.id, (m.DEPLOYMENT_PENDING,), m.DEPLOYMENT_INPROGRESS)
        stats = dep.stats
        if dep.dynamic:
            completed = stats.get(m.SUCCESS, 0) + stats.get(m.FAILURE, 0) - dep.retry_pending
            finished = dep.max_devices > 0 and completed >= dep.max_devices
        else:
            finished = sum(stats.get(s, 0) for s in m.TERMINAL) - dep.retry_pending >= dep.max_devices
        if finished:
            self.store.set_deployment_status(dep.tenant_id, dep.id, (m.DEPLOYMENT_PENDING, m.DEPLOYMENT_INPROGRESS),
                                             m.DEPLOYMENT_FINISHED, finished=self.clock.now())

    def _close_aborted(self, tenant: str, deployment_id: str) -> None:
        """The rest of an abort, safe to repeat: active device deployments become `aborted`, the
        statistics are counted again from the device deployments."""
        with self.store.transaction():
            self.store.close_active_device_deployments(tenant, deployment_id, m.ABORTED, self.clock.now())
            counts = self.store.count_device_statuses(tenant, deployment_id)
            self.store.replace_stats(tenant, deployment_id, {s: counts.get(s, 0) for s in m.DEVICE_STATUSES})
