"""Artifact object storage behind one interface: the filesystem (default) or S3.

Object keys are built by the server only (`object_key`): `<tenant>/<artifact id>.<nonce>`, or
without the tenant for the default tenant, as Mender lays out its bucket. The nonce is new for
every upload, so a key is never used twice: an artifact deleted and uploaded again under the same
id gets another key, and a link signed for the old object can never serve the new one. Artifacts
stored before nonces existed keep the key `<tenant>/<artifact id>`; every artifact record names
its key (`storage_key`).
Everything of an organization is under its prefix `<tenant>/`, which goes with it
(`delete_prefix`).
"""

from __future__ import annotations

import re
import secrets
import uuid
from abc import ABC, abstractmethod
from typing import BinaryIO

from common.errors import ConfigError

_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NONCE = re.compile(r"[0-9a-f]{16}")


def tenant_prefix(tenant: str) -> str:
    """The key prefix of every object of an organization (not the default one, whose objects
    sit at the top level); ValueError unless the id is safe."""
    if not tenant or not _TENANT.match(tenant):
        raise ValueError("unsafe tenant id")
    return f"{tenant}/"


def object_key(tenant: str, artifact_id: str, nonce: str = "") -> str:
    """The storage key of an artifact (without a nonce: the key artifacts had before nonces);
    ValueError unless every part is a safe server-side id."""
    if tenant and not _TENANT.fullmatch(tenant):
        raise ValueError("unsafe tenant id")
    if str(uuid.UUID(artifact_id)) != artifact_id:
        raise ValueError("artifact ids are canonical UUIDs")
    if nonce and not _NONCE.fullmatch(nonce):
        raise ValueError("unsafe nonce")
    name = f"{artifact_id}.{nonce}" if nonce else artifact_id
    return f"{tenant}/{name}" if tenant else name


def new_object_key(tenant: str, artifact_id: str) -> str:
    """A key no object has had: the artifact's id and a random upload nonce."""
    return object_key(tenant, artifact_id, secrets.token_hex(8))


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
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix` (unfinished uploads included);
        idempotent. Returns how many objects were removed."""

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

    def sweep(self) -> int:
        """Remove leftovers of interrupted uploads (at start and periodically); how many."""
        return 0


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
