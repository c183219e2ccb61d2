"""Store interface of deployments and device deployments; `make_store` picks the backend.

Records are `deployments.model`'s Deployment (with its Phases) and DeviceDeployment; times are
Unix seconds (floats) on every backend.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from deployments import model as m
from deployments.artifacts.model import ArtifactBrief
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment


@dataclass
class DeploymentQuery:
    status: str | None = None            # pending | inprogress | finished | scheduled
    type: str | None = None              # software | configuration
    search: str | None = None            # substring of the name or the artifact name
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    created_before: float | None = None  # inclusive
    created_after: float | None = None   # inclusive
    sort_desc: bool = True
    skip: int = 0
    limit: int = 20
    now: float = 0.0                     # to tell scheduled from pending


class DeploymentsStore(ABC):
    """One method per query. Methods raise nothing of their own unless they say so."""

    migrations: list

    def transaction(self):
        """A write transaction spanning several calls where the backend has one (SQLite: one
        commit, one turn of the writer lock); a no-op context on MongoDB, whose updates are
        each atomic and whose callers tolerate the steps landing one by one."""
        return contextlib.nullcontext()

    # -- deployments -------------------------------------------------------------
    @abstractmethod
    def insert_deployment(self, deployment: Deployment, targets: list[str] | None) -> None:
        """Insert a deployment, its stats ({status: n}) and phases, and its static target devices.
        Raises DuplicateDeployment when an unfinished deployment has the same checksum."""

    @abstractmethod
    def get_deployment(self, tenant: str, deployment_id: str, *, counts: bool = True) -> Deployment | None:
        """A deployment; with `counts=False` its statistics and phase device counts may be left
        out (what a polling device needs: one read on every backend)."""

    @abstractmethod
    def get_deployments(self, tenant: str, deployment_ids: list[str]) -> list[Deployment]: ...

    @abstractmethod
    def find_deployments(self, tenant: str, query: DeploymentQuery) -> tuple[list[Deployment], int]:
        """A page of deployments and the total count matching the query."""

    @abstractmethod
    def deployment_device_ids(self, tenant: str, deployment_id: str, skip: int, limit: int) -> list[str]:
        """The device ids a deployment targets: its static list, or (dynamic) the devices it was assigned to."""

    @abstractmethod
    def unfinished_deployment_with_artifact(self, tenant: str, artifact_name: str) -> bool: ...

    @abstractmethod
    def assign_device(self, tenant: str, deployment: Deployment, phase: int | None, dd: DeviceDeployment,
                      size: int = 0) -> tuple[str, DeviceDeployment | None]:
        """Give the device the deployment: count it into the deployment (and into phase `phase`),
        unless the phase's device_limit or a dynamic deployment's max_devices is reached or the
        deployment is finished, and insert its device deployment `dd` (a dynamic deployment also
        counts it `pending` in its statistics); `size` (of the artifact `dd` names, chosen before
        the assignment) is added to the deployment's total_size with the device's count.
        Returns (outcome, device deployment):

        - ASSIGNED, the device deployment written (on MongoDB a resumed assignment's, see below);
        - NO_SLOT, None: nothing changed;
        - EXISTS, the device's existing device deployment of this deployment: nothing changed;
        - FINISHED, the device deployment written: the deployment finished (was aborted) while
          it was being assigned (MongoDB only); the caller closes it.

        SQLite does it in one transaction. MongoDB has no multi-document transaction on a
        standalone server: the slot is claimed in the deployment's document together with a
        note of the assignment (`assigning` lists the device), then the device deployment is
        inserted under the noted id, then the note is settled. Every step is conditional, so
        calling this again for a device listed in `assigning` resumes an interrupted
        assignment without counting the device twice."""
    @abstractmethod
    def assign_artifact(self, tenant: str, dd: DeviceDeployment, artifact_id: str, device_type: str, size: int) -> bool:
        """Record the artifact chosen for a device deployment that has none yet (its status still
        `dd["status"]`) and add its size to the deployment's total_size. False when another
        request assigned one first (nothing changed)."""

    @abstractmethod
    def adjust_stats(self, tenant: str, deployment_id: str, changes: dict[str, int],
                     retry_pending: int = 0, total_size: int = 0, fetch: bool = True,
                     phase: int | None = None, phase_outcomes: dict[str, int] | None = None) -> Deployment | None:
        """Atomically add `changes` ({status: delta}) to the stats (and the other counters, and
        `phase_outcomes` ({"failed"|"succeeded": delta}) to phase `phase`'s); return the
        deployment as it is afterwards, counters included (None when `fetch` is False and
        reading it back would cost more than the update: the caller does not need it). On
        MongoDB the returned document is the one this very update produced, so each of several
        concurrent callers sees the count its own change made."""

    def move_device_deployment(self, tenant: str, dd: DeviceDeployment, expected_status: str, fields: dict,
                               changes: dict[str, int], retry_pending: int = 0, fetch: bool = True,
                               phase: int | None = None,
                               phase_outcomes: dict[str, int] | None = None) -> tuple[bool, Deployment | None]:
        """update_device_deployment, then adjust_stats of its deployment, as one change: (False,
        None) when the device deployment was no longer in `expected_status` (nothing changed),
        else (True, the deployment afterwards as adjust_stats returns it). Here one transaction;
        SQLite overrides it with one statement whose trigger counts the move (in a transaction
        with the rest when there is more to change or to read back), MongoDB with a sequence a
        crash cannot leave half done."""
        with self.transaction():
            if not self.update_device_deployment(tenant, dd.id, expected_status, fields):
                return False, None
            return True, self.adjust_stats(tenant, dd.deployment_id, changes, retry_pending=retry_pending,
                                           fetch=fetch, phase=phase, phase_outcomes=phase_outcomes)

    @abstractmethod
    def set_deployment_status(self, tenant: str, deployment_id: str, from_statuses: tuple[str, ...],
                              status: str, finished: float | None = None, aborted: bool = False,
                              failed_at_least: tuple[int | None, int] | None = None) -> bool:
        """Set the status if the current one is in `from_statuses` (and, with `failed_at_least`
        (phase, n), if that phase's failed count, or the deployment's `failure` count for phase
        None, is at least n); True when changed."""

    # -- rollout control ---------------------------------------------------------------
    @abstractmethod
    def pause_deployment(self, tenant: str, deployment_id: str, reason: str, ts: float,
                         failed_at_least: tuple[int | None, int] | None = None) -> bool:
        """Pause an unfinished deployment that is not paused (and, with `failed_at_least`, only
        while that count holds: the threshold decision and its condition are one conditional
        update); True when this call paused it."""

    @abstractmethod
    def resume_deployment(self, tenant: str, deployment_id: str, failure_ack: dict[str, int]) -> bool:
        """Unpause a paused unfinished deployment and record the failures the resume accepted;
        True when this call resumed it."""

    @abstractmethod
    def promote_phase(self, tenant: str, deployment_id: str, phase: int) -> bool:
        """Set current_phase to `phase` if it is lower and the deployment is unfinished; True when changed."""

    @abstractmethod
    def set_control_map(self, tenant: str, deployment_id: str, control_map: dict) -> bool:
        """Replace the update control map of an unfinished deployment that has one; True when changed."""

    @abstractmethod
    def set_device_control_map(self, tenant: str, deployment_id: str, device_id: str, control_map: dict) -> bool:
        """Set the update control map of one device's unfinished device deployment; True when changed."""

    # -- failure insight ----------------------------------------------------------------------
    @abstractmethod
    def outcome_counts(self, tenant: str, deployment_id: str) -> list[tuple[str | None, str | None, str, int]]:
        """(device_type, previous_artifact, status, count) of the deployment's devices in
        `success` or `failure` (one pass over them)."""

    @abstractmethod
    def outcome_sample(self, tenant: str, deployment_id: str, status: str, limit: int) -> list[str]:
        """Up to `limit` device ids of the deployment in `status`: a uniform, repeatable sample
        (ordered by the random device-deployment id, read in index order)."""

    @abstractmethod
    def logs_of(self, tenant: str, deployment_id: str, device_ids: list[str]) -> list[list[dict]]:
        """The deployment logs of these devices (those that have one)."""

    # -- history ----------------------------------------------------------------------------
    @abstractmethod
    def add_event(self, event: DeploymentEvent) -> None: ...

    @abstractmethod
    def list_events(self, tenant: str, deployment_id: str, skip: int, limit: int) -> tuple[list[DeploymentEvent], int]:
        """A deployment's events, oldest first, and their total."""

    @abstractmethod
    def replace_stats(self, tenant: str, deployment_id: str, stats: dict[str, int]) -> None: ...

    # -- device deployments ------------------------------------------------------------
    @abstractmethod
    def insert_device_deployment(self, dd: DeviceDeployment) -> bool:
        """Insert; False when the device already has a device deployment for that deployment."""

    @abstractmethod
    def get_device_deployment(self, tenant: str, deployment_id: str, device_id: str) -> DeviceDeployment | None: ...

    @abstractmethod
    def device_deployments_by_ids(self, tenant: str, ids: list[str]) -> list[DeviceDeployment]: ...

    @abstractmethod
    def update_device_deployment(self, tenant: str, dd_id: str, expected_status: str, fields: dict) -> bool:
        """Set `fields` (DeviceDeployment field names) if the status is still `expected_status`
        (optimistic); True when updated."""

    @abstractmethod
    def oldest_active_device_deployment(self, tenant: str, device_id: str) -> DeviceDeployment | None:
        """The device's active (not final, not deleted) device deployment with the oldest `created`."""

    @abstractmethod
    def device_deployments_of_device(self, tenant: str, device_id: str, statuses: frozenset[str] | None,
                                     include_deleted: bool, skip: int, limit: int) -> tuple[list[DeviceDeployment], int]: ...

    @abstractmethod
    def poll_device_deployments(self, tenant: str, device_id: str, limit: int) -> list[DeviceDeployment]:
        """The device deployments a poll decides by, none deleted: the device's newest final one
        (by `created`, then id) first if it has one, then its active ones, in no particular
        order; at most `limit` in all. Never the rest of the device's history: a poll's cost must
        not grow with the deployments the device has had (a fleet updated monthly for years)."""

    def poll_history(self, tenant: str, device_id: str, limit: int) -> tuple[
            list[DeviceDeployment], dict[str, Deployment], dict[str, ArtifactBrief]]:
        """poll_device_deployments, the deployments of the active ones among them by id, as
        get_deployment(counts=False) reads them, and the briefs of the artifacts assigned to the
        active ones that the backend read with them, by artifact id (a backend may answer all
        with one query: every poll asks, and a device with a deployment pending needs them).

        The briefs are the artifacts service's own records of the same database, read in the same
        statement (SQLite: deployments and its artifacts share one database, as Mender's
        deployments service keeps images beside deployments); an artifact that is not among them
        (deleted, or not read by this backend) is asked of the artifacts service, which decides."""
        recent = self.poll_device_deployments(tenant, device_id, limit)
        deployments = {}
        for deployment_id in dict.fromkeys(d.deployment_id for d in recent if d.status in m.ACTIVE):
            dep = self.get_deployment(tenant, deployment_id, counts=False)
            if dep is not None:
                deployments[deployment_id] = dep
        return recent, deployments, {}

    @abstractmethod
    def candidate_static_deployments(self, tenant: str, device_id: str, created_after: float,
                                     limit: int) -> list[Deployment]:
        """Unfinished deployments created after `created_after` that list the device and have no
        device deployment for it yet, oldest first."""

    @abstractmethod
    def unfinished_dynamic_deployments(self, tenant: str, created_after: float, limit: int) -> list[Deployment]:
        """Unfinished dynamic (filter) deployments created after `created_after`, oldest first."""

    def candidate_deployments(self, tenant: str, device_id: str, created_after: float, static_limit: int,
                              dynamic_limit: int) -> list[Deployment]:
        """candidate_static_deployments and unfinished_dynamic_deployments together, oldest first
        (a backend may answer both with one query: every poll asks)."""
        static = self.candidate_static_deployments(tenant, device_id, created_after, static_limit)
        dynamic = self.unfinished_dynamic_deployments(tenant, created_after, dynamic_limit)
        return sorted(static + dynamic, key=lambda d: (d.created, d.id))

    @abstractmethod
    def static_deployments_listing(self, tenant: str, device_id: str) -> list[Deployment]:
        """Unfinished deployments that list the device and have no device deployment for it."""

    @abstractmethod
    def list_device_deployments(self, tenant: str, deployment_id: str, statuses: frozenset[str] | None,
                                skip: int, limit: int | None,
                                count: bool = True) -> tuple[list[DeviceDeployment], int | None]:
        """A page of the deployment's device deployments (with one of `statuses`; None: any) in
        device id order, and how many there are in all (None unless `count`: counting reads every
        matching index entry, and the deployment's counters answer most listings)."""

    @abstractmethod
    def device_deployments_after(self, tenant: str, deployment_id: str, after_device_id: str,
                                 limit: int) -> list[DeviceDeployment]:
        """Up to `limit` device deployments of a deployment whose device id sorts after
        `after_device_id`, in device id order (a range of the (tenant, deployment, device) index:
        every batch costs the same however far into the deployment it is)."""

    @abstractmethod
    def count_device_statuses(self, tenant: str, deployment_id: str) -> dict[str, int]: ...

    @abstractmethod
    def deployment_status_counts(self) -> dict[str, int]:
        """Deployments by stored status over every tenant (the /metrics gauge)."""

    @abstractmethod
    def active_device_status_counts(self) -> dict[str, int]:
        """Devices by device-deployment status in unfinished deployments, over every tenant, from
        the deployments' counters (the /metrics gauge)."""

    @abstractmethod
    def count_device_statuses_by_phase(self, tenant: str, deployment_id: str) -> dict[int, dict[str, int]]:
        """{phase index: {status: devices}} of the deployment's device deployments that joined a phase."""

    @abstractmethod
    def close_active_device_deployments(self, tenant: str, deployment_id: str, status: str,
                                        finished: float) -> None:
        """Give every active device deployment of a deployment the final `status` (abort)."""

    @abstractmethod
    def soft_delete_history(self, tenant: str, device_id: str, deleted: float) -> None:
        """Mark the device's final device deployments deleted."""

    @abstractmethod
    def device_deployment_uses_artifact(self, tenant: str, artifact_id: str) -> bool:
        """Whether an active device deployment was assigned this artifact."""

    @abstractmethod
    def last_device_deployments(self, tenant: str, device_ids: list[str]) -> list[DeviceDeployment]:
        """For each device, its newest device deployment (if any)."""

    # -- logs -----------------------------------------------------------------------------
    @abstractmethod
    def save_log(self, tenant: str, deployment_id: str, device_id: str, messages: list[dict]) -> None: ...

    @abstractmethod
    def get_log(self, tenant: str, deployment_id: str, device_id: str) -> list[dict] | None: ...

    # -- organizations --------------------------------------------------------------------
    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every deployment (phases, stats, targets), device deployment and log of the
        organization; idempotent."""


ASSIGNED, NO_SLOT, EXISTS, FINISHED = "assigned", "no_slot", "exists", "finished"


class DuplicateDeployment(Exception):
    """An unfinished deployment with the same constructor already exists."""


def make_store(db) -> DeploymentsStore:
    if db.kind == "sqlite":
        from deployments.store.sqlite import SqliteDeploymentsStore
        return SqliteDeploymentsStore(db)
    from deployments.store.mongo import MongoDeploymentsStore
    return MongoDeploymentsStore(db)
