"""The inventory store interface: one method per query; SQLite and MongoDB implement it.

Records are `inventory.model`'s Device (with its Attributes), Filter and AttributeCount.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Sequence

from inventory.model import Attribute, AttributeCount, AttributeValueCount, Cond, Device, Filter, Sort


class InventoryStore(ABC):
    migrations: list

    # devices ------------------------------------------------------------------
    @abstractmethod
    def create_device(self, tenant: str, device_id: str, now: float, etag: str,
                      attributes: Sequence[Attribute] = ()) -> bool:
        """Insert the device with `attributes` unless it exists; True when it was created."""

    @abstractmethod
    def get_device(self, tenant: str, device_id: str, scopes: Sequence[str] | None = None) -> Device | None:
        """The device record (with only the attributes of `scopes`, if given), or None."""

    @abstractmethod
    def get_devices(self, tenant: str, device_ids: Sequence[str],
                    select: Sequence[tuple[str, str]] | None = None) -> list[Device]:
        """The records of the existing devices among `device_ids`, in that order; with `select`,
        only those (scope, name) attributes."""

    @abstractmethod
    def apply(self, tenant: str, device_id: str, version: int, set_attrs: Sequence[Attribute],
              unset: Sequence[tuple[str, str]], updated_ts: float | None = None,
              tags_etag: str | None = None) -> bool:
        """Write attributes (replacing same-named ones) and remove `unset`, if the device is still
        at `version`; bump the version. False when the device changed or is gone."""

    @abstractmethod
    def set_status(self, tenant: str, items: Sequence[tuple[str, int | None]], status: str) -> int:
        """Set identity/status and system/status of each existing (device_id, revision). With a
        revision, a device is only changed if its stored revision is lower (and then takes that
        revision). Returns how many devices were written."""

    @abstractmethod
    def delete_device(self, tenant: str, device_id: str) -> bool:
        """Remove the device and its attributes; True when it existed."""

    @abstractmethod
    def set_group(self, tenant: str, device_ids: Sequence[str], group: str) -> tuple[int, int]:
        """Put the existing devices among `device_ids` into `group` (moving them);
        returns (matched, changed)."""

    @abstractmethod
    def clear_group(self, tenant: str, group: str, device_ids: Sequence[str] | None = None) -> int:
        """Remove `group` from the devices (all, or those listed) that are in it; returns how many."""

    @abstractmethod
    def record_check_ins(self, tenant: str, device_ids: Sequence[str], value: str, stale_before: str) -> None:
        """Set system/check_in_time to `value` on each of these devices unless it is already
        `stale_before` or later; nothing for a device that does not exist."""

    @abstractmethod
    def import_devices(self, tenant: str, devices: Iterable[tuple[str, Sequence[Attribute]]],
                       now: float, etag_factory) -> int:
        """Bulk-insert new devices with their attributes (existing ids are skipped); returns the count."""

    # search -------------------------------------------------------------------
    @abstractmethod
    def search(self, tenant: str, conds: Sequence[Cond], sort: Sequence[Sort],
               skip: int, limit: int, exact: bool = True) -> tuple[list[str], int]:
        """Ids of the devices matching every condition (one page, sorted), and the total count.
        With `exact=False` the total may be an `EstimatedCount` where counting would probe more
        than COUNT_EXACT_CANDIDATES devices (SQLite; MongoDB always counts), and the page of a
        large search may be read by a bounded walk in the sort order instead of sorting every match
        (same page either way)."""

    @abstractmethod
    def status_tier_counts(self, tenant: str, statuses: Sequence[str], tier: tuple[str, str]
                           ) -> dict[tuple[str, str | None], int]:
        """How many devices have each identity/status among `statuses` and each (string) value of
        the `tier` (scope, name) attribute (None: none, or not a string): one query."""

    @abstractmethod
    def matching_ids(self, tenant: str, conds: Sequence[Cond], limit: int) -> list[str]:
        """Ids of the devices matching every condition, in id order, at most `limit`: one query
        (a deployment's targets), not a count and a skip per page."""

    @abstractmethod
    def groups(self, tenant: str, status: str | None = None) -> list[str]:
        """Distinct group names, sorted (only of devices with that identity/status, if given)."""

    @abstractmethod
    def attribute_counts(self, tenant: str, sample: int, limit: int) -> list[AttributeCount]:
        """How many devices have each attribute, over up to `sample` devices, by count desc then
        scope and name."""

    @abstractmethod
    def attribute_value_counts(self, tenant: str, device_ids: Sequence[str], scope: str,
                               names: Sequence[str] | None) -> list[AttributeValueCount]:
        """For the devices `device_ids`, how many hold each value of each attribute of `scope`
        (only `names`, when given), in no particular order. Driven by the ids (one indexed
        lookup per device and attribute), so the cost follows the set, not the fleet."""

    # saved filters ------------------------------------------------------------
    @abstractmethod
    def insert_filter(self, tenant: str, saved: Filter) -> None:
        """Store a filter; Conflict when the name is taken."""

    @abstractmethod
    def list_filters(self, tenant: str, skip: int, limit: int) -> tuple[list[Filter], int]:
        """One page of saved filters ordered by name, and the total."""

    @abstractmethod
    def get_filter(self, tenant: str, filter_id: str) -> Filter | None:
        """The saved filter, or None."""

    @abstractmethod
    def delete_filter(self, tenant: str, filter_id: str) -> bool:
        """True when the filter existed."""

    # organizations -----------------------------------------------------------
    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every device, attribute and saved filter of the organization (idempotent)."""


def make_store(db) -> InventoryStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from inventory.store.sqlite import SqliteInventoryStore
        return SqliteInventoryStore(db)
    from inventory.store.mongo import MongoInventoryStore
    return MongoInventoryStore(db)
