"""The JSON and CSV shapes of audit log entries (Mender's AuditLog, plus id, request_id and client_address)."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Iterator

from common.clock import rfc3339_ms
from auditlogs.model import AuditEntry

# Mender's per-type object fields: object.<type> = {...}
_NAME_FIELD = {"user": "email", "deployment": "name", "artifact": "name", "tenant": "name", "release": "name",
               "role": "name", "user_access_token": "name", "group": "name", "filter": "name"}


def render_entry(e: AuditEntry) -> dict:
    actor = {"id": e.actor.id, "type": e.actor.type}
    if e.actor.email:
        actor["email"] = e.actor.email
    if e.actor.token_id:
        actor["token_id"] = e.actor.token_id
    obj = {"id": e.object_id, "type": e.object_type}
    if e.object_name is not None:
        obj["name"] = e.object_name
    detail = dict(e.object_extra)
    if e.object_name is not None and e.object_type in _NAME_FIELD:
        detail.setdefault(_NAME_FIELD[e.object_type], e.object_name)
    if detail:
        obj[e.object_type] = detail
    return {"id": e.id, "actor": actor, "time": rfc3339_ms(e.time), "action": e.action, "object": obj,
            "change": e.change, "request_id": e.request_id, "client_address": e.client}


CSV_COLUMNS = ("time", "actor.type", "actor.id", "actor.email", "actor.token_id", "action", "object.type",
               "object.id", "object.name", "change", "request_id", "client_address")


def _cells(e: AuditEntry) -> dict[str, str]:
    return {"time": rfc3339_ms(e.time), "actor.type": e.actor.type, "actor.id": e.actor.id,
            "actor.email": e.actor.email or "", "actor.token_id": e.actor.token_id or "", "action": e.action,
            "object.type": e.object_type, "object.id": e.object_id, "object.name": e.object_name or "",
            "change": e.change, "request_id": e.request_id, "client_address": e.client}


def _defuse(value: str) -> str:
    """A cell a spreadsheet would read as a formula (=, +, -, @, or a tab/CR first) starts with
    a quote instead (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


CHUNK = 64 * 1024


def csv_lines(entries: Iterable[AuditEntry], separator: str = ".", ignore: Iterable[str] = ()) -> Iterator[bytes]:
    """The CSV document (a header line, then one line per entry) as UTF-8 chunks of about 64 KiB."""
    skip = set(ignore)
    columns = [c for c in CSV_COLUMNS if c not in skip]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.replace(".", separator) for c in columns])
    for entry in entries:
        cells = _cells(entry)
        writer.writerow([_defuse(cells[c]) for c in columns])
        if buf.tell() >= CHUNK:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    if buf.tell():
        yield buf.getvalue().encode()
