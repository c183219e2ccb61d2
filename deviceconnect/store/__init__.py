"""The deviceconnect store interface (connection states, holders, sessions, recordings) and the
backend selector."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from deviceconnect.model import DeviceState, Session


class DeviceconnectStore(ABC):
    """One method per query; every method takes the tenant ('' = default), except the holder
    heartbeats, which describe server processes, not tenant data."""

    migrations: list

    # connection states -----------------------------------------------------
    @abstractmethod
    def provision_device(self, tenant: str, device_id: str, now: float) -> None:
        """Create the device's state as `unknown` unless it exists (idempotent)."""

    @abstractmethod
    def get_device(self, tenant: str, device_id: str) -> DeviceState | None:
        """The device's connection state, or None."""

    @abstractmethod
    def set_connected(self, tenant: str, device_id: str, holder: str, now: float) -> int:
        """Mark the device connected through `holder` (created if absent); returns the new version."""

    @abstractmethod
    def set_disconnected(self, tenant: str, device_id: str, version: int, now: float) -> bool:
        """Mark the device disconnected if its version is still `version` (the connection that is
        going away is the latest); False otherwise."""

    @abstractmethod
    def release_holders(self, holders: list[str], now: float) -> list[tuple[str, str]]:
        """Mark every device still connected through one of these holders disconnected; returns
        their (tenant, device id)."""

    @abstractmethod
    def connected_devices(self, tenant: str) -> list[str]:
        """Ids of the tenant's devices marked connected."""

    @abstractmethod
    def delete_device(self, tenant: str, device_id: str) -> None:
        """Forget the device's state (idempotent)."""

    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Remove everything of the tenant: states, sessions, recordings."""

    # holders: the server processes holding sockets -----------------------
    @abstractmethod
    def beat(self, holder: str, expires_ts: float) -> None:
        """Record that `holder` is alive until `expires_ts`."""

    @abstractmethod
    def expired_holders(self, now: float) -> list[str]:
        """Holders whose heartbeat expired before `now`."""

    @abstractmethod
    def delete_holders(self, holders: list[str]) -> None:
        """Forget these holders."""

    # sessions --------------------------------------------------------------
    @abstractmethod
    def insert_session(self, session: Session) -> None:
        """Record a new session."""

    @abstractmethod
    def end_session(self, tenant: str, session_id: str, end_ts: float, types: list[str],
                    bytes_recorded: int) -> None:
        """Record the end of a session."""

    @abstractmethod
    def get_session(self, tenant: str, session_id: str) -> Session | None:
        """The session, or None."""

    # recordings ------------------------------------------------------------
    @abstractmethod
    def append_recording(self, tenant: str, session_id: str, seq: int, data: bytes, expire_ts: float) -> None:
        """Store chunk `seq` of a session's recording."""

    @abstractmethod
    def recording_chunks(self, tenant: str, session_id: str) -> Iterator[bytes]:
        """The session's recording chunks in order (read lazily)."""

    @abstractmethod
    def purge_expired(self, now: float) -> int:
        """Delete sessions and recordings past their expiry; returns how many records went."""


def make_store(db) -> DeviceconnectStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from deviceconnect.store.sqlite import SqliteDeviceconnectStore
        return SqliteDeviceconnectStore(db)
    from deviceconnect.store.mongo import MongoDeviceconnectStore
    return MongoDeviceconnectStore(db)
