"""How services report what the audit log records: `emit(AuditEvent(...))`, one function, no Flask.

Inside a request, events are collected (`collecting()`, opened by the auditlogs request hooks)
and written after the response is decided, with the caller, request id and client address the
request carries: events of a request that fails are dropped, unless marked `always` (a failed
login). Outside a request (a websocket session, a CLI command, a background thread) an event is
handed to the sink auditlogs installs (`set_sink`), which writes it at once; `actor` and `tenant`
must then be given. Without a sink (auditlogs not loaded) events are dropped.

Never put a secret in an event: no password, token, key or signature, not even a prefix of one.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

# actor types
USER = "user"
DEVICE = "device"
SYSTEM = "system"


@dataclass(slots=True)
class Actor:
    """Who did it: a user (id, email; the personal access token used, if any), a device, or the
    system (an internal API call, a CLI command)."""

    type: str
    id: str
    email: str | None = None
    token_id: str | None = None


@dataclass(slots=True)
class AuditEvent:
    """One thing done to one object. `change` is a short human summary ("status: pending →
    accepted"); `extra` carries Mender's per-type object fields (a deployment's name and
    artifact_name, a user's email). `tenant` / `actor` None: those of the request."""

    action: str
    object_type: str
    object_id: str = ""
    object_name: str | None = None
    change: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    tenant: str | None = None
    actor: Actor | None = None
    always: bool = False  # recorded even when the request fails (a failed login)


_collector: contextvars.ContextVar[list[AuditEvent] | None] = contextvars.ContextVar("audit_events", default=None)
_sink: Callable[[list[AuditEvent]], None] | None = None


def emit(event: AuditEvent, sink: Callable[[list[AuditEvent]], None] | None = None) -> None:
    """Report an event: collected when a request is collecting, else written by `sink` (or the
    process's sink: the app auditlogs was last set up for; one process serves one app)."""
    events = _collector.get()
    if events is not None:
        events.append(event)
        return
    sink = sink or _sink
    if sink is not None:
        sink([event])


def emit_many(events: list[AuditEvent]) -> None:
    """Report several events (a bulk operation: one write)."""
    collected = _collector.get()
    if collected is not None:
        collected.extend(events)
    elif _sink is not None and events:
        _sink(list(events))


def set_sink(sink: Callable[[list[AuditEvent]], None] | None) -> None:
    """Where events reported outside a request go (auditlogs installs its writer)."""
    global _sink
    _sink = sink


def start_collecting() -> contextvars.Token:
    """Collect the events of the current request (until `stop_collecting`)."""
    return _collector.set([])


def stop_collecting(token: contextvars.Token | None = None) -> list[AuditEvent]:
    """The events collected since `start_collecting`, and stop collecting."""
    events = _collector.get() or []
    if token is not None:
        try:
            _collector.reset(token)
            return events
        except ValueError:  # the token belongs to another context: clear this one
            pass
    _collector.set(None)
    return events


@contextlib.contextmanager
def collecting() -> Iterator[list[AuditEvent]]:
    """`with collecting() as events:` gathers what the block emits (tests, CLI commands)."""
    token = start_collecting()
    events = _collector.get()
    try:
        yield events
    finally:
        stop_collecting(token)


def summarize(before: dict[str, Any], after: dict[str, Any], limit: int = 512) -> str:
    """`field: old → new` for each field that changed, as one short line (cut at `limit`)."""
    parts = []
    for key, new in after.items():
        old = before.get(key)
        if old != new:
            parts.append(f"{key}: {_short(old)} → {_short(new)}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _short(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple, set, frozenset)):
        value = ", ".join(sorted(str(v) for v in value)) or "(none)"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"
