"""Deployment and device-deployment statuses, as literal tables."""

from __future__ import annotations

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
MAX_LOG_BYTES = 1024 * 1024  # the request body limit already caps a log upload at 1 MiB
MAX_DEVICES_PER_LIST_DEPLOYMENT = 100000
MAX_STATISTICS_LIST_IDS = 100
MAX_DEVICES_LIMIT = 2**31 - 1   # largest `max_devices` (any larger fleet is unlimited in practice)
MAX_TIMESTAMP = 253402300799    # 9999-12-31T23:59:59Z: the largest `created_before/after` (Unix seconds)


def report_allowed(current: str, new: str) -> bool:
    """Whether a device whose deployment is in `current` may report `new`."""
    if new == current:
        return True
    return new in TRANSITIONS.get(current, frozenset())
