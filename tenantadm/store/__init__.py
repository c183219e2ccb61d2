"""The tenantadm store interface (organizations and their per-organization limits) and the
backend selector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

from tenantadm.model import Tenant


class TenantadmStore(ABC):
    """One method per query. Names need not be unique (the CLI refuses an ambiguous name)."""

    migrations: Sequence[Any]

    @abstractmethod
    def insert_tenant(self, tenant: Tenant) -> None:
        """Insert an organization; Conflict when its id is taken."""

    @abstractmethod
    def get_tenant(self, tenant_id: str) -> Tenant | None:
        """The organization, or None."""

    @abstractmethod
    def list_tenants(self, *, ids: Sequence[str] | None = None, q: str | None = None,
                     name: str | None = None, skip: int = 0, limit: int = 20) -> tuple[list[Tenant], int]:
        """A page of organizations (oldest first) and the total. `ids` restricts to those ids;
        `q` matches an organization whose id equals it or whose name contains it, `name` one
        whose name is exactly that (both in any case)."""

    @abstractmethod
    def update_tenant(self, tenant_id: str, *, updated_ts: float, name: str | None = None,
                      status: str | None = None, expect_status: Sequence[str] | None = None) -> bool:
        """Set the name and/or status; with `expect_status`, only if the current status is one of
        those. False when nothing matched."""

    @abstractmethod
    def set_token(self, tenant_id: str, tenant_token: str, token_id: str, updated_ts: float) -> bool:
        """Replace the organization's tenant token; False when it does not exist."""

    @abstractmethod
    def delete_tenant(self, tenant_id: str) -> bool:
        """Delete the organization and its limits; False when it did not exist."""

    # limits (per organization; the default organization's too) ----------------------------
    @abstractmethod
    def get_limit(self, tenant_id: str, name: str) -> int | None:
        """A limit of the organization, or None when unset."""

    @abstractmethod
    def set_limit(self, tenant_id: str, name: str, value: int) -> None:
        """Create or replace a limit."""

    @abstractmethod
    def delete_limit(self, tenant_id: str, name: str) -> None:
        """Remove a limit (idempotent)."""


def make_store(db) -> TenantadmStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from tenantadm.store.sqlite import SqliteTenantadmStore
        return SqliteTenantadmStore(db)
    from tenantadm.store.mongo import MongoTenantadmStore
    return MongoTenantadmStore(db)
