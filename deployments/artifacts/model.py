"""The artifacts records: artifacts, their narrow form for deployment instructions, releases, links."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Artifact:
    """An uploaded artifact and what its header says (`provides`, `depends`: Mender's
    artifact_provides / artifact_depends; `depends_idx`: every combination of its depends, as
    canonical JSON, which must be unique per name)."""

    id: str
    name: str
    description: str
    device_types: list[str]
    update_types: list[str]
    info: dict
    signed: bool
    updates: list[dict]
    provides: dict
    depends: dict
    clears_provides: list[str]
    depends_idx: list[str]
    size: int
    modified: float
    storage_key: str = ""  # its object in the artifact storage


@dataclass(slots=True)
class ArtifactBrief:
    """What deployment instructions need of an artifact (one narrow read on a device's poll)."""

    id: str
    name: str
    device_types: list[str]
    size: int
    storage_key: str = ""


@dataclass(slots=True)
class Release:
    """The artifacts that share a name, with notes and tags of their own; `artifacts` is filled by
    the service where the API shows them."""

    name: str
    notes: str
    tags: list[str]
    artifacts_count: int
    modified: float
    update_types: list[str] = field(default_factory=list)
    device_types: list[str] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass(slots=True)
class Link:
    """A URL that needs no token, valid until `expire` (Unix seconds)."""

    uri: str
    expire: float


@dataclass(slots=True)
class DirectUpload:
    """An upload intent: the artifact will get `id`; its bytes go to `link`."""

    id: str
    link: Link
