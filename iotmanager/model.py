"""Records of the iotmanager service: integrations, events and their deliveries."""

from __future__ import annotations

from dataclasses import dataclass, field

# Mender's three device events, and the deployment events this server adds.
DEVICE_PROVISIONED = "device-provisioned"
DEVICE_DECOMMISSIONED = "device-decommissioned"
DEVICE_STATUS_CHANGED = "device-status-changed"
DEPLOYMENT_STARTED = "deployment-started"
DEPLOYMENT_PHASE_PROMOTED = "deployment-phase-promoted"
DEPLOYMENT_PAUSED = "deployment-paused"
DEPLOYMENT_RESUMED = "deployment-resumed"
DEPLOYMENT_ABORTED = "deployment-aborted"
DEPLOYMENT_FINISHED = "deployment-finished"
EVENT_TYPES = (DEVICE_PROVISIONED, DEVICE_DECOMMISSIONED, DEVICE_STATUS_CHANGED,
               DEPLOYMENT_STARTED, DEPLOYMENT_PHASE_PROMOTED, DEPLOYMENT_PAUSED, DEPLOYMENT_RESUMED,
               DEPLOYMENT_ABORTED, DEPLOYMENT_FINISHED)

PROVIDER_WEBHOOK = "webhook"
PROVIDERS = ("iot-hub", "iot-core", PROVIDER_WEBHOOK)  # Mender's; only webhooks are served here
CREDENTIALS_HTTP = "http"

# A delivery (one event to one integration) is pending until it is delivered or given up.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)

# Device statuses the internal bulk status operation takes (Mender's enum, plus Mender's special
# `decommissioned` that deviceauth sends when a preauthorized device's last auth set is removed).
DEVICE_STATUSES = ("accepted", "noauth", "pending", "preauthorized", "rejected", "decommissioned")


@dataclass(slots=True)
class HTTPCredentials:
    """A webhook's target: `url` (http or https) and an optional HMAC key (`secret`, raw bytes)."""

    url: str
    secret: bytes | None = field(default=None, repr=False)  # never in a repr, a log line or a response


@dataclass(slots=True)
class Integration:
    id: str
    tenant_id: str
    provider: str
    credentials: HTTPCredentials
    description: str = ""
    created_ts: float = 0.0


@dataclass(slots=True)
class Attempt:
    """One try at delivering an event: when, how long, and what came back."""

    ts: float
    duration_ms: int
    success: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None  # the start of the response body, printable characters only


@dataclass(slots=True)
class Delivery:
    """One event on its way to one integration."""

    tenant_id: str
    event_id: str
    integration_id: str
    seq: int
    state: str
    next_attempt_ts: float
    deadline_ts: float
    attempts: list[Attempt] = field(default_factory=list)  # the newest ATTEMPTS_KEPT of them
    attempt_count: int = 0  # all attempts made
    error: str | None = None  # why it failed without an attempt of its own (integration removed)
    body: str | None = None  # the event's exact JSON text (filled where the worker needs it)


@dataclass(slots=True)
class Event:
    """An event as recorded: its exact JSON body (what every delivery posts) and its deliveries."""

    id: str
    tenant_id: str
    type: str
    time: float
    body: str
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass(slots=True)
class Claim:
    """A delivery worker's exclusive hold on one integration's queue until `lease_until`."""

    tenant_id: str
    integration_id: str
    owner: str
    lease_until: float
