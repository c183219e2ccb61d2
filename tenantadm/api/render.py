"""The one place tenantadm records become JSON."""

from __future__ import annotations

from common.tenancy import tenant_to_api
from tenantadm.model import Limits, Tenant
from useradm.model import User


def render_tenant(tenant: Tenant, *, with_token: bool = True) -> dict:
    """An organization as the APIs show it (its tenant token only to whom may read it)."""
    out = {"id": tenant_to_api(tenant.id), "name": tenant.name, "status": tenant.status}
    if with_token:
        out["tenant_token"] = tenant.tenant_token
    return out


def render_user(user: User) -> dict:
    """A user as tenantadm's internal API shows it (Mender's `User`: `name` is the email)."""
    return {"id": user.id, "tenant_id": tenant_to_api(user.tenant_id), "name": user.email}


def render_limits(limits: Limits) -> dict:
    """An organization's limits with their usage: `{devices, users, storage}`, each `{limit, usage}`."""
    return {kind: {"limit": u.limit, "usage": u.usage}
            for kind, u in (("devices", limits.devices), ("users", limits.users), ("storage", limits.storage))}
