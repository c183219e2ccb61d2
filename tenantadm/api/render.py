"""The one place tenantadm records become JSON."""

from __future__ import annotations

from common.tenancy import tenant_to_api
from tenantadm.model import Tenant


def render_tenant(tenant: Tenant, *, with_token: bool = True) -> dict:
    """An organization as the APIs show it (its tenant token only to whom may read it)."""
    out = {"id": tenant_to_api(tenant.id), "name": tenant.name, "status": tenant.status}
    if with_token:
        out["tenant_token"] = tenant.tenant_token
    return out


def render_user(user: dict) -> dict:
    """A user as tenantadm's internal API shows it (Mender's `User`: `name` is the email)."""
    return {"id": user["id"], "tenant_id": tenant_to_api(user["tenant_id"]), "name": user["email"]}
