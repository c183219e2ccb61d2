"""deployments' wire seam: deployments, device deployments, statistics, logs and the device
instructions as the API prints them, built here only (the device poll's JSON too: it is the
fleet's hottest response, so it is built directly rather than dumped through a schema)."""

from __future__ import annotations

import json

from common.clock import rfc3339
from common.direct import compact_json
from common.text import escape_controls
from deployments import model as m
from deployments.artifacts.api import render as artifacts_render
from deployments.artifacts.model import Artifact
from deployments.insights import Insights
from deployments.model import Deployment, DeploymentEvent, DeviceDeployment, Instructions, Phase


def image(artifact: Artifact) -> dict:
    """The `image` of DeviceWithImage: an artifact's fields regrouped."""
    a = artifacts_render.artifact(artifact)
    return {"id": a["id"], "meta": {"description": a["description"]},
            "meta_artifact": {k: a[k] for k in ("name", "device_types_compatible", "info", "signed", "updates",
                                                "artifact_provides", "artifact_depends",
                                                "clears_artifact_provides")},
            "size": a["size"], "modified": a["modified"]}


def statistics(dep: Deployment) -> dict:
    """Device counts per status (Mender's keys; never negative)."""
    return {k: max(0, int(dep.stats.get(k, 0))) for k in m.STATISTICS_KEYS}


def statistics_with_pause(dep: Deployment) -> dict:
    """The statistics endpoint's answer: the counts, and whether the deployment is paused."""
    out: dict = statistics(dep)
    out.update(paused_fields(dep))
    return out


def paused_fields(dep: Deployment) -> dict:
    out: dict = {"paused": bool(dep.paused)}
    if dep.paused:
        out["paused_reason"] = dep.paused_reason
        out["paused_ts"] = rfc3339(dep.paused_ts) if dep.paused_ts else None
    return out


def _rules(dep: Deployment) -> dict:
    """The rollout rules a deployment was created with (only those given)."""
    out: dict = {}
    if dep.failure_threshold is not None:
        out["failure_threshold"] = dep.failure_threshold
        out["failure_action"] = dep.failure_action
    if dep.success_threshold is not None:
        out["success_threshold"] = dep.success_threshold
    if dep.window is not None:
        out["maintenance_window"] = {"start": dep.window.start, "end": dep.window.end,
                                     "timezone": dep.window.timezone}
    if dep.update_control_map is not None:
        out["update_control_map"] = dep.update_control_map
    return out


def _phase(p) -> dict:
    out = {"id": p.id, "batch_size": p.batch_size, "start_ts": rfc3339(p.start_ts), "device_count": p.device_count}
    for key in ("failure_threshold", "failure_action", "success_threshold"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    return out


def event(e: DeploymentEvent) -> dict:
    """One entry of a deployment's history."""
    return {"id": e.id, "deployment_id": e.deployment_id, "ts": rfc3339(e.ts), "type": e.type,
            "actor": e.actor, "detail": e.detail}


def statistics_entry(dep: Deployment) -> dict:
    return {"id": dep.id, "stats": statistics_with_pause(dep)}


def phase_statistics(phase: Phase, stats: dict[str, int]) -> dict:
    """One phase of the per-phase breakdown: its plan, the devices that joined it, and theirs by status."""
    return {"id": phase.id, "batch_size": phase.batch_size,
            "start_ts": rfc3339(phase.start_ts) if phase.start_ts else None,
            "device_limit": phase.device_limit, "device_count": phase.device_count, "stats": stats}


def deployment(dep: Deployment, status: str) -> dict:
    """The DeploymentV1/V2 shape; `status` as the service tells it (`scheduled` included)."""
    out = {"id": dep.id, "name": dep.name, "artifact_name": dep.artifact_name, "created": rfc3339(dep.created),
           "status": status, "device_count": dep.device_count, "artifacts": dep.artifacts, "type": dep.type,
           "statistics": {"status": statistics(dep), "total_size": int(dep.total_size)}}
    if dep.finished:
        out["finished"] = rfc3339(dep.finished)
    if dep.groups:
        out["groups"] = dep.groups
    if dep.phases:
        out["phases"] = [_phase(p) for p in dep.phases]
        out["current_phase"] = dep.current_phase
    out["retries"] = dep.retries
    out["max_devices"] = dep.max_devices
    out["initial_device_count"] = dep.initial_device_count
    out["dynamic"] = bool(dep.dynamic)
    if dep.filter:
        out["filter"] = dep.filter
    out.update(paused_fields(dep))
    out.update(_rules(dep))
    if dep.configuration is not None:
        out["configuration"] = configuration(dep.configuration)
    out["target"] = dep.chosen_target()
    return out


def configuration(text: str) -> str:
    """A configuration deployment's configuration as a deployment shows it (Mender's string of a
    JSON object): its keys, with every value withheld (values may be secrets, and deployments
    travel further: lists, exports, integrations; deviceconfig's API shows the values)."""
    return json.dumps({key: "<omitted>" for key in json.loads(text)}, ensure_ascii=False, separators=(",", ":"))


def device_with_image(dd: DeviceDeployment, artifact: Artifact | None) -> dict:
    """A device deployment in the DeviceWithImage shape (`artifact`: the one it was given, if any)."""
    out = {"id": dd.device_id, "status": dd.status, "created": rfc3339(dd.created),
           "device_type": dd.device_type or "", "log": bool(dd.log), "state": dd.status,
           # tries the device has started (a retry waiting to start counts), of 1 + retries allowed
           "attempts": int(dd.attempts or 0) + (1 if dd.started else 0), "retries": int(dd.retries or 0)}
    if dd.phase is not None:
        out["phase"] = dd.phase
    for key in ("started", "finished", "deleted"):
        value = getattr(dd, key)
        if value:
            out[key] = rfc3339(value)
    if dd.substate:
        out["substate"] = dd.substate
    if artifact is not None:
        out["image"] = image(artifact)
    return out


def history_entry(dd: DeviceDeployment, dep: Deployment, status: str, artifact: Artifact | None) -> dict:
    """One entry of a device's deployment history (DeviceDeploymentV1)."""
    return {"id": dd.id, "deployment": deployment(dep, status), "device": device_with_image(dd, artifact)}


def last_status(dd: DeviceDeployment) -> dict:
    return {"device_id": dd.device_id, "deployment_id": dd.deployment_id, "device_deployment_id": dd.id,
            "device_deployment_status": dd.status}


def log_text(messages: list[dict]) -> str:
    """A deployment log as the text operators read: one line per message, `<timestamp> <level>:
    <message>`, each field's control characters escaped (`common.text.escape_controls`) so that no
    message writes a line of its own (or a terminal sequence), whatever a device stored."""
    return "".join(f"{escape_controls(str(msg.get('timestamp', '')))} {escape_controls(str(msg.get('level', '')))}: "
                   f"{escape_controls(str(msg.get('message', '')))}\n" for msg in messages)


def instructions(i: Instructions, with_control_map: bool = False) -> dict:
    """The answer to a device's `next` poll (v2 with the update control map, when there is one)."""
    out = {"id": i.deployment_id, "artifact": {
        "id": i.artifact.id, "artifact_name": i.artifact.name,
        "source": {"uri": i.link.uri, "expire": rfc3339(i.link.expire)},
        "device_types_compatible": i.artifact.device_types or [],
    }}
    if with_control_map and i.update_control_map is not None:
        out["update_control_map"] = i.update_control_map
    return out


# the bodies of the last instructions handed out, by what they are made of (instructions_json)
_BODIES: dict[tuple, bytes] = {}
_BODIES_KEPT = 64


def instructions_json(i: Instructions, with_control_map: bool = False) -> bytes:
    """`instructions(i, with_control_map)` as compact JSON (common.direct.compact_json's bytes).

    The body names nothing of the device (the deployment, the artifact, its link), and the
    devices of a deployment polling within the same second are given the same link (the link
    signer keeps its last one), so their bodies are the same bytes: those are kept by every value
    the body is made of and not encoded again (the JSON escaping of the link alone was ~5 % of a
    200 poll's instructions). A body with an update control map is encoded every time."""
    if with_control_map and i.update_control_map is not None:
        return compact_json(instructions(i, with_control_map))
    artifact, link = i.artifact, i.link
    key = (i.deployment_id, artifact.id, artifact.name, link.uri, link.expire, *(artifact.device_types or ()))
    body = _BODIES.get(key)
    if body is None:
        body = compact_json(instructions(i, with_control_map))
        if len(_BODIES) >= _BODIES_KEPT:
            _BODIES.clear()
        _BODIES[key] = body
    return body


def insights(i: Insights) -> dict:
    """A deployment's failure insight (docs/deployments.md, *Failure insight*)."""
    return {
        "deployment_id": i.deployment_id, "failed": i.failed, "succeeded": i.succeeded,
        "sample": {"failed": i.sampled_failed, "succeeded": i.sampled_succeeded, "logs": i.logs_read},
        "breakdowns": [{"attribute": b.attribute, "scope": b.scope, "value": b.value, "devices": b.devices,
                        "failed": b.failed, "succeeded": b.succeeded, "failure_rate": b.failure_rate,
                        "failure_rate_elsewhere": b.failure_rate_elsewhere,
                        "share_of_failures": b.share_of_failures, "log_odds_ratio": b.log_odds_ratio,
                        "score": b.score, "exact": b.exact} for b in i.breakdowns],
        "error_lines": [{"pattern": e.pattern, "example": e.example, "devices": e.devices} for e in i.error_lines],
    }
