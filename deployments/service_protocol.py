"""The device update protocol (a mixin of DeploymentsService): what a device installs next, its
status reports and its logs."""

from __future__ import annotations

import json
from typing import Any, Callable

from common.errors import BadRequest, Conflict, NotFound
from deployments import model as m
from deployments import rollout
from deployments.artifacts.configure import ConfigurationArtifact
from deployments.artifacts.model import Artifact, ArtifactBrief
from deployments.model import Deployment, DeviceDeployment, Instructions
from deployments.store import ASSIGNED, EXISTS, FINISHED

CANDIDATE_BATCH = 20
POLL_ROWS = 100  # at most this many device deployments read per poll: its newest final one and its active ones
MAX_DYNAMIC_CANDIDATES = 50
MAX_SUBSTATE = 1024
REPORT_RETRIES = 5
# where a device downloads the artifact of a configuration deployment (a signed link, no token)
CONFIGURATION_PATH = "/api/devices/v1/deployments/download/configuration/{deployment_id}/{device_type}/{device_id}"


class DeviceProtocol:
    """Devices' side of DeploymentsService (uses its store, clock, services and state changes)."""

    def next_deployment(self, tenant: str, device_id: str, provides: dict[str, Any],
                        base_url: str | Callable[[], str]) -> Instructions | None:
        """What the device should install next, or None (204).

        `provides` holds at least `device_type` and `artifact_name` (BadRequest otherwise);
        `base_url` is the scheme and host of the links handed out, or a function telling it (called
        only when there is a link to make)."""
        device_type = provides.get("device_type")
        current = provides.get("artifact_name")
        if not isinstance(device_type, str) or not device_type:
            raise BadRequest("device_type: required")
        if not isinstance(current, str) or not current:
            raise BadRequest("artifact_name: required")

        # one read tells the device's active deployment (with its own fields, not its counts) and
        # its artifact (one query on SQLite), and its newest final one (a failure to retry?)
        recent, deployments, briefs = self.store.poll_history(tenant, device_id, POLL_ROWS)
        active = [d for d in recent if d.status in m.ACTIVE]
        dd = min(active, key=lambda d: (d.created, d.id)) if active else None
        dep = None
        if dd is not None:
            dep = deployments.get(dd.deployment_id)
            if dep.status == m.DEPLOYMENT_FINISHED:
                # an abort interrupted before it closed this device deployment: finish its work
                self._close_aborted(tenant, dep)
                return None
            if device_id in dep.assigning:  # its assignment was interrupted after the insert
                self.store.assign_device(tenant, dep, dd.phase, dd)
            if dd.status == m.PENDING and not rollout.may_start(dep, self.clock.now()):
                return None  # paused, or outside its maintenance window: devices that have not started wait
        picked = None
        chosen = False
        if dd is None:
            dd, dep, picked, chosen = self._retry_or_new(tenant, device_id, provides, recent)
        if dd is None:
            return None
        return self._instructions(dd, dep, provides, base_url, briefs, picked, chosen)

    def _retry_or_new(self, tenant: str, device_id: str, provides: dict, recent: list[DeviceDeployment]):
        """(device deployment, deployment, the artifact picked for it at its assignment or None,
        whether that pick was made: None then means that no artifact fits), or (None, None, None,
        False): nothing to do now.

        As Mender's deployments service, a retry is of the device's newest final device
        deployment: a failure with retries left is retried at the device's next poll (or the poll
        waits, if its deployment is paused or outside its window), so no newer one has ended
        before it; and a deployment is assigned only if it is newer than that one."""
        device_type, current_artifact = provides["device_type"], provides["artifact_name"]
        final = [d for d in recent if d.status in m.TERMINAL]
        last = max(final, key=lambda d: (d.created, d.id)) if final else None
        failed = last if last is not None and last.status == m.FAILURE and last.attempts < last.retries else None
        now = self.clock.now()
        if failed is not None:
            dep = self.store.get_deployment(tenant, failed.deployment_id)
            if dep is not None and dep.status != m.DEPLOYMENT_FINISHED:
                if not rollout.may_start(dep, now):
                    return None, None, None, False  # the retry waits for a resume or the window
                if self._move(failed, m.PENDING, {"attempts": failed.attempts + 1, "finished": None,
                                                  "substate": None}, retry=True):
                    return failed, dep, None, False
        after = last.created if last is not None else 0.0
        for dep in self._candidates(tenant, device_id, after):
            resuming = device_id in dep.assigning  # an interrupted assignment: finish it as it began
            if not resuming and not rollout.may_start(dep, now):
                return None, None, None, False  # the oldest applicable deployment is paused or outside its window
            if not resuming and dep.phases:
                self._promote(dep, rollout.opened_through(dep, now))
            phase = None if resuming else rollout.open_phase(dep, now)
            if phase is False:
                return None, None, None, False  # the oldest applicable deployment is waiting for its next phase
            if not resuming and dep.dynamic and dep.max_devices and dep.device_count >= dep.max_devices:
                continue  # capped at max_devices (as the store's claim would say): no artifact to choose
            new = self._new_device_deployment(dep, device_id, device_type, phase, previous_artifact=current_artifact)
            # the artifact is chosen first and written with the assignment (its size counted in
            # the same write): one write transaction per assigning poll, not two
            picked = None if dep.type == m.CONFIGURATION else self._pick_artifact(tenant, dep.artifact_name, provides)
            if picked is not None:
                new.artifact_id = picked.id
            outcome, dd = self.store.assign_device(tenant, dep, phase, new,
                                                   int(picked.size or 0) if picked is not None else 0)
            if outcome == ASSIGNED:
                return dd, dep, picked, dep.type != m.CONFIGURATION
            if outcome == FINISHED:  # aborted while it was being assigned
                self._close_aborted(tenant, dep)
                return None, None, None, False
            if outcome == EXISTS:  # a concurrent poll of this device assigned it first
                if dd is not None and dd.status in m.ACTIVE:
                    return dd, dep, None, False
                continue
            if dep.dynamic:
                continue  # capped at max_devices: move on to newer deployments
            return None, None, None, False  # phase full: wait for the next one
        return None, None, None, False

    def _candidates(self, tenant: str, device_id: str, after: float):
        """Deployments the device may get, oldest first: static ones listing it, and dynamic ones
        whose filter it matches now."""
        merged = self.store.candidate_deployments(tenant, device_id, after, CANDIDATE_BATCH, MAX_DYNAMIC_CANDIDATES)
        inventory = self._services.inventory
        for dep in merged:
            if dep.dynamic and device_id not in dep.assigning:
                if self.store.get_device_deployment(tenant, dep.id, device_id) is not None:
                    continue
                if not inventory.device_matches(tenant, device_id, dep.filter["terms"]):
                    continue
            yield dep

    def _promote(self, dep: Deployment, phase: int) -> None:
        """Record that phase `phase` opened by its time and the previous phase's successes (once:
        the store's update is conditional)."""
        if phase > dep.current_phase and self.store.promote_phase(dep.tenant_id, dep.id, phase):
            self._emit(dep.tenant_id, dep.id, m.EVENT_PHASE_PROMOTED,
                       detail={"phase": phase, "from_phase": dep.current_phase,
                               "start_ts": dep.phases[phase].start_ts})
            dep.current_phase = phase

    def _instructions(self, dd: DeviceDeployment, dep: Deployment, provides: dict,
                      base_url: str | Callable[[], str], briefs: dict[str, ArtifactBrief],
                      picked: Artifact | None = None, chosen: bool = False) -> Instructions | None:
        """The instructions for `dd`. `briefs`: artifacts the store read with the history (any
        other is asked of the artifacts service: a missing one is deleted); `picked`: the artifact
        chosen at this poll's assignment (not read again); `chosen`: that choice was made (None
        then means that none fits: not chosen again)."""
        tenant = dd.tenant_id
        if callable(base_url):
            base_url = base_url()
        device_type = provides["device_type"]
        if dep.type == m.CONFIGURATION:
            return self._configuration_instructions(dd, dep, device_type, base_url)
        artifact: Artifact | ArtifactBrief | None
        if picked is not None and dd.artifact_id == picked.id:
            artifact = picked
        elif dd.artifact_id:
            artifact = briefs.get(dd.artifact_id)
            if artifact is None:
                try:
                    artifact = self._services.artifacts.get_for_device(tenant, dd.artifact_id)
                except NotFound:
                    artifact = None
        else:
            artifact = picked if chosen else self._pick_artifact(tenant, dep.artifact_name, provides)
            if artifact is None:
                self._move(dd, m.NOARTIFACT)
                return None
            self.store.assign_artifact(tenant, dd, artifact.id, device_type, int(artifact.size or 0))
        if artifact is None:
            self._move(dd, m.FAILURE, {"substate": "artifact deleted"})
            return None
        if not dep.force_installation and dd.status == m.PENDING and provides.get("artifact_name") == artifact.name:
            self._move(dd, m.ALREADY_INSTALLED)
            return None
        link = self._services.artifacts.device_link_for(tenant, artifact, base_url)
        return Instructions(dep.id, ArtifactBrief(artifact.id, artifact.name, artifact.device_types, artifact.size,
                                                  artifact.storage_key), link, _control_map(dep, dd))

    def update_control_map(self, tenant: str, device_id: str, deployment_id: str) -> dict:
        """The update control map in force for the device's part in a deployment (its own map if
        the operator set one, else the deployment's), as the client reads it: {"id", "priority",
        "states"}. Raises NotFound (not the device's deployment, finished for it, or no map)."""
        dd = self.store.get_device_deployment(tenant, deployment_id, device_id)
        if dd is None or dd.deleted or dd.status not in m.ACTIVE:
            raise NotFound("deployment not found for this device")
        dep = self.store.get_deployment(tenant, deployment_id, counts=False)
        control_map = _control_map(dep, dd) if dep is not None else None
        if control_map is None:
            raise NotFound("the deployment has no update control map")
        return control_map

    def _configuration_instructions(self, dd: DeviceDeployment, dep: Deployment, device_type: str,
                                    base_url: str) -> Instructions:
        """A configuration deployment: the artifact is made for this device type when the device
        downloads it, through a signed link to this server (as Mender: the artifact's id is the
        deployment's id followed by the device's)."""
        path = CONFIGURATION_PATH.format(deployment_id=dep.id, device_type=device_type, device_id=dd.device_id)
        link = self._services.artifacts.server_link(dd.tenant_id, path, base_url)
        return Instructions(dep.id, ArtifactBrief(dep.id + dd.device_id, dep.artifact_name, [device_type], 0), link,
                            _control_map(dep, dd))

    def configuration_artifact(self, tenant: str, deployment_id: str, device_type: str,
                               device_id: str) -> tuple[Deployment, ConfigurationArtifact]:
        """The generated artifact behind a configuration link: the same bytes for the same
        deployment and device type, every time. NotFound unless it is a configuration deployment
        the device was given."""
        dep = self.store.get_deployment(tenant, deployment_id, counts=False)
        if dep is None or dep.type != m.CONFIGURATION or dep.configuration is None:
            raise NotFound("configuration deployment not found")
        if self.store.get_device_deployment(tenant, deployment_id, device_id) is None:
            raise NotFound("configuration deployment not found for this device")
        return dep, ConfigurationArtifact(name=dep.artifact_name, device_type=device_type,
                                          configuration=json.loads(dep.configuration), mtime=int(dep.created))

    def _pick_artifact(self, tenant: str, artifact_name: str, provides: dict) -> Artifact | None:
        """The smallest artifact of that name compatible with the device type whose depends the
        device's provides satisfy."""
        device_type = provides["device_type"]
        fitting = []
        for a in self._services.artifacts.find_by_name(tenant, artifact_name):
            if device_type not in (a.device_types or []):
                continue
            ok = True
            for key, wanted in (a.depends or {}).items():
                if key == "device_type":
                    continue
                values = wanted if isinstance(wanted, list) else [wanted]
                if provides.get(key) not in values:
                    ok = False
                    break
            if ok:
                fitting.append(a)
        return min(fitting, key=lambda a: (a.size or 0, a.id), default=None)

    def report_status(self, tenant: str, device_id: str, deployment_id: str, status: str,
                      substate: str | None = None) -> None:
        """A device reports progress on its deployment.

        Raises NotFound (not this device's deployment), Conflict (aborted or already finished),
        BadRequest (a status out of order or unknown)."""
        if status not in m.REPORTABLE:
            raise BadRequest(f"status: must be one of {', '.join(m.REPORTABLE)}")
        if substate is not None and len(substate) > MAX_SUBSTATE:
            raise BadRequest(f"substate: at most {MAX_SUBSTATE} characters")
        for _ in range(REPORT_RETRIES):
            dd = self.store.get_device_deployment(tenant, deployment_id, device_id)
            if dd is None or dd.deleted:
                raise NotFound("deployment not found for this device")
            current = dd.status
            if current == m.ABORTED:
                raise Conflict("deployment aborted")
            if current == m.DECOMMISSIONED:
                raise Conflict("device decommissioned")
            if current == status:
                if substate is not None and substate != dd.substate:
                    self.store.update_device_deployment(tenant, dd.id, current, {"substate": substate})
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
        if dd is None or dd.deleted:
            raise NotFound("deployment not found for this device")
        if not messages or len(messages) > m.MAX_LOG_MESSAGES:  # an empty upload would erase the log
            raise BadRequest(f"messages: 1 to {m.MAX_LOG_MESSAGES} entries")
        self.store.save_log(tenant, deployment_id, device_id, messages)
        self.store.update_device_deployment(tenant, dd.id, dd.status, {"log": True})


def _control_map(dep: Deployment, dd: DeviceDeployment) -> dict | None:
    chosen = dd.control_map if dd.control_map is not None else dep.update_control_map
    if chosen is None:
        return None
    return {"id": dep.id, "priority": chosen.get("priority", 0), "states": chosen.get("states", {})}
