"""auditlogs rules: turning reported events into entries, listing, exporting, retention. Never imports flask."""

from __future__ import annotations

import re
import threading
import uuid
from typing import Iterator

from common.audit import Actor, AuditEvent
from common.errors import BadRequest
from common.text import is_printable
from auditlogs.model import AuditEntry, EntryFilter
from auditlogs.store import AuditlogsStore

MAX_EXPORT = 100_000          # entries in one CSV export
DEFAULT_EXPORT = 20_000       # when `limit` is not given (what Mender's UI asks for)
EXPORT_BATCH = 500            # entries read per query while an export streams
PRUNE_INTERVAL = 3600.0       # seconds between a process's retention sweeps
PRUNE_ROUNDS = 20             # batches per sweep (the next sweep goes on)
MAX_TEXT = 1024               # characters kept of a change summary or a name

# Secrets must never reach an entry. Events are written by hand to hold none; this is the
# safety net for a value that carries one anyway (a JWT, a PEM block, a `password=` pair).
_SECRETS = re.compile(
    r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"          # a JWT
    r"|-----BEGIN [A-Z ]+-----[\s\S]*?(?:-----END [A-Z ]+-----|$)"      # a PEM block
    r"|(?i:(?:password|passwd|secret|token|private_key)\s*[=:]\s*)\S+")  # name=value
REDACTED = "[redacted]"


def redact(text: str | None, limit: int = MAX_TEXT) -> str | None:
    """`text` without anything that looks like a secret, cut to `limit` characters."""
    if text is None:
        return None
    text = _SECRETS.sub(REDACTED, str(text))
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _clean_extra(value, depth: int = 0):
    if depth > 3:
        return None
    if isinstance(value, dict):
        return {str(k)[:64]: _clean_extra(v, depth + 1) for k, v in list(value.items())[:20]}
    if isinstance(value, (list, tuple)):
        return [_clean_extra(v, depth + 1) for v in list(value)[:20]]
    if isinstance(value, str):
        return redact(value, 256)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value), 256)


class AuditlogsService:
    def __init__(self, store: AuditlogsStore, config, clock, services):
        self._store = store
        self._config = config
        self._clock = clock
        self._services = services
        self._last_prune = 0.0
        self._prune_lock = threading.Lock()

    @property
    def retention_seconds(self) -> float:
        return float(self._config["AUDITLOGS_RETENTION_DAYS"]) * 86400

    # writing ------------------------------------------------------------------
    def entries_for(self, events: list[AuditEvent], *, tenant: str, actor: Actor | None, request_id: str = "",
                    client: str = "") -> list[AuditEntry]:
        """Entries for reported events: each event's own tenant and actor win over the request's."""
        now = self._clock.now()
        out = []
        for event in events:
            who = event.actor
            if who is None or (actor is not None and (who.type, who.id) == (actor.type, actor.id)):
                who = actor  # the request's caller, with its email and token
            who = who or Actor("system", "")
            out.append(AuditEntry(
                id=str(uuid.uuid4()), tenant_id=event.tenant if event.tenant is not None else tenant, time=now,
                actor=Actor(who.type, redact(who.id, 256) or "", redact(who.email, 256), who.token_id),
                action=event.action[:64], object_type=event.object_type[:64],
                object_id=redact(event.object_id, 256) or "", object_name=redact(event.object_name, 256),
                object_extra=_clean_extra(event.extra) or {}, change=redact(event.change) or "",
                request_id=request_id[:128], client=client[:128]))
        return out

    def record(self, entries: list[AuditEntry]) -> None:
        """Append entries; now and then, sweep those past the retention."""
        self._store.insert(entries)
        self.maybe_prune()

    def maybe_prune(self) -> int:
        """Remove entries past the retention, at most once per PRUNE_INTERVAL in this process."""
        now = self._clock.now()
        if self.retention_seconds <= 0 or now - self._last_prune < PRUNE_INTERVAL:
            return 0
        if not self._prune_lock.acquire(blocking=False):
            return 0
        try:
            self._last_prune = now
            return self.prune(now)
        finally:
            self._prune_lock.release()

    def prune(self, now: float | None = None) -> int:
        """Remove (a bounded number of batches of) entries older than the retention; how many."""
        if self.retention_seconds <= 0:
            return 0
        before = (self._clock.now() if now is None else now) - self.retention_seconds
        removed = 0
        for _ in range(PRUNE_ROUNDS):
            n = self._store.prune(before)
            removed += n
            if n == 0:
                break
        return removed

    def ensure_retention(self) -> None:
        if self.retention_seconds > 0:
            self._store.ensure_retention(self.retention_seconds)

    def create(self, tenant: str, *, actor: Actor, action: str, object_type: str, object_id: str = "",
               object_name: str | None = None, extra: dict | None = None, change: str = "",
               time: float | None = None) -> AuditEntry:
        """Append one entry given by another service (the internal API); BadRequest for
        unprintable fields."""
        for name, value in (("action", action), ("object.type", object_type), ("object.id", object_id),
                            ("actor.id", actor.id), ("actor.type", actor.type)):
            if not isinstance(value, str) or not is_printable(value) or len(value) > 256:
                raise BadRequest(f"{name}: printable text of at most 256 characters")
        event = AuditEvent(action=action, object_type=object_type, object_id=object_id, object_name=object_name,
                           change=change, extra=dict(extra or {}), tenant=tenant, actor=actor)
        entry = self.entries_for([event], tenant=tenant, actor=actor)[0]
        if time is not None:
            entry.time = time
        self.record([entry])
        return entry

    # reading ------------------------------------------------------------------
    def list(self, tenant: str, where: EntryFilter, *, newest_first: bool = True, skip: int = 0,
             limit: int = 20) -> tuple[list[AuditEntry], int]:
        return self._store.list(tenant, where, newest_first=newest_first, skip=skip, limit=limit)

    def export(self, tenant: str, where: EntryFilter, *, newest_first: bool = True,
               limit: int = DEFAULT_EXPORT) -> Iterator[AuditEntry]:
        """Up to `limit` (at most MAX_EXPORT) matching entries, read in batches as they are consumed."""
        if not 1 <= limit <= MAX_EXPORT:
            raise BadRequest(f"limit: must be between 1 and {MAX_EXPORT}")
        return self._export(tenant, where, newest_first, limit)

    def _export(self, tenant, where, newest_first, limit) -> Iterator[AuditEntry]:
        cursor = None
        left = limit
        while left > 0:
            batch = self._store.after(tenant, where, newest_first=newest_first, cursor=cursor,
                                      limit=min(EXPORT_BATCH, left))
            yield from batch
            if len(batch) < min(EXPORT_BATCH, left):
                return
            left -= len(batch)
            cursor = (batch[-1].time, batch[-1].id)

    def write_events(self, events: list[AuditEvent]) -> None:
        """Record events reported outside a request: each names its tenant and actor (a user's
        email is looked up when missing)."""
        for event in events:
            a = event.actor
            if a is not None and a.type == "user" and a.email is None and a.id:
                try:
                    a.email = self._services.useradm.get_user(event.tenant or "", a.id).email
                except Exception:  # noqa: BLE001 - a user gone since: recorded without the email
                    pass
        self.record(self.entries_for(events, tenant="", actor=None))

    # Automatic decisions of a deployment's rollout (deployments.events.publish_deployment_event):
    # operators' own actions are recorded by the request's catalog entry, so only the system's are
    # written here, straight to the store: one made during an operator's request (a threshold
    # crossed by a device's abort) must not take the place of that request's entry.
    def deployment_event(self, event) -> None:
        if event.actor != "system":
            return
        detail = {k: v for k, v in (event.detail or {}).items() if isinstance(v, (str, int, float, bool))}
        name = None
        try:
            name = self._services.deployments.get_deployment(event.tenant_id, event.deployment_id).name
        except Exception:  # noqa: BLE001 - a deployment deleted since: recorded without its name
            pass
        change = ", ".join(f"{k}: {v}" for k, v in sorted(detail.items()))
        self.record(self.entries_for([AuditEvent(
            action=event.type, object_type="deployment", object_id=event.deployment_id, object_name=name,
            change=change, tenant=event.tenant_id,
            actor=Actor("system", ""))], tenant=event.tenant_id, actor=None))

    def delete_tenant(self, tenant: str) -> None:
        self._store.delete_tenant(tenant)
