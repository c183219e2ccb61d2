"""HTTP plumbing installed on the app: request ids, body limits, the error body, access log, metrics."""

from __future__ import annotations

import errno
import os
import random
import re
import sqlite3
import time
import uuid

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common.api import format_validation_messages
from common.db import UNAVAILABLE_ERRORS
from common.errors import NotFound, ServiceError
from common.listeners import ENVIRON_KEY, INTERNAL, ListenerMap, internal_only
from common.logging import access_log_enabled, get_logger
from common import metrics

log = get_logger("http")
access_log = get_logger("access")

REQUEST_ID_HEADER = "X-MEN-RequestID"
_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# werkzeug's messages are long paragraphs; Mender's are short phrases
_HTTP_MESSAGES = {404: "not found", 405: "method not allowed", 413: "request body too large",
                  415: "unsupported media type", 400: "bad request", 401: "unauthorized",
                  403: "forbidden", 409: "conflict", 429: "too many requests", 503: "service unavailable"}


_random = random.Random()  # seeded from os.urandom once per process (reseeded after fork below)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def new_request_id() -> str:
    """A random UUID (version 4 layout) for a request without one. Not a secret, so it comes from
    the process's PRNG: `uuid4()` asks the kernel (a syscall, and a GIL hand-off) on every request."""
    n = (_random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    return str(uuid.UUID(int=n))


def request_id_for(incoming: str) -> str:
    """The caller's X-MEN-RequestID when it is a sane token, else a new one."""
    return incoming if incoming and _REQUEST_ID_OK.match(incoming) else new_request_id()


def request_id() -> str:
    rid = getattr(g, "request_id", None)
    if rid is None:
        rid = g.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER, ""))
    return rid


def error_response(status: int, message: str, headers: dict | None = None,
                   extra: dict | None = None) -> Response:
    body = dict(extra or {})
    body["error"] = message
    body["request_id"] = request_id()
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _storage_full(exc: BaseException) -> bool:
    """A database error that a full data disk explains: SQLITE_FULL, or an I/O error (SQLite
    reports ENOSPC on its shared-memory and journal files so) while the disk check fails."""
    for err in (exc, exc.__cause__):
        code = getattr(err, "sqlite_errorcode", None)
        if code is None:
            continue
        if code == sqlite3.SQLITE_FULL:
            return True
        if code & 0xFF == sqlite3.SQLITE_IOERR:
            from common.app import ctx
            try:
                ctx().disk_check(0.0)
            except ServiceError:
                return True
    return False


def _handle_service_error(exc: ServiceError) -> Response:
    if exc.status == 503 and _storage_full(exc):
        log.error("storage full", error=exc.message, request_id=request_id())
        return error_response(503, STORAGE_FULL, {"Retry-After": "60"})
    if exc.status >= 500:
        log.warning("service error", status=exc.status, error=exc.message, request_id=request_id())
    return error_response(exc.status, exc.message, exc.headers, exc.body)


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if "messages" in data:  # webargs validation failure
        message = format_validation_messages(data["messages"])
        status = 400 if status == 422 else status
    else:
        message = _HTTP_MESSAGES.get(status) or (exc.description or exc.name).rstrip(".").lower()
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return error_response(status, message, headers)


STORAGE_FULL = "storage full: the server cannot write until disk space is freed"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _handle_unavailable(exc: Exception) -> Response:
    if _storage_full(exc):
        log.error("storage full", error=repr(exc), request_id=request_id())
        return error_response(503, STORAGE_FULL, {"Retry-After": "60"})
    log.error("database unavailable", error=repr(exc), request_id=request_id())
    return error_response(503, "service unavailable", {"Retry-After": "1"})


def _handle_os_error(exc: OSError) -> Response:
    """A full disk (or quota) is a 503 the operator can act on; any other OSError is a 500."""
    if exc.errno in _FULL_ERRNOS:
        log.error("storage full", error=repr(exc), request_id=request_id())
        return error_response(503, STORAGE_FULL, {"Retry-After": "60"})
    return _handle_unexpected(exc)


def _handle_recursion(exc: RecursionError) -> Response:
    # Deeply nested input that escaped the JSON parsers' own guard
    return error_response(400, "malformed input: nested too deeply")


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled exception", request_id=request_id(), path=request.path)
    return error_response(500, "internal error")


def install(app: Flask, before_hooks: list, body_limits: dict | None = None) -> None:
    """Register hooks and error handlers. `before_hooks` run after the request id and body limit
    checks; `body_limits` maps (method, endpoint) to a body limit other than the app's (uploads).

    One before and one after hook do all the per-request work, each reading the request once:
    this runs on every device poll, so every proxy lookup and hook call counts."""
    body_limits = body_limits if body_limits is not None else {}
    metrics_enabled = app.config.get("MENDER_METRICS_ENABLED", True)
    listeners = ListenerMap(app.config.get("MENDER_INTERNAL_BIND", ""))

    def listener_of(environ: dict) -> str:
        """The ASGI front says which listener; under a WSGI worker class (gthread) the socket
        does; a request with neither is in-process (Flask's test client): internal."""
        listener = environ.get(ENVIRON_KEY)
        if listener is None:
            sock = environ.get("gunicorn.socket")
            listener = listeners.classify(sock.getsockname()) if sock is not None else INTERNAL
            environ[ENVIRON_KEY] = listener
        return listener
    access_enabled = access_log_enabled()

    @app.before_request
    def _start() -> None:
        req = request._get_current_object()
        state = g._get_current_object()
        state.started = time.perf_counter()
        state.request_id = request_id_for(req.headers.get(REQUEST_ID_HEADER, ""))
        if internal_only(req.path) and listener_of(req.environ) != INTERNAL:
            raise NotFound()
        if body_limits:
            limit = body_limits.get((req.method, req.endpoint))
            if limit is not None:
                req.max_content_length = limit
        limit = req.max_content_length
        length = req.content_length
        if limit is not None and length is not None and length > limit:
            from common.errors import TooLarge
            raise TooLarge(f"request body too large (limit {limit} bytes)")
        for hook in before_hooks:
            hook()

    @app.after_request
    def _finish(response: Response) -> Response:
        req = request._get_current_object()
        state = g._get_current_object()
        rid = request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        started = getattr(state, "started", None)
        elapsed = time.perf_counter() - started if started else 0.0
        rule = req.url_rule
        route = rule.rule if rule is not None else "<unmatched>"
        status = response.status_code
        if status == 204:  # no body, so no Content-Type (flask-smorest's 204 responses carry one)
            response.headers.pop("Content-Type", None)
        if status >= 400 and body_limits and (req.method, req.endpoint) in body_limits:
            # an upload refused early leaves the rest of the body unread: do not keep the connection
            response.headers["Connection"] = "close"
        if metrics_enabled:
            metrics.observe(req.method, route, status, elapsed)
        if access_enabled:
            identity = getattr(state, "identity", None)
            access_log.info("request", method=req.method, path=req.path, route=route,
                            status=status, duration_ms=round(elapsed * 1000, 2),
                            request_id=rid, remote=req.remote_addr,
                            subject=identity.subject if identity else None)
        return response

    app.register_error_handler(ServiceError, _handle_service_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(sqlite3.OperationalError, _handle_unavailable)
    app.register_error_handler(sqlite3.DatabaseError, _handle_unavailable)
    for exc_type in UNAVAILABLE_ERRORS:
        app.register_error_handler(exc_type, _handle_unavailable)
    app.register_error_handler(RecursionError, _handle_recursion)
    app.register_error_handler(OSError, _handle_os_error)
    app.register_error_handler(Exception, _handle_unexpected)
