"""The devauth store interface (devices, auth sets, tokens, limits) and the backend selector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Iterable, Sequence

from devauth.model import AuthSet, Device, DeviceToken, TokenContext


class DevauthStore(ABC):
    """One method per query. Every method takes the tenant ('' = default) except `get_token`,
    whose key (the jti) is globally unique; its row carries the tenant to check against.

    Records are `devauth.model`'s Device, AuthSet, DeviceToken and TokenContext.
    """

    migrations: list

    @abstractmethod
    def transaction(self) -> AbstractContextManager:
        """A write transaction where the backend has one (SQLite); a no-op context on MongoDB,
        whose single-document updates are atomic on their own."""

    # devices ---------------------------------------------------------------
    @abstractmethod
    def insert_device(self, device: Device) -> None:
        """Insert a device; Conflict when (tenant, id_hash) exists."""

    @abstractmethod
    def import_devices(self, tenant: str, pairs: Sequence[tuple[Device, AuthSet]]) -> list[str]:
        """Bulk-insert new devices, each with its one auth set (a fleet seeded or migrated in,
        not row by row). A device whose identity hash exists already is skipped with its auth
        set. Returns the ids of the devices inserted. Safe to repeat after a crash: the auth sets
        go in first, and an auth set without its device is an orphan the auth path discards."""

    @abstractmethod
    def get_device(self, tenant: str, device_id: str) -> Device | None:
        """The device, or None."""

    @abstractmethod
    def get_device_by_hash(self, tenant: str, id_hash: str) -> Device | None:
        """The device with this identity hash, or None."""

    @abstractmethod
    def update_device(self, tenant: str, device_id: str, fields: dict) -> bool:
        """Set fields of a device; False when it does not exist."""

    @abstractmethod
    def next_revision(self, tenant: str, device_id: str) -> int | None:
        """Atomically add one to the device's revision and return it (None: no such device)."""

    @abstractmethod
    def set_device_status(self, tenant: str, device_id: str, status: str, revision: int, updated_ts: float) -> bool:
        """Write the status computed at `revision` unless one computed at a later revision is
        stored already (then False: a newer view of the auth sets won)."""

    @abstractmethod
    def touch_check_ins(self, tenant: str, device_ids: list[str], ts: float, older_than: float) -> list[str]:
        """Set check_in_time = ts on each of these devices of the tenant where it is unset or
        older than `older_than`; returns the ids written."""

    @abstractmethod
    def mark_provisioned(self, tenant: str, device_id: str) -> bool:
        """Flag the device as provisioned (accepted once, announced to the integrations); True only
        for the call that set the flag, so one acceptance among concurrent ones announces it."""

    @abstractmethod
    def delete_device(self, tenant: str, device_id: str) -> bool:
        """Delete a device (not its auth sets); False when it did not exist."""

    @abstractmethod
    def list_devices(self, tenant: str, statuses: Iterable[str] | None = None,
                     ids: Iterable[str] | None = None, skip: int = 0, limit: int = 20) -> list[Device]:
        """Devices oldest first (created_ts, id), optionally filtered by status and id."""

    @abstractmethod
    def count_devices(self, tenant: str, statuses: Iterable[str] | None = None,
                      ids: Iterable[str] | None = None) -> int:
        """How many devices match the filters of list_devices."""

    @abstractmethod
    def status_counts(self) -> dict[str, int]:
        """Devices by status over every tenant (the /metrics gauge)."""

    # auth sets -------------------------------------------------------------
    @abstractmethod
    def insert_auth_set(self, auth_set: AuthSet) -> None:
        """Insert an auth set; Conflict when (tenant, id_hash, pubkey) exists."""

    @abstractmethod
    def get_auth_set(self, tenant: str, auth_set_id: str) -> AuthSet | None:
        """The auth set, or None."""

    @abstractmethod
    def get_auth_set_by_key(self, tenant: str, id_hash: str, pubkey: str) -> AuthSet | None:
        """The auth set of this identity and normalized key, or None."""

    @abstractmethod
    def list_auth_sets(self, tenant: str, device_ids: Iterable[str]) -> list[AuthSet]:
        """Auth sets of these devices, oldest first (ts, id)."""

    @abstractmethod
    def set_auth_set_status(self, tenant: str, auth_set_id: str, status: str) -> bool:
        """Set an auth set's status; False when it does not exist."""

    @abstractmethod
    def replace_auth_set_status(self, tenant: str, device_id: str, old: str, new: str,
                                except_id: str | None = None) -> int:
        """Move the device's auth sets in status `old` (but `except_id`) to `new`; the count moved."""

    @abstractmethod
    def delete_auth_set(self, tenant: str, auth_set_id: str) -> bool:
        """Delete one auth set; False when it did not exist."""

    @abstractmethod
    def delete_auth_sets_of_device(self, tenant: str, device_id: str) -> int:
        """Delete every auth set of a device; the count deleted."""

    # tokens ------------------------------------------------------------------
    @abstractmethod
    def insert_token(self, token: DeviceToken) -> None:
        """Record an issued token."""

    def issue_token(self, token: DeviceToken, keep: int) -> None:
        """insert_token, then prune_tokens of its device as of the token's `iat` (its expired
        tokens go, and all but its `keep` newest, this one included). Here two single writes
        (MongoDB: each atomic, a crash between them leaves tokens that the next issue prunes);
        SQLite overrides it with one statement whose trigger prunes."""
        self.insert_token(token)
        self.prune_tokens(token.tenant_id, token.device_id, token.iat, keep)

    @abstractmethod
    def get_token(self, jti: str) -> DeviceToken | None:
        """The token row by jti (any tenant: the caller checks the tenant), or None."""

    @abstractmethod
    def get_token_context(self, jti: str) -> TokenContext | None:
        """The token with its auth set's status and its device's decommissioning flag and
        check-in time (None where they are missing); None when the token does not exist."""

    @abstractmethod
    def delete_token(self, tenant: str, jti: str) -> bool:
        """Delete a token; False when it did not exist."""

    @abstractmethod
    def delete_tokens(self, tenant: str, device_id: str | None = None) -> int:
        """Delete the tokens of one device, or of the whole tenant; the count deleted."""

    @abstractmethod
    def prune_tokens(self, tenant: str, device_id: str, now: float, keep: int) -> int:
        """Delete the device's expired tokens and all but its `keep` newest; the count deleted."""

    # limits ------------------------------------------------------------------
    @abstractmethod
    def get_limit(self, tenant: str, name: str) -> int | None:
        """A tenant's limit, or None when unset."""

    @abstractmethod
    def set_limit(self, tenant: str, name: str, value: int) -> None:
        """Create or replace a tenant's limit."""

    @abstractmethod
    def delete_limit(self, tenant: str, name: str) -> None:
        """Remove a tenant's limit (idempotent)."""

    # organizations -----------------------------------------------------------
    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every token, auth set, device and limit of the organization (idempotent)."""


def make_store(db) -> DevauthStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from devauth.store.sqlite import SqliteDevauthStore
        return SqliteDevauthStore(db)
    from devauth.store.mongo import MongoDevauthStore
    return MongoDevauthStore(db)
