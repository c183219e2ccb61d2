"""Operations on many devices at once (a list of ids or an inventory selection): the outcome of one
request, counted, with the first failures named; no HTTP here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

BATCH = 500          # devices written per transaction: the writer lock is released between batches
LISTED_FAILURES = 100  # failures named in an answer; the rest are only counted


@dataclass(slots=True)
class BulkResult:
    """What a bulk operation did: `matched` devices selected, `updated` changed, `failed` refused
    (the first LISTED_FAILURES as (device id, reason))."""

    matched: int
    updated: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    updated_ids: list[str] = field(default_factory=list)  # the devices changed (for the audit log)

    def done(self, device_id: str) -> None:
        self.updated += 1
        self.updated_ids.append(device_id)

    def fail(self, device_id: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < LISTED_FAILURES:
            self.failures.append((device_id, reason))


def audit_each(result: BulkResult, action: str, change: str = "") -> None:
    """One audit log entry per device the operation changed, as the one-device route writes:
    every entry names its object (a bulk entry without an id named none)."""
    from common import audit
    audit.emit_many([audit.AuditEvent(action=action, object_type="device", object_id=device_id, change=change)
                     for device_id in result.updated_ids])


def batches(ids: Sequence[str], size: int = BATCH) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]
