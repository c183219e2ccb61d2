"""The auditlogs store interface: append entries, list and page through them, prune old ones."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from auditlogs.model import AuditEntry, EntryFilter


class AuditlogsStore(ABC):
    """Entries are append-only: nothing here changes one; only retention and a tenant's removal
    delete them. Every query takes the tenant ('' = the default organization)."""

    migrations: Sequence

    @abstractmethod
    def insert(self, entries: Sequence[AuditEntry]) -> None:
        """Append entries (one write for all)."""

    @abstractmethod
    def list(self, tenant: str, where: EntryFilter, *, newest_first: bool = True, skip: int = 0,
             limit: int = 20) -> tuple[list[AuditEntry], int]:
        """A page of the tenant's matching entries by time (ties by id), and how many match."""

    @abstractmethod
    def after(self, tenant: str, where: EntryFilter, *, newest_first: bool, cursor: tuple[float, str] | None,
              limit: int) -> list[AuditEntry]:
        """Up to `limit` matching entries following `cursor` (time, id) in the order asked (from
        the first when None): for streaming exports without offsets."""

    @abstractmethod
    def prune(self, before: float, batch: int = 1000) -> int:
        """Delete up to `batch` entries (any tenant) older than `before`; how many were."""

    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every entry of the tenant (the organization is removed)."""

    def ensure_retention(self, seconds: float) -> None:
        """Make the backend expire entries older than `seconds` by itself where it can (MongoDB's
        TTL index); a no-op elsewhere."""


def make_store(db) -> AuditlogsStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from auditlogs.store.sqlite import SqliteAuditlogsStore
        return SqliteAuditlogsStore(db)
    from auditlogs.store.mongo import MongoAuditlogsStore
    return MongoAuditlogsStore(db)
