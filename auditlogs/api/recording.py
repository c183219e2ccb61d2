"""The request hooks that write the audit log: every management request collects the events its
services report (`common.audit.emit`); when it succeeds they are written with the caller, the
request id and the client address, in one insert, before the response leaves. A request that
changes something and reported nothing gets the entry `auditlogs.catalog` describes for its
route, so every management mutation is recorded. Events of a failed request are dropped unless
marked `always` (a failed login).

Written after the change committed, in the same request: a crash between the two writes loses
that entry (the window is one insert); a failed write is logged, with the entry, as an error and
does not fail the request, whose change already happened."""

from __future__ import annotations

from flask import Flask, g, request

from common import audit
from common.audit import Actor, AuditEvent
from common.jsonbody import parse_json_bytes
from common.auth import _key
from common.logging import get_logger
from common.tenancy import tenant_to_api
from auditlogs.catalog import BODY_ID, EMITTED, LOCATION, MUTATIONS, SECRET_FIELDS, SELF, TENANT

log = get_logger("auditlogs")
MANAGEMENT = "/api/management/"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def request_actor(identity, services) -> Actor | None:
    """The calling user as an actor (its email looked up when the identity does not carry it)."""
    if identity is None:
        return None
    if identity.is_device:
        return Actor(audit.DEVICE, identity.subject)
    email = getattr(identity, "email", None)
    if email is None:
        try:
            email = services.useradm.get_user(identity.tenant, identity.subject).email
        except Exception:  # noqa: BLE001 - the entry is written without it
            email = None
    return Actor(audit.USER, identity.subject, email, identity.token_id)


def default_event(key: str, response, identity) -> AuditEvent | None:
    """The entry of a mutation whose services reported nothing (None for a read-only POST)."""
    recorded = MUTATIONS.get(key)
    if recorded is None or recorded.id_from == EMITTED:
        return None
    if recorded.id_from == SELF:
        object_id = identity.subject if identity is not None else ""
    elif recorded.id_from == LOCATION:
        object_id = response.headers.get("Location", "").rstrip("/").rpartition("/")[2]
    elif recorded.id_from == BODY_ID:
        answer = response.get_json(silent=True) if response.is_json and not response.direct_passthrough else None
        object_id = answer.get("id", "") if isinstance(answer, dict) else ""
    elif recorded.id_from == TENANT:
        object_id = tenant_to_api(identity.tenant) if identity is not None else ""
    else:
        object_id = (request.view_args or {}).get(recorded.id_from, "")
    params = request.view_args or {}
    body = _body() if recorded.fields or (recorded.name_from and recorded.name_from not in params) else {}
    name = params.get(recorded.name_from) if recorded.name_from in params else body.get(recorded.name_from)
    return AuditEvent(action=recorded.action, object_type=recorded.object_type, object_id=object_id,
                      object_name=name if isinstance(name, str) else None,
                      change=body_summary(body, recorded.fields))


def _body() -> dict:
    """The request's JSON object (the view already accepted it), or {}: never an error."""
    if not request.is_json:
        return {}
    try:
        body = parse_json_bytes(request.get_data(cache=True))
    except Exception:  # noqa: BLE001 - whatever the body is, the entry is written without it
        return {}
    return body if isinstance(body, dict) else {}


def body_summary(body: dict, fields) -> str:
    """`field: value` for each listed field the body sets (a secret: `field changed`, a long list: its
    length), as one line."""
    parts = []
    for key in fields:
        if key not in body:
            continue
        value = body[key]
        if key in SECRET_FIELDS:
            parts.append(f"{key} changed")
        elif isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(f"{key}: {str(value)[:80]}")
        elif isinstance(value, list):
            items = [v.get("name", "?") + (f"[{','.join(map(str, (v.get('scope') or {}).get('value', [])))[:80]}]"
                                          if v.get("scope") else "") if isinstance(v, dict) else str(v)
                     for v in value[:10]]
            parts.append(f"{key}: {', '.join(i[:80] for i in items)}" + (f" (+{len(value) - 10})" if len(value) > 10 else ""))
    return "; ".join(parts)


def install(app: Flask, ctx) -> None:
    """Register the hooks on the app."""
    service = ctx.services.auditlogs

    @app.before_request
    def _collect() -> None:
        if request.path.startswith(MANAGEMENT):
            g.audit_token = audit.start_collecting()

    @app.after_request
    def _record(response):
        token = g.pop("audit_token", None)
        if token is None:
            return response
        events = audit.stop_collecting(token)
        ok = response.status_code < 400
        events = [e for e in events if ok or e.always]
        identity = getattr(g, "identity", None)
        if not events and ok and request.method in MUTATING and request.url_rule is not None:
            try:
                event = default_event(_key(request.method, request.url_rule.rule), response, identity)
            except Exception:  # noqa: BLE001 - the change is done: log what could not be described
                log.exception("audit log entry could not be built", request_id=g.get("request_id", ""))
                event = None
            events = [event] if event is not None else []
        if events:
            _write(service, ctx.services, events, identity)
        return response

    @app.teardown_request
    def _clear(exc=None) -> None:
        token = g.pop("audit_token", None)
        if token is not None:
            audit.stop_collecting(token)


def _write(service, services, events: list[AuditEvent], identity) -> None:
    tenant = identity.tenant if identity is not None else ""
    actor = request_actor(identity, services)
    try:
        entries = service.entries_for(events, tenant=tenant, actor=actor, request_id=g.get("request_id", ""),
                                      client=request.remote_addr or "")
        service.record(entries)
    except Exception:  # noqa: BLE001 - the change is done: log what could not be recorded
        log.exception("audit log write failed", request_id=g.get("request_id", ""),
                      entries=[(e.action, e.object_type, e.object_id) for e in events])
