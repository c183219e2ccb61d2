"""The deviceconfig store interface (one record per device: desired and reported configuration)
and the backend selector."""

from __future__ import annotations

from abc import ABC, abstractmethod

from deviceconfig.model import DeviceConfiguration


class DeviceconfigStore(ABC):
    """One method per query; every method takes the tenant ('' = default)."""

    migrations: list

    @abstractmethod
    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        """Create the device's record with empty configurations unless it exists (idempotent)."""

    @abstractmethod
    def get_device(self, tenant: str, device_id: str) -> DeviceConfiguration | None:
        """The device's record, or None."""

    @abstractmethod
    def set_configured(self, tenant: str, device_id: str, configured: dict[str, str], now: float) -> None:
        """Replace the desired configuration (record created if absent); `updated_ts` = now."""

    @abstractmethod
    def set_reported(self, tenant: str, device_id: str, reported: dict[str, str], now: float) -> None:
        """Replace the reported configuration (record created if absent); `reported_ts` = now."""

    @abstractmethod
    def set_deployment_id(self, tenant: str, device_id: str, deployment_id: str) -> bool:
        """Note the device's latest configuration deployment; False when there is no record."""

    @abstractmethod
    def delete_device(self, tenant: str, device_id: str) -> None:
        """Forget the device (idempotent)."""

    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Remove every record of the tenant."""


def make_store(db) -> DeviceconfigStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from deviceconfig.store.sqlite import SqliteDeviceconfigStore
        return SqliteDeviceconfigStore(db)
    from deviceconfig.store.mongo import MongoDeviceconfigStore
    return MongoDeviceconfigStore(db)
