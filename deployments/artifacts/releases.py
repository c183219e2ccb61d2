"""Releases: the artifacts that share a name, with notes and tags of their own."""

from __future__ import annotations

import re

from common import audit
from common.errors import BadRequest, Conflict, NotFound
from common.text import check_printable
from deployments.artifacts.model import Release

MAX_NOTES = 1024
MAX_TAGS_PER_RELEASE = 20
MAX_UNIQUE_TAGS = 100
MAX_TAG_LENGTH = 256
_TAG = re.compile(r"^[A-Za-z0-9_.-]+$")


class ReleasesMixin:
    """Release operations of ArtifactsService (uses its store, storage and `_in_use`)."""

    def _with_artifacts(self, tenant: str, releases: list[Release]) -> list[Release]:
        by_name = {r.name: r for r in releases}
        for a in self.store.artifacts_by_names(tenant, list(by_name)):
            by_name[a.name].artifacts.append(a)
        return releases

    def list_releases(self, tenant: str, *, name=None, tags=None, update_type=None, device_type=None,
                      description=None, sort=("name", True), skip: int = 0,
                      limit: int | None = None, visible_tags: frozenset[str] | None = None
                      ) -> tuple[list[Release], int]:
        """A page of releases (each with its artifacts) and the total; `visible_tags`: only
        releases carrying one of them (a role limited to release tags)."""
        if visible_tags is not None:
            tags = [t for t in tags if t in visible_tags] if tags else sorted(visible_tags)
            if not tags:
                return [], 0
        releases, total = self.store.list_releases(tenant, name=name, tags=tags, update_type=update_type,
                                                   device_type=device_type, description=description,
                                                   sort=sort, skip=skip, limit=limit)
        return self._with_artifacts(tenant, releases), total

    def get_release(self, tenant: str, name: str) -> Release:
        release = self.store.get_release(tenant, name)
        if release is None:
            raise NotFound("release not found")
        return self._with_artifacts(tenant, [release])[0]

    def release_visible(self, tenant: str, name: str, visible_tags: frozenset[str] | None) -> bool:
        """Whether a role limited to `visible_tags` sees the release (None: every release)."""
        if visible_tags is None:
            return True
        release = self.store.get_release(tenant, name)
        return release is not None and not visible_tags.isdisjoint(release.tags)

    def artifact_visible(self, tenant: str, artifact_id: str, visible_tags: frozenset[str] | None) -> bool:
        """Whether a role limited to `visible_tags` sees the artifact (through its release's tags)."""
        if visible_tags is None:
            return True
        try:
            artifact = self.get(tenant, artifact_id)
        except NotFound:
            return False
        return self.release_visible(tenant, artifact.name, visible_tags)

    def set_release_notes(self, tenant: str, name: str, notes: str) -> None:
        if len(notes) > MAX_NOTES:
            raise BadRequest(f"notes: longer than {MAX_NOTES} characters")
        check_printable(notes, "notes", allow_newlines=True)  # Mender: graphic characters only
        if not self.store.set_release_notes(tenant, name, notes):
            raise NotFound("release not found")

    def set_release_tags(self, tenant: str, name: str, tags: list[str]) -> None:
        """Replace the tags. BadRequest for invalid or too many tags; Conflict past the tenant's
        distinct-tag limit; NotFound."""
        clean: list[str] = []
        for tag in tags:
            if not isinstance(tag, str) or not _TAG.fullmatch(tag) or len(tag) > MAX_TAG_LENGTH:
                raise BadRequest("tags: each tag must be 1 to 256 letters, digits, '_', '.' or '-'")
            if tag not in clean:
                clean.append(tag)
        if len(clean) > MAX_TAGS_PER_RELEASE:
            raise BadRequest(f"tags: at most {MAX_TAGS_PER_RELEASE} tags per release")
        if not self.store.set_release_tags(tenant, name, clean, MAX_UNIQUE_TAGS):
            raise NotFound("release not found")

    def release_tags(self, tenant: str) -> list[str]:
        return self.store.release_tags(tenant)

    def update_types(self, tenant: str) -> list[str]:
        return self.store.update_types(tenant)

    def delete_releases(self, tenant: str, names: list[str]) -> None:
        """Delete every artifact of the named releases; Conflict (nothing deleted) while an
        active deployment uses one of them. Unknown names are ignored."""
        names = [n for n in dict.fromkeys(names) if n]
        if not names:
            raise BadRequest("name: at least one release name is required")
        artifacts = self.store.artifacts_by_names(tenant, names)
        if any(self._in_use(tenant, a.id) for a in artifacts):
            raise Conflict("active deployments are using some of the releases from the request")
        for a in artifacts:
            if self.store.delete_artifact(tenant, a.id) is not None:
                self._delete_object(a.storage_key)
        audit.emit_many([audit.AuditEvent(action="delete", object_type="release", object_id=name, object_name=name)
                         for name in dict.fromkeys(a.name for a in artifacts)])
