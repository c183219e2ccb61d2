"""The artifacts store: artifacts (images), releases (artifacts grouped by name), direct-upload intents.

Records are `deployments.artifacts.model`'s Artifact, ArtifactBrief and Release (without its
artifacts). String filters are `("eq", [values])` or `("prefix", value)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from deployments.artifacts.model import Artifact, ArtifactBrief, Release

Filter = tuple  # ("eq", [values]) | ("prefix", str)

RELEASE_SORT_FIELDS = ("name", "modified", "artifacts_count", "tags")
ARTIFACT_SORT_FIELDS = ("name", "modified")


class ArtifactsStore(ABC):
    migrations: list[Any]

    # artifacts ---------------------------------------------------------------
    @abstractmethod
    def insert_artifact(self, tenant: str, artifact: Artifact) -> None:
        """Insert an artifact and refresh its release. Conflict when the id, or the name with any
        of its `depends_idx` combinations, is taken."""

    @abstractmethod
    def find_conflict(self, tenant: str, name: str, depends_idx: list[str]) -> Artifact | None:
        """An artifact with this name sharing one of the dependency combinations, or None."""

    @abstractmethod
    def get_artifact(self, tenant: str, artifact_id: str) -> Artifact | None: ...

    @abstractmethod
    def get_artifact_brief(self, tenant: str, artifact_id: str) -> ArtifactBrief | None:
        """An artifact without its metadata document."""

    @abstractmethod
    def artifacts_by_names(self, tenant: str, names: list[str]) -> list[Artifact]:
        """Every artifact whose name is in `names`, ordered by name then id."""

    @abstractmethod
    def list_artifacts(self, tenant: str, *, name: Filter | None = None, description: Filter | None = None,
                       device_type: Filter | None = None, sort: tuple[str, bool] = ("name", True),
                       skip: int = 0, limit: int | None = None) -> tuple[list[Artifact], int]:
        """A page of artifacts matching every filter, and the total count. sort = (field, ascending)."""

    @abstractmethod
    def update_description(self, tenant: str, artifact_id: str, description: str, modified: float) -> bool:
        """False when there is no such artifact."""

    @abstractmethod
    def delete_artifact(self, tenant: str, artifact_id: str) -> Artifact | None:
        """Delete and return the artifact (None if absent); refreshes its release."""

    @abstractmethod
    def storage_usage(self, tenant: str) -> int:
        """Sum of the sizes of the tenant's artifacts."""

    # releases ----------------------------------------------------------------
    @abstractmethod
    def list_releases(self, tenant: str, *, name: Filter | None = None, tags: list[str] | None = None,
                      update_type: str | None = None, device_type: str | None = None,
                      description: str | None = None, sort: tuple[str, bool] = ("name", True),
                      skip: int = 0, limit: int | None = None) -> tuple[list[Release], int]:
        """A page of release summaries and the total. `tags` match any (OR)."""

    @abstractmethod
    def get_release(self, tenant: str, name: str) -> Release | None: ...

    @abstractmethod
    def set_release_notes(self, tenant: str, name: str, notes: str) -> bool:
        """False when there is no such release."""

    @abstractmethod
    def set_release_tags(self, tenant: str, name: str, tags: list[str], max_unique: int) -> bool:
        """Replace a release's tags; False when there is no such release; Conflict when the
        tenant would use more than `max_unique` distinct tags."""

    @abstractmethod
    def release_tags(self, tenant: str) -> list[str]:
        """Every tag in use, sorted."""

    @abstractmethod
    def update_types(self, tenant: str) -> list[str]:
        """Every update type of the tenant's artifacts, sorted."""

    # direct uploads ----------------------------------------------------------
    @abstractmethod
    def insert_upload(self, tenant: str, upload_id: str, expire: float, created: float) -> None: ...

    @abstractmethod
    def upload_status(self, tenant: str, upload_id: str) -> str | None:
        """pending, processing, completed, aborted, or None when there is no such upload."""

    @abstractmethod
    def claim_upload(self, tenant: str, upload_id: str) -> bool:
        """Atomically move a pending upload to `processing`; False if there is none."""

    @abstractmethod
    def set_upload_status(self, tenant: str, upload_id: str, status: str) -> None: ...

    @abstractmethod
    def expired_uploads(self, before: float, limit: int) -> list[tuple[str, str, str]]:
        """(tenant, upload id, status) of up to `limit` uploads whose link expired before `before`,
        oldest first, of every organization: the sweep of direct uploads (no caller's request)."""

    @abstractmethod
    def delete_upload(self, tenant: str, upload_id: str, status: str) -> bool:
        """Remove the upload if it is still in `status`; False if it is not (or is gone)."""

    # limits and organizations --------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager:
        """A write transaction where the backend has one (SQLite); a no-op context on MongoDB."""

    @abstractmethod
    def get_limit(self, tenant: str, name: str) -> int | None:
        """A limit of the organization (the storage limit), or None when unset."""

    @abstractmethod
    def set_limit(self, tenant: str, name: str, value: int) -> None:
        """Create or replace a limit."""

    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every artifact, release, direct-upload intent and limit of the organization
        (records only; the objects are the storage's). Idempotent."""


def make_store(db) -> ArtifactsStore:
    if db.kind == "sqlite":
        from deployments.artifacts.store.sqlite import SqliteArtifactsStore
        return SqliteArtifactsStore(db)
    from deployments.artifacts.store.mongo import MongoArtifactsStore
    return MongoArtifactsStore(db)


def prefix_upper(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (for index range scans)."""
    return prefix + "\U0010ffff"
