"""Where deployment events leave the deployments service: `publish_deployment_event`, the one
function the outbound integrations (iotmanager's webhooks) and the audit log connect to."""

from __future__ import annotations

import structlog

from deployments.model import DeploymentEvent

log = structlog.get_logger("deployments.events")

# Services that may take deployment events: each, when present in `services`, offers
# `deployment_event(event: DeploymentEvent) -> None`, which must not block (queue, then deliver).
CONSUMERS = ("iotmanager", "auditlogs")


def publish_deployment_event(services, event: DeploymentEvent) -> None:
    """Hand an event, already written to the deployment's history, to the consumers present.
    A consumer's failure is logged, never raised: the decision it reports has been made."""
    log.info("deployment_event", deployment_id=event.deployment_id, type=event.type, actor=event.actor)
    for name in CONSUMERS:
        consumer = getattr(getattr(services, name, None), "deployment_event", None)
        if consumer is None:
            continue
        try:
            consumer(event)
        except Exception:  # noqa: BLE001 - a consumer must not undo or fail the decision
            log.exception("deployment_event_consumer_failed", consumer=name, deployment_id=event.deployment_id)
