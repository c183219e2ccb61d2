"""The `data` of the deployment events posted to webhooks, built from deployments' records (the
Deployment and the history entry deployments publishes). Flask-free: the service calls it."""

from __future__ import annotations

from common.clock import rfc3339

# deployments' history entry types -> the webhook event types (the update-control-map changes an
# operator makes are not announced)
DEPLOYMENT_EVENT_TYPES = {
    "started": "deployment-started",
    "phase_promoted": "deployment-phase-promoted",
    "phase_continued": "deployment-phase-promoted",  # the operator opened the next phase early
    "paused": "deployment-paused",
    "resumed": "deployment-resumed",
    "aborted": "deployment-aborted",
    "finished": "deployment-finished",
}
RESERVED = ("id", "name", "artifact_name", "status", "created", "finished", "device_count", "max_devices",
            "dynamic", "type", "groups", "paused", "actor", "event_id")


def deployment_event_data(dep, status: str, event) -> dict:
    """Mender's deployment fields (`status` as the API shows it: `inprogress` while paused, with
    `paused`), the history entry's `actor` and `event_id`, then its details (`reason`, `phase`,
    `statistics`, ...) as deployments recorded them."""
    out: dict = {"id": dep.id, "name": dep.name, "artifact_name": dep.artifact_name, "status": status,
                 "created": rfc3339(dep.created), "device_count": dep.device_count, "max_devices": dep.max_devices,
                 "dynamic": bool(dep.dynamic), "type": dep.type, "paused": bool(dep.paused),
                 "actor": event.actor, "event_id": event.id}
    if dep.finished:
        out["finished"] = rfc3339(dep.finished)
    if dep.groups:
        out["groups"] = list(dep.groups)
    for key, value in (event.detail or {}).items():
        if key not in RESERVED:
            out[key] = value
    return out
