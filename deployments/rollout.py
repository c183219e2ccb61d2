"""Rollout safety rules as plain functions over records: failure and success thresholds per
phase, maintenance windows, which phase is open. The service applies them; the stores make the
decisions atomic (see DeploymentsStore.pause_deployment)."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.errors import BadRequest
from deployments import model as m
from deployments.model import Deployment, MaintenanceWindow

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
UNPHASED = "all"   # the key of an unphased deployment's counters (failure_ack)


def phase_key(phase: int | None) -> str:
    return UNPHASED if phase is None else str(phase)


def failure_rule(dep: Deployment, phase: int | None) -> tuple[int | None, str]:
    """(failure_threshold, failure_action) in force for a device of phase `phase`."""
    threshold, action = dep.failure_threshold, dep.failure_action or m.FAILURE_PAUSE
    if phase is not None and phase < len(dep.phases):
        p = dep.phases[phase]
        if p.failure_threshold is not None:
            threshold = p.failure_threshold
        if p.failure_action:
            action = p.failure_action
    return threshold, action


def phase_size(dep: Deployment, phase: int | None) -> int:
    """The denominator of a phase's percentages: its planned devices (a static phase), else the
    devices it has been given so far (a dynamic deployment's open-ended last phase, or an
    uncapped dynamic deployment)."""
    if phase is None:
        if dep.dynamic and not dep.max_devices:
            return dep.device_count
        return dep.max_devices
    p = dep.phases[phase]
    return p.device_limit if p.device_limit is not None else p.device_count


def failed_count(dep: Deployment, phase: int | None) -> int:
    if phase is None:
        return dep.stats.get(m.FAILURE, 0)
    return dep.phases[phase].failed


def failures_needed(dep: Deployment, phase: int | None) -> int | None:
    """How many failed devices of the phase cross its failure threshold (counting from the
    failures a resume accepted); None without a threshold.

    failed / size ≥ threshold / 100  ⇔  failed ≥ ⌈threshold × size / 100⌉ (at least one)."""
    threshold, _ = failure_rule(dep, phase)
    if threshold is None:
        return None
    size = phase_size(dep, phase)
    needed = max(1, math.ceil(threshold * size / 100))
    return dep.failure_ack.get(phase_key(phase), 0) + needed


def crossed(dep: Deployment, phase: int | None) -> int | None:
    """The failure count that crossed the phase's threshold, when it is crossed now."""
    needed = failures_needed(dep, phase)
    if needed is None or failed_count(dep, phase) < needed:
        return None
    return needed


def success_reached(dep: Deployment, phase: int) -> bool:
    """Whether phase `phase` reached its success threshold (the phase's own, else the deployment's)."""
    p = dep.phases[phase]
    threshold = p.success_threshold if p.success_threshold is not None else dep.success_threshold
    if threshold is None:
        return True
    size = phase_size(dep, phase)
    return p.succeeded * 100 >= threshold * size


def opened_through(dep: Deployment, now: float) -> int:
    """The highest phase open now: phase i opens when the operator continued to it, or when its
    start_ts has come and phase i-1 reached its success threshold."""
    last = dep.current_phase
    for i in range(dep.current_phase + 1, len(dep.phases)):
        p = dep.phases[i]
        if (p.start_ts is not None and p.start_ts > now) or not success_reached(dep, i - 1):
            break
        last = i
    return last


def open_phase(dep: Deployment, now: float) -> int | None | bool:
    """The index of the phase a new device joins (None without phases), or False when every open
    phase is full."""
    if not dep.phases:
        return None
    if dep.phases[0].start_ts is not None and dep.phases[0].start_ts > now and dep.current_phase == 0:
        return False  # scheduled: not started yet
    for i in range(opened_through(dep, now) + 1):
        phase = dep.phases[i]
        if phase.device_limit is None or phase.device_count < phase.device_limit:
            return i
    return False


# ---------------------------------------------------------------- maintenance windows

def _minutes(value: str, field: str) -> int:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise BadRequest(f"{field}: a time of day HH:MM (00:00 to 23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadRequest(f"maintenance_window.timezone: unknown time zone {name!r}") from None


def check_window(window: dict | None) -> MaintenanceWindow | None:
    """A maintenance window from its request form; BadRequest when it is not one."""
    if window is None:
        return None
    tz = window.get("timezone") or "UTC"
    if not isinstance(tz, str) or len(tz) > 64:
        raise BadRequest("maintenance_window.timezone: an IANA time zone name")
    start = _minutes(window.get("start"), "maintenance_window.start")
    end = _minutes(window.get("end"), "maintenance_window.end")
    if start == end:
        raise BadRequest("maintenance_window: start and end must differ")
    _zone(tz)
    return MaintenanceWindow(start=window["start"], end=window["end"], timezone=tz)


def in_window(window: MaintenanceWindow | None, now: float) -> bool:
    """Whether `now` falls inside the daily window (always, without one). The local wall clock
    decides, so a window keeps its local hours across daylight-saving changes."""
    if window is None:
        return True
    local = datetime.fromtimestamp(now, tz=timezone.utc).astimezone(_zone(window.timezone))
    minute = local.hour * 60 + local.minute
    start, end = _minutes(window.start, "start"), _minutes(window.end, "end")
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end   # spans midnight


def may_start(dep: Deployment, now: float) -> bool:
    """Whether a device that has not started may start this deployment now."""
    return not dep.paused and dep.status != m.DEPLOYMENT_FINISHED and in_window(dep.window, now)


def check_threshold(value, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
        raise BadRequest(f"{field}: a percentage between 1 and 100")
    return value


def check_action(value, field: str) -> str | None:
    if value is None:
        return None
    if value not in m.FAILURE_ACTIONS:
        raise BadRequest(f"{field}: one of {', '.join(m.FAILURE_ACTIONS)}")
    return value


# ---------------------------------------------------------------- update control maps (Mender's)

CONTROL_STATES = ("ArtifactInstall_Enter", "ArtifactReboot_Enter", "ArtifactCommit_Enter")
CONTROL_ACTIONS = ("continue", "force_continue", "pause", "fail")
MAP_EXPIRE_ACTIONS = ("continue", "force_continue", "fail")
MAX_PRIORITY = 10   # the client refuses a map whose priority is outside [-10, 10]


def check_control_map(value) -> dict:
    """An update control map ({"priority"?, "states": {state: {"action", "on_map_expire"?,
    "on_action_executed"?}}}) with only Mender's states and actions; BadRequest otherwise."""
    if not isinstance(value, dict):
        raise BadRequest("update_control_map: an object")
    unknown = set(value) - {"priority", "states", "id"}  # the client refuses unknown fields
    if unknown:
        raise BadRequest(f"update_control_map: unknown field(s) {', '.join(sorted(unknown))}")
    priority = value.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not -MAX_PRIORITY <= priority <= MAX_PRIORITY:
        raise BadRequest("update_control_map.priority: an integer")
    states = value.get("states", {})
    if not isinstance(states, dict):
        raise BadRequest("update_control_map.states: an object")
    out_states = {}
    for state, rule in states.items():
        where = f"update_control_map.states.{state}"
        if state not in CONTROL_STATES:
            raise BadRequest(f"update_control_map.states: {state!r} is not one of {', '.join(CONTROL_STATES)}")
        if not isinstance(rule, dict) or set(rule) - {"action", "on_map_expire", "on_action_executed"}:
            raise BadRequest(f"{where}: an object of action, on_map_expire, on_action_executed")
        for key, allowed in (("action", CONTROL_ACTIONS), ("on_map_expire", MAP_EXPIRE_ACTIONS),
                             ("on_action_executed", CONTROL_ACTIONS)):
            if key in rule and rule[key] not in allowed:
                raise BadRequest(f"{where}.{key}: one of {', '.join(allowed)}")
        out_states[state] = {k: rule[k] for k in ("action", "on_map_expire", "on_action_executed") if k in rule}
    return {"priority": priority, "states": out_states}
