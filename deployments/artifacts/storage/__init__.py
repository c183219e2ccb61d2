"""Artifact object storage behind one interface: the filesystem (default) or S3.

Object keys are built by the server only (`object_key`): `<tenant>/<artifact id>`, or just the
artifact id for the default tenant, as Mender lays out its bucket.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from typing import BinaryIO

from common.errors import ConfigError

_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def object_key(tenant: str, artifact_id: str) -> str:
    """The storage key of an artifact; ValueError unless both parts are safe server-side ids."""
    if tenant and not _TENANT.match(tenant):
        raise ValueError("unsafe tenant id")
    if str(uuid.UUID(artifact_id)) != artifact_id:
        raise ValueError("artifact ids are canonical UUIDs")
    return f"{tenant}/{artifact_id}" if tenant else artifact_id


class ObjectWriter(ABC):
    """Receives an object's bytes in order; nothing is visible under the key before `commit()`."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def commit(self) -> None:
        """Make the object visible under its key."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written; idempotent, never raises."""


class ArtifactStorage(ABC):
    kind: str

    @abstractmethod
    def writer(self, key: str) -> ObjectWriter: ...

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object; NotFound when it does not exist."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; idempotent."""

    @abstractmethod
    def promote(self, source: str, target: str) -> None:
        """Move an object to another key (a finished direct upload becomes the artifact)."""

    @abstractmethod
    def download_link(self, key: str, *, tenant: str, filename: str, expires_in: int,
                      base_url: str, path: str) -> tuple[str, float]:
        """(URL a client can GET without a token, expiry as Unix seconds)."""

    @abstractmethod
    def upload_link(self, key: str, *, tenant: str, expires_in: int, base_url: str,
                    path: str) -> tuple[str, float]:
        """(URL a client can PUT the object to without a token, expiry)."""

    @abstractmethod
    def check(self, timeout: float) -> None:
        """Health check: raise unless the store answers within `timeout` seconds."""

    def sweep(self) -> None:
        """Startup: remove leftovers of interrupted uploads."""


def clamp_expiry(seconds: int) -> int:
    """Link lifetimes are clamped to [1 minute, 7 days], as Mender does for S3."""
    return max(60, min(int(seconds), 7 * 86400))


def make_storage(config, clock, signer_factory) -> ArtifactStorage:
    """The configured backend. `signer_factory()` gives the LinkSigner (filesystem links)."""
    kind = config["DEPLOYMENTS_STORAGE_DEFAULT"]
    if kind == "filesystem":
        from deployments.artifacts.storage.filesystem import FilesystemStorage
        return FilesystemStorage(config.data_dir, signer_factory)
    if kind in ("aws", "s3"):
        from deployments.artifacts.storage.s3 import S3Storage
        return S3Storage(config, clock)
    raise ConfigError(f"DEPLOYMENTS_STORAGE_DEFAULT: unknown storage {kind!r} (use filesystem or aws)")
