"""Who is calling: the value authenticators return and services take (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling: a device or a user of a tenant ('' is the default tenant)."""

    subject: str
    tenant: str = ""
    is_device: bool = False
    is_user: bool = False
    token_id: str | None = None
    claims: dict = field(default_factory=dict, compare=False, repr=False)
    # a user's roles as they are at this request (a personal access token's: the subset it acts
    # with); None when not known (devices, internal callers)
    roles: tuple[str, ...] | None = None


DEFAULT_TENANT_SEGMENT = "default"


def tenant_in_path(segment: str) -> str:
    """The tenant an internal API path names: `default` (or an empty segment) is the default tenant ''.

    Routes take the organization with the `<tenant:tenant_id>` converter (common.api.TenantConverter),
    which hands the view the stored id already (tests/tenantadm/test_internal_ids.py insists); this
    is idempotent on its result."""
    return "" if segment in (DEFAULT_TENANT_SEGMENT, "") else segment
