"""Outbound events (Mender's iot-manager, webhooks only): integrations per organization, the one
entry point the rest of the server emits events through, and the events log with every
delivery's outcome.

`emit(tenant, event_type, data)` records the event and a delivery per webhook of the
organization (the outbox), and returns: it never waits for a receiver. The delivery worker
(delivery.py) posts them in the background.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from common.errors import BadRequest, NotFound
from iotmanager import egress
from iotmanager.delivery import DeliveryWorker
from iotmanager.payloads import DEPLOYMENT_EVENT_TYPES, deployment_event_data
from iotmanager.model import (CREDENTIALS_HTTP, DEVICE_DECOMMISSIONED, DEVICE_PROVISIONED, DEVICE_STATUS_CHANGED,
                              DEVICE_STATUSES, EVENT_TYPES, PROVIDER_WEBHOOK, PROVIDERS, Event, HTTPCredentials,
                              Integration)

MAX_INTEGRATIONS = 20  # per organization (Mender allows one)
MAX_EVENT_BYTES = 1024 * 1024  # an event's JSON body
MAX_SECRET_BYTES = 32  # 64 hex digits, as Mender's spec
MAX_BULK_DEVICES = 100  # devices in one internal bulk status request (Mender's)
KEEP_PAST_RETRIES = 3600.0  # an event outlives its last possible retry by this much at least


def event_time(ts: float) -> str:
    """RFC 3339 with microseconds, as the `time` of an event."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IotManagerService:
    def __init__(self, store, config, clock, services, resolver: egress.Resolver | None = None,
                 ready=None):
        self._store = store
        self._config = config
        self._clock = clock
        self._services = services
        self.worker = DeliveryWorker(store, config, clock, resolver=resolver, ready=ready)

    # ------------------------------------------------------------------ integrations
    def create_integration(self, tenant: str, provider: str, credentials: dict, description: str = "") -> Integration:
        """Register a webhook. Raises BadRequest (provider other than webhook, credentials that
        are not `http`, a bad URL or secret), Conflict (the organization has MAX_INTEGRATIONS)."""
        if provider not in PROVIDERS:
            raise BadRequest(f"provider: must be one of {', '.join(PROVIDERS)}")
        if provider != PROVIDER_WEBHOOK:
            raise BadRequest(f"provider: {provider} is not supported by this server (webhook only)")
        integration = Integration(id=str(uuid.uuid4()), tenant_id=tenant, provider=provider,
                                  credentials=self._credentials(provider, credentials),
                                  description=description or "", created_ts=self._clock.now())
        self._store.insert_integration(integration, MAX_INTEGRATIONS)
        self.worker.start()
        return integration

    def _credentials(self, provider: str, credentials: dict) -> HTTPCredentials:
        kind = credentials.get("type")
        if kind != CREDENTIALS_HTTP or not isinstance(credentials.get("http"), dict):
            raise BadRequest(f"credentials: '{provider}' incompatible with credential type '{kind}'")
        http = credentials["http"]
        url = http.get("url")
        try:
            parts = egress.parse_url(url)
        except ValueError as exc:
            raise BadRequest(f"credentials.http.url: {exc}") from None
        if not self._config["IOT_MANAGER_DOMAIN_SKIPVERIFY"]:
            reason = egress.refusal_without_resolving(parts.hostname or "")
            if reason:
                raise BadRequest(f"credentials.http.url: {reason} (deliveries go to public addresses only)")
        return HTTPCredentials(url=url, secret=_secret(http.get("secret")))

    def list_integrations(self, tenant: str, page: int = 1, per_page: int = 20) -> list[Integration]:
        return self._store.list_integrations(tenant, (page - 1) * per_page, per_page)

    def get_integration(self, tenant: str, integration_id: str) -> Integration:
        """NotFound."""
        integration = self._store.get_integration(tenant, integration_id)
        if integration is None:
            raise NotFound("integration not found")
        return integration

    def set_credentials(self, tenant: str, integration_id: str, credentials: dict) -> None:
        """Replace a webhook's URL and secret (deliveries not yet made use them). NotFound, BadRequest."""
        integration = self.get_integration(tenant, integration_id)
        if not self._store.set_credentials(tenant, integration_id,
                                           self._credentials(integration.provider, credentials)):
            raise NotFound("integration not found")

    def delete_integration(self, tenant: str, integration_id: str) -> None:
        """Remove an integration; its undelivered events are given up. NotFound."""
        if not self._store.delete_integration(tenant, integration_id, self._clock.now()):
            raise NotFound("integration not found")

    # ------------------------------------------------------------------ events
    def emit(self, tenant: str, event_type: str, data: dict) -> str | None:
        """Record an event for every webhook of the organization, to be delivered in the background.

        Returns the event id, or None when the organization has no webhook (nothing is kept).
        Never waits for a receiver. On SQLite it writes in the caller's transaction when there is
        one, so the event commits (or not) with the change it reports. Raises ValueError for an
        unknown type, data that is not a JSON object with a string `id`, or a body over
        MAX_EVENT_BYTES (the caller's mistakes)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ValueError("event data must be a JSON object with a string id")
        recipients = self._store.webhook_ids(tenant)
        if not recipients:
            return None
        now = self._clock.now()
        event_id = str(uuid.uuid4())
        body = json.dumps({"id": event_id, "type": event_type, "data": data, "time": event_time(now)},
                          separators=(",", ":"))
        if len(body) > MAX_EVENT_BYTES:
            raise ValueError(f"event body over {MAX_EVENT_BYTES} bytes")
        retry = float(self._config["IOT_MANAGER_WEBHOOKS_RETRY_MAX_SECONDS"])
        keep = max(float(self._config["IOT_MANAGER_EVENT_EXP_TIMEOUT"]), retry + KEEP_PAST_RETRIES)
        event = Event(id=event_id, tenant_id=tenant, type=event_type, time=now, body=body)
        if not self._store.enqueue(event, recipients, now, now + retry, now + keep):
            return None
        self.worker.notify()
        return event_id

    def deployment_event(self, event) -> None:
        """deployments' consumer hook (deployments.events.publish_deployment_event): a history entry
        (`DeploymentEvent`) becomes the matching `deployment-*` event, with the deployment as it is
        now. Called inside the transaction of the decision it reports (SQLite: it commits with it)."""
        event_type = DEPLOYMENT_EVENT_TYPES.get(event.type)
        if event_type is None or not self._store.webhook_ids(event.tenant_id):
            return  # nothing to announce, or nobody to tell: the deployment is not even read
        deployments = self._services.deployments
        dep = deployments.get_deployment(event.tenant_id, event.deployment_id)
        self.emit(event.tenant_id, event_type, deployment_event_data(dep, deployments.status_of(dep), event))

    def list_events(self, tenant: str, integration_id: str | None = None, page: int = 1,
                    per_page: int = 20) -> list[Event]:
        """Events newest first, each with its deliveries and their attempts."""
        return self._store.list_events(tenant, integration_id, (page - 1) * per_page, per_page)

    # ------------------------------------------------------------------ Mender's internal operations
    def provision_device(self, tenant: str, device: dict) -> str | None:
        """A device was accepted for the first time: `device-provisioned` with what is given of
        `id`, `status`, `auth_sets`, `created_ts`."""
        data = {k: device[k] for k in ("id", "status", "auth_sets", "created_ts") if device.get(k) is not None}
        return self.emit(tenant, DEVICE_PROVISIONED, data)

    def decommission_device(self, tenant: str, device_id: str) -> str | None:
        """A device was decommissioned: `device-decommissioned` with its id."""
        return self.emit(tenant, DEVICE_DECOMMISSIONED, {"id": device_id})

    def set_device_statuses(self, tenant: str, status: str, device_ids: list[str]) -> None:
        """Devices changed status: a `device-status-changed` each. BadRequest for an unknown
        status or more than MAX_BULK_DEVICES devices."""
        if status not in DEVICE_STATUSES:
            raise BadRequest(f"status: must be one of {', '.join(DEVICE_STATUSES)}")
        if len(device_ids) > MAX_BULK_DEVICES:
            raise BadRequest(f"too many bulk items: max {MAX_BULK_DEVICES} items per request")
        for device_id in device_ids:
            self.emit(tenant, DEVICE_STATUS_CHANGED, {"id": device_id, "status": status})

    def delete_tenant(self, tenant: str) -> None:
        """Every integration, event and delivery of the organization."""
        self._store.delete_tenant(tenant)

    def device_state(self, tenant: str, device_id: str) -> None:
        """Device twins (desired/reported state) belong to IoT Hub and IoT Core integrations,
        which this server does not offer: always NotFound."""
        raise NotFound("device not found: no integration of this server keeps device state "
                       "(IoT Hub and IoT Core are not supported)")


def _secret(value) -> bytes | None:
    """The HMAC key from its hexadecimal form; BadRequest naming the field."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest("credentials.http.secret: must be a hexadecimal string")
    try:
        secret = bytes.fromhex(value)
    except ValueError:
        raise BadRequest("credentials.http.secret: must be a hexadecimal string of whole bytes") from None
    if any(c.isspace() for c in value):
        raise BadRequest("credentials.http.secret: must be a hexadecimal string of whole bytes")
    if len(secret) > MAX_SECRET_BYTES:
        raise BadRequest(f"credentials.http.secret: at most {2 * MAX_SECRET_BYTES} hexadecimal digits")
    return secret
