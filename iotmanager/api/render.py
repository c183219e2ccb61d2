"""The JSON shapes of the iot-manager APIs, in one place."""

from __future__ import annotations

import json

from common.clock import rfc3339_ms
from iotmanager.model import DELIVERED, PENDING, Delivery, Event, Integration

OMITTED = "<omitted>"  # what Mender shows for a secret that is set


def render_integration(integration: Integration) -> dict:
    http: dict = {"url": integration.credentials.url}
    if integration.credentials.secret:
        http["secret"] = OMITTED
    out = {"id": integration.id, "provider": integration.provider,
           "credentials": {"type": "http", "http": http}}
    if integration.description:
        out["description"] = integration.description
    return out


def _delivery(delivery: Delivery) -> dict:
    last = delivery.attempts[-1] if delivery.attempts else None
    out: dict = {"integration_id": delivery.integration_id, "success": delivery.state == DELIVERED,
                 "state": delivery.state, "attempt_count": delivery.attempt_count}
    if last is not None and last.status_code is not None:
        out["status_code"] = last.status_code
    error = delivery.error or (last.error if last is not None and not last.success else None)
    if error:
        out["error"] = error
    if delivery.state == PENDING:
        out["next_attempt"] = rfc3339_ms(delivery.next_attempt_ts)
    out["attempts"] = [{"time": rfc3339_ms(a.ts), "duration_ms": a.duration_ms, "success": a.success,
                        "status_code": a.status_code, "error": a.error, "response": a.response}
                       for a in delivery.attempts]
    return out


def render_event(event: Event) -> dict:
    """Mender's Event: what was posted (`id`, `type`, `data`, `time` from the exact body) and
    `delivery_statuses`, one per integration, with this server's attempts."""
    body = json.loads(event.body)
    return {"id": body["id"], "type": body["type"], "delivery_statuses": [_delivery(d) for d in event.deliveries],
            "time": body["time"], "data": body["data"]}
