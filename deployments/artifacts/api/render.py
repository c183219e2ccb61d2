"""The artifacts wire seam: artifacts, releases, links and the artifact conflict as the API prints
them, built here only (deployments' device instructions take their artifact fields from here too)."""

from __future__ import annotations

from common.clock import rfc3339, rfc3339_ms
from deployments.artifacts.model import Artifact, DirectUpload, Link, Release
from deployments.artifacts.service import ArtifactConflict


def artifact(a: Artifact) -> dict:
    return {"id": a.id, "name": a.name, "description": a.description, "device_types_compatible": a.device_types,
            "info": a.info, "signed": a.signed, "updates": a.updates, "artifact_provides": a.provides,
            "artifact_depends": a.depends, "clears_artifact_provides": a.clears_provides, "size": a.size,
            "modified": rfc3339_ms(a.modified)}


def link(k: Link) -> dict:
    return {"uri": k.uri, "expire": rfc3339(k.expire)}


def direct_upload(u: DirectUpload) -> dict:
    return {"id": u.id, **link(u.link)}


def storage_usage(limit: int, used: int) -> dict:
    return {"limit": limit, "usage": used}  # limit 0: unlimited


def release(r: Release) -> dict:
    return {"name": r.name, "modified": rfc3339_ms(r.modified), "artifacts_count": r.artifacts_count,
            "tags": r.tags, "notes": r.notes, "artifacts": [artifact(a) for a in r.artifacts]}


def release_v1(r: Release) -> dict:
    # Mender's v1 release JSON capitalises these three fields (hence its deprecation)
    return {"Name": r.name, "Artifacts": [artifact(a) for a in r.artifacts], "ArtifactsCount": r.artifacts_count,
            "modified": rfc3339_ms(r.modified), "tags": r.tags, "notes": r.notes}


def software(r: Release) -> dict:
    """A release as the software list shows it."""
    return {"name": r.name, "modified": rfc3339_ms(r.modified), "kind": "release", "tags": r.tags,
            "notes": r.notes, "compatible_types": sorted({t for a in r.artifacts for t in a.device_types})}


def conflict(exc: ArtifactConflict) -> dict:
    """The body fields of a 409 for a name and depends clash (as Mender: `metadata.conflict`)."""
    return {"metadata": {"conflict": {"id": exc.other.id, "name": exc.name, "artifact_depends": exc.depends}}}
