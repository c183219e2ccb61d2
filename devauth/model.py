"""devauth's records (devices, auth sets, device tokens) and its status names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PENDING, ACCEPTED, REJECTED, PREAUTHORIZED, NOAUTH = "pending", "accepted", "rejected", "preauthorized", "noauth"
AUTH_SET_STATUSES = (PENDING, ACCEPTED, REJECTED, PREAUTHORIZED)
DEVICE_STATUSES = (PENDING, ACCEPTED, REJECTED, PREAUTHORIZED, NOAUTH)


@dataclass(slots=True)
class AuthSet:
    """One identity + public key a device authenticated (or was preauthorized) with."""

    id: str
    tenant_id: str
    device_id: str
    id_hash: str
    pubkey: str        # normalized PEM
    status: str        # one of AUTH_SET_STATUSES
    ts: float


@dataclass(slots=True)
class Device:
    """A device; `auth_sets` is filled by the service where the API shows them (stores leave it empty)."""

    id: str
    tenant_id: str
    id_data: str       # the identity as canonical JSON text
    id_hash: str
    status: str        # one of DEVICE_STATUSES: the aggregate of its auth sets
    created_ts: float
    updated_ts: float
    decommissioning: bool = False
    check_in_time: float | None = None
    accepted_auth_set: str | None = None  # the auth set the latest accept chose (concurrent accepts: it wins)
    revision: int = 0          # bumped before each recomputation of `status` (store.next_revision)
    status_revision: int = 0   # the revision whose recomputation wrote `status`: an older one never overwrites
    auth_sets: list[AuthSet] = field(default_factory=list)

    @property
    def identity(self) -> dict:
        return json.loads(self.id_data)


@dataclass(slots=True)
class DeviceToken:
    """An issued device token (the JWT itself is not stored, only its SHA-256 bound to the signing key)."""

    id: str            # the JWT's jti
    tenant_id: str
    device_id: str
    auth_set_id: str
    iat: float
    exp: float
    token_hash: str | None = None


@dataclass(slots=True)
class TokenContext(DeviceToken):
    """A token with what deciding on it needs: its auth set's status and its device's state
    (None where the auth set or device is gone)."""

    auth_set_status: str | None = None
    device_decommissioning: bool | None = None
    check_in_time: float | None = None


@dataclass(slots=True)
class PreauthorizeResult:
    """The outcome of one row of a bulk preauthorization."""

    row: int
    status: str                  # created | conflict | invalid
    device_id: str | None = None  # the new device, or the existing one of a conflict
    reason: str | None = None
