"""auditlogs' record: one audit log entry (time as float Unix seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.audit import Actor

__all__ = ["Actor", "AuditEntry", "EntryFilter"]


@dataclass(slots=True)
class AuditEntry:
    """What was done (`action`) to which object (`object_type`, `object_id`, `object_name`,
    `object_extra`: Mender's per-type fields), by whom, when, with a short `change` summary, and
    the request it came with (`request_id`, `client`: the caller's address)."""

    id: str
    tenant_id: str
    time: float
    actor: Actor
    action: str
    object_type: str
    object_id: str = ""
    object_name: str | None = None
    object_extra: dict[str, Any] = field(default_factory=dict)
    change: str = ""
    request_id: str = ""
    client: str = ""


@dataclass(slots=True)
class EntryFilter:
    """The list and export filters (Mender's): every one given must match."""

    created_after: float | None = None    # time >= created_after
    created_before: float | None = None   # time <= created_before
    actor_id: str | None = None
    actor_type: str | None = None
    actor_email: str | None = None
    object_id: str | None = None
    object_type: str | None = None
    object_deployment_name: str | None = None  # a deployment's name (object_type deployment)
