"""Organizations (tenants) as records, and their statuses."""

from __future__ import annotations

from dataclasses import dataclass

ACTIVE, SUSPENDED, INACTIVE = "active", "suspended", "inactive"
STATUSES = (ACTIVE, SUSPENDED, INACTIVE)


@dataclass(slots=True)
class Tenant:
    """An organization. `id` "" is the default organization (shown as `default`).

    `tenant_token` is the token devices of the organization present (readable by its users);
    `token_id` is that token's `jti`: tokens signed for the organization under another id are
    retired ones (see TenantadmService.admit)."""

    id: str
    name: str
    status: str
    tenant_token: str
    token_id: str
    created_ts: float
    updated_ts: float


@dataclass(slots=True, frozen=True)
class Admission:
    """What a device's tenant token says: the organization, and whether the token is the
    organization's current one (False: a retired token, which only re-admits approved keys)."""

    tenant: str
    current: bool


@dataclass(slots=True, frozen=True)
class Usage:
    """One limit of an organization and how much of it is used."""

    limit: int  # devices and users: -1 unlimited; storage bytes: 0 unlimited (as Mender's APIs)
    usage: int


@dataclass(slots=True, frozen=True)
class Limits:
    """An organization's limits with their usage."""

    devices: Usage
    users: Usage
    storage: Usage
