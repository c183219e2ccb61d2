"""Deployments' records (Deployment, Phase, DeviceDeployment, Instructions) and its statuses as
literal tables. Times are Unix seconds (floats)."""

from __future__ import annotations

from dataclasses import dataclass, field

from deployments.artifacts.model import ArtifactBrief, Link

# Device-deployment statuses (strings on the wire, as Mender's APIs use them).
PENDING = "pending"
DOWNLOADING = "downloading"
INSTALLING = "installing"
REBOOTING = "rebooting"
PAUSE_BEFORE_INSTALLING = "pause_before_installing"
PAUSE_BEFORE_REBOOTING = "pause_before_rebooting"
PAUSE_BEFORE_COMMITTING = "pause_before_committing"
SUCCESS = "success"
FAILURE = "failure"
NOARTIFACT = "noartifact"
ALREADY_INSTALLED = "already-installed"
ABORTED = "aborted"
DECOMMISSIONED = "decommissioned"

# Every device-deployment status, in the order the statistics list them.
DEVICE_STATUSES = (
    SUCCESS, PENDING, FAILURE, DOWNLOADING, INSTALLING, REBOOTING, NOARTIFACT, ALREADY_INSTALLED,
    ABORTED, PAUSE_BEFORE_INSTALLING, PAUSE_BEFORE_REBOOTING, PAUSE_BEFORE_COMMITTING, DECOMMISSIONED,
)
# The statistics object of the API (Mender's has no `decommissioned` key).
STATISTICS_KEYS = tuple(s for s in DEVICE_STATUSES if s != DECOMMISSIONED)

ACTIVE = frozenset({PENDING, DOWNLOADING, INSTALLING, REBOOTING, PAUSE_BEFORE_INSTALLING,
                    PAUSE_BEFORE_REBOOTING, PAUSE_BEFORE_COMMITTING})
TERMINAL = frozenset({SUCCESS, FAILURE, NOARTIFACT, ALREADY_INSTALLED, ABORTED, DECOMMISSIONED})
PAUSED = frozenset({PAUSE_BEFORE_INSTALLING, PAUSE_BEFORE_REBOOTING, PAUSE_BEFORE_COMMITTING})

# What a device may report (PUT .../device/deployments/{id}/status).
REPORTABLE = (DOWNLOADING, INSTALLING, REBOOTING, PAUSE_BEFORE_INSTALLING, PAUSE_BEFORE_REBOOTING,
              PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE, ALREADY_INSTALLED)

_FINAL_REPORTS = {SUCCESS, FAILURE, ALREADY_INSTALLED}

# Device-reported transitions: current status -> statuses the device may report next.
# Repeating the current status is always allowed (the real client repeats `downloading` and
# `installing`); `installing` again after `rebooting` is the commit after the reboot.
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({DOWNLOADING, PAUSE_BEFORE_INSTALLING, INSTALLING, PAUSE_BEFORE_REBOOTING,
                        REBOOTING, PAUSE_BEFORE_COMMITTING} | _FINAL_REPORTS),
    DOWNLOADING: frozenset({PAUSE_BEFORE_INSTALLING, INSTALLING, PAUSE_BEFORE_REBOOTING, REBOOTING,
                            PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE}),
    PAUSE_BEFORE_INSTALLING: frozenset({INSTALLING, PAUSE_BEFORE_REBOOTING, REBOOTING,
                                        PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE}),
    INSTALLING: frozenset({PAUSE_BEFORE_REBOOTING, REBOOTING, PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE}),
    PAUSE_BEFORE_REBOOTING: frozenset({REBOOTING, INSTALLING, PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE}),
    REBOOTING: frozenset({INSTALLING, PAUSE_BEFORE_COMMITTING, SUCCESS, FAILURE}),
    PAUSE_BEFORE_COMMITTING: frozenset({INSTALLING, SUCCESS, FAILURE}),
}

# Deployment types: software (an uploaded artifact), configuration (deviceconfig's, one device).
SOFTWARE = "software"
CONFIGURATION = "configuration"
DEPLOYMENT_TYPES = (SOFTWARE, CONFIGURATION)

# Deployment statuses.
DEPLOYMENT_SCHEDULED = "scheduled"
DEPLOYMENT_PENDING = "pending"
DEPLOYMENT_INPROGRESS = "inprogress"
DEPLOYMENT_FINISHED = "finished"
DEPLOYMENT_STATUSES = (DEPLOYMENT_SCHEDULED, DEPLOYMENT_PENDING, DEPLOYMENT_INPROGRESS, DEPLOYMENT_FINISHED)

# Filters of the per-device lists: a status, or one of these groups.
STATUS_GROUPS = {
    "active": ACTIVE,
    "finished": TERMINAL,
    "pause": PAUSED,
}

MAX_NAME_LENGTH = 256
MAX_LOG_MESSAGES = 10000
MAX_LOG_MESSAGE_LENGTH = 64 * 1024
MAX_DEVICES_PER_LIST_DEPLOYMENT = 100000
MAX_STATISTICS_LIST_IDS = 100
MAX_DEVICES_LIMIT = 2**31 - 1   # largest `max_devices` (any larger fleet is unlimited in practice)
MAX_TIMESTAMP = 253402300799    # 9999-12-31T23:59:59Z: the largest `created_before/after` (Unix seconds)

# What a deployment does when a phase's failures cross its failure_threshold.
FAILURE_PAUSE = "pause"
FAILURE_ABORT = "abort"
FAILURE_ACTIONS = (FAILURE_PAUSE, FAILURE_ABORT)

# The deployment's history: event types.
EVENT_STARTED = "started"                # the first device started
EVENT_PHASE_PROMOTED = "phase_promoted"  # a phase opened (its time came and the previous one succeeded enough)
EVENT_PHASE_CONTINUED = "phase_continued"  # the operator opened the next phase early
EVENT_PAUSED = "paused"
EVENT_RESUMED = "resumed"
EVENT_ABORTED = "aborted"
EVENT_FINISHED = "finished"
EVENT_CONTROL_MAP = "update_control_map"  # the operator changed the update control map
EVENT_TYPES = (EVENT_STARTED, EVENT_PHASE_PROMOTED, EVENT_PHASE_CONTINUED, EVENT_PAUSED, EVENT_RESUMED,
               EVENT_ABORTED, EVENT_FINISHED, EVENT_CONTROL_MAP)
SYSTEM_ACTOR = "system"                  # the actor of automatic decisions


def report_allowed(current: str, new: str) -> bool:
    """Whether a device whose deployment is in `current` may report `new`."""
    if new == current:
        return True
    return new in TRANSITIONS.get(current, frozenset())


@dataclass(slots=True)
class Phase:
    """A phase of a rollout: `batch_size` percent of the devices from `start_ts` on;
    `device_limit` None = the rest (the last phase of a dynamic deployment)."""

    id: str
    batch_size: int | None
    start_ts: float | None
    device_limit: int | None = None
    device_count: int = 0
    failure_threshold: int | None = None   # overrides the deployment's for this phase
    failure_action: str | None = None
    success_threshold: int | None = None   # this phase's successes (percent) before the next one opens
    failed: int = 0                        # its devices now in `failure`
    succeeded: int = 0                     # its devices now in `success`


@dataclass(slots=True)
class MaintenanceWindow:
    """A daily window ("HH:MM" local times in an IANA zone) in which devices may start the
    deployment; `end` before `start` spans midnight."""

    start: str
    end: str
    timezone: str


@dataclass(slots=True)
class Deployment:
    """A deployment. `stats` ({device status: count}) is empty when read without its counters;
    `assigning` lists devices whose assignment is in flight or was interrupted (MongoDB only, see
    DeploymentsStore.assign_device)."""

    id: str
    tenant_id: str
    name: str
    artifact_name: str
    created: float
    status: str = DEPLOYMENT_PENDING
    finished: float | None = None
    start_ts: float | None = None          # the first phase's start
    dynamic: bool = False                  # targets an inventory filter
    max_devices: int = 0                   # static: its device count; dynamic: the cap (0 = none)
    device_count: int = 0                  # devices given it so far
    retry_pending: int = 0                 # failed devices with a retry left
    aborted: bool = False
    groups: list[str] = field(default_factory=list)
    filter: dict | None = None             # {"id"?, "name"?, "terms": [v2 predicates]}
    phases: list[Phase] = field(default_factory=list)
    retries: int = 0
    force_installation: bool = False
    artifacts: list[str] = field(default_factory=list)  # ids of the artifacts of that name at creation
    initial_device_count: int = 0
    type: str = SOFTWARE                   # or CONFIGURATION: one device, an artifact generated from `configuration`
    total_size: int = 0
    checksum: str = ""                     # its constructor: unique among unfinished deployments
    stats: dict[str, int] = field(default_factory=dict)
    assigning: list[str] = field(default_factory=list)
    # rollout safety (see deployments/rollout.py)
    failure_threshold: int | None = None   # percent of a phase's devices failed
    failure_action: str = FAILURE_PAUSE
    success_threshold: int | None = None   # percent of a phase's devices succeeded before the next opens
    window: MaintenanceWindow | None = None
    update_control_map: dict | None = None
    paused: bool = False
    paused_reason: str | None = None
    paused_ts: float | None = None
    current_phase: int = 0                 # the newest phase opened (by its time or the operator)
    failure_ack: dict[str, int] = field(default_factory=dict)  # failures a resume accepted, per phase key
    configuration: str | None = None       # CONFIGURATION: the configuration, a JSON object of strings
    # how the operator chose the devices: {"type": all_devices | group | filter | devices, "group"?,
    # "filter_id"?, "filter_name"?, "device_count"?} (None for deployments made before it was kept)
    target: dict | None = None

    def chosen_target(self) -> dict:
        """The recorded target, or one inferred for deployments made before it was recorded."""
        if self.target:
            return self.target
        if self.filter:
            return target(filter_doc=self.filter)
        if self.groups and self.max_devices != 1:
            return {"type": "group", "group": self.groups[0]}
        return {"type": "devices", "device_count": self.max_devices}


def target(*, devices: list[str] | None = None, all_devices: bool = False, group: str | None = None,
           filter_doc: dict | None = None) -> dict:
    """How the operator chose a deployment's devices, kept with it (the UI and API describe it as
    chosen: all devices, group X, filter Y, or N devices)."""
    if all_devices:
        return {"type": "all_devices"}
    if group is not None:
        return {"type": "group", "group": group}
    if filter_doc is not None:
        out = {"type": "filter"}
        if filter_doc.get("id"):
            out.update(filter_id=filter_doc["id"], filter_name=filter_doc.get("name"))
        return out
    return {"type": "devices", "device_count": len(devices or [])}


@dataclass(slots=True)
class DeviceDeployment:
    """One device's part in a deployment."""

    id: str
    tenant_id: str
    deployment_id: str
    device_id: str
    created: float
    status: str = PENDING
    started: float | None = None
    finished: float | None = None
    substate: str | None = None
    device_type: str | None = None
    artifact_id: str | None = None         # chosen at the device's first poll
    attempts: int = 0
    retries: int = 0
    log: bool = False
    deleted: float | None = None           # history reset
    phase: int | None = None
    control_map: dict | None = None        # the update control map for this device only (operator's PATCH)
    previous_artifact: str | None = None   # the artifact the device ran when it was given the deployment


@dataclass(slots=True)
class DeploymentEvent:
    """One entry of a deployment's history: an automatic decision or an operator's action."""

    id: str
    tenant_id: str
    deployment_id: str
    ts: float
    type: str
    actor: str = SYSTEM_ACTOR              # "system", or the user id of the operator
    detail: dict = field(default_factory=dict)


@dataclass(slots=True)
class Instructions:
    """What a polling device is told to install."""

    deployment_id: str
    artifact: ArtifactBrief
    link: Link
    update_control_map: dict | None = None   # the map in force for this device, when the deployment has one
