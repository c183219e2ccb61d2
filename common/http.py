"""HTTP plumbing installed on the app: request ids, body limits, the error body, access log, metrics."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import sqlite3
import sys
import time
from http import HTTPStatus

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common.api import format_validation_messages
from common.db import UNAVAILABLE_ERRORS
from common.errors import BadRequest, NotFound, ServiceError
from common.listeners import ENVIRON_KEY, INTERNAL, ListenerMap, internal_only
from common.logging import access_log_enabled, get_logger
from common import metrics

log = get_logger("http")
access_log = get_logger("access")

REQUEST_ID_HEADER = "X-MEN-RequestID"
_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # used with fullmatch: `$` passes a trailing newline
ENVIRON_REQUEST_ID = "mender.request_id"  # where the WSGI guard finds the id of a request Flask saw

# werkzeug's messages are long paragraphs; Mender's are short phrases
_HTTP_MESSAGES = {404: "not found", 405: "method not allowed", 413: "request body too large", 412: "precondition failed",
                  415: "unsupported media type", 400: "bad request", 401: "unauthorized",
                  403: "forbidden", 409: "conflict", 429: "too many requests", 503: "service unavailable"}


_random = random.Random()  # seeded from os.urandom once per process (reseeded after fork below)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)


def new_request_id() -> str:
    """A random UUID (version 4 layout) for a request without one. Not a secret, so it comes from
    the process's PRNG: `uuid4()` asks the kernel (a syscall, and a GIL hand-off) on every request."""
    n = (_random.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    h = f"{n:032x}"  # str(uuid.UUID(int=n)), without the UUID object
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


UNSUPPORTED_TRANSFER_CODING = "unsupported transfer coding: only chunked"


def transfer_coding_refused(value: str | bytes | None) -> bool:
    """Whether a request's Transfer-Encoding (all its lines joined with commas) is refused: anything
    but one `chunked`. gunicorn lets `gzip, chunked` (`deflate`, `compress`) through and the body
    was then read as if plain; RFC 9112 6.1: a coding the server does not understand → 501, which
    Go's net/http (Mender's servers) answers for anything but `chunked` alone."""
    if value is None:
        return False
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value.strip(" \t").lower() != "chunked"


def request_id_for(incoming: str) -> str:
    """The caller's X-MEN-RequestID when it is a sane token, else a new one."""
    return incoming if incoming and _REQUEST_ID_OK.fullmatch(incoming) else new_request_id()


_HEADER_NAME_OK = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE_OK = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # what any WSGI server can write


def bad_header(headers) -> str | None:
    """The name of the first header a WSGI server cannot send (a name that is not a token; a
    value with CR, LF, NUL or another control, or a character outside Latin-1), else None."""
    for name, value in headers:
        if not (isinstance(name, str) and _HEADER_NAME_OK.fullmatch(name)):
            return repr(name)[:64]
        if not (isinstance(value, str) and _HEADER_VALUE_OK.fullmatch(value)):
            return name
    return None


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


def _storage_full(exc: BaseException, disk_check=None) -> bool:
    """A database error that a full data disk explains: SQLITE_FULL, or an I/O error (SQLite
    reports ENOSPC on its shared-memory and journal files so) while the disk check fails."""
    for err in (exc, exc.__cause__):
        code = getattr(err, "sqlite_errorcode", None)
        if code is None:
            continue
        if code == sqlite3.SQLITE_FULL:
            return True
        if code & 0xFF == sqlite3.SQLITE_IOERR:
            if disk_check is None:
                from common.app import ctx
                disk_check = ctx().disk_check
            try:
                disk_check(0.0)
            except ServiceError:
                return True
    return False


STORAGE_FULL = "storage full: the server cannot write until disk space is freed"
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_UNAVAILABLE = (sqlite3.DatabaseError,) + tuple(UNAVAILABLE_ERRORS)


def error_for(exc: BaseException, rid: str, path: str, disk_check=None) -> tuple[int, str, dict, dict | None]:
    """How an exception raised while serving a request is answered: (status, message, headers,
    extra body fields), logging what an operator must see. The one mapping of exceptions to HTTP,
    used by Flask's error handlers and by the direct routes (common.direct)."""
    if isinstance(exc, ServiceError):
        if exc.status == 503 and _storage_full(exc, disk_check):
            log.error("storage full", error=exc.message, request_id=rid)
            return 503, STORAGE_FULL, {"Retry-After": "60"}, None
        if exc.status >= 500:
            log.warning("service error", status=exc.status, error=exc.message, request_id=rid)
        return exc.status, exc.message, exc.headers, exc.body
    if isinstance(exc, HTTPException):
        return _http_exception_error(exc, rid, path)
    if isinstance(exc, _UNAVAILABLE):
        if _storage_full(exc, disk_check):
            log.error("storage full", error=repr(exc), request_id=rid)
            return 503, STORAGE_FULL, {"Retry-After": "60"}, None
        log.error("database unavailable", error=repr(exc), request_id=rid)
        return 503, "service unavailable", {"Retry-After": "1"}, None
    if isinstance(exc, RecursionError):  # deeply nested input that escaped the JSON parsers' own guard
        return 400, "malformed input: nested too deeply", {}, None
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:  # a full disk (or quota): the operator can act
        log.error("storage full", error=repr(exc), request_id=rid)
        return 503, STORAGE_FULL, {"Retry-After": "60"}, None
    log.error("unhandled exception", request_id=rid, path=path, exc_info=(type(exc), exc, exc.__traceback__))
    return 500, "internal error", {}, None


def _http_exception_error(exc: HTTPException, rid: str, path: str) -> tuple[int, str, dict, dict | None]:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if "messages" in data:  # webargs validation failure
        message = format_validation_messages(data["messages"])
        status = 400 if status == 422 else status
    else:
        message = _HTTP_MESSAGES.get(status) or (exc.description or exc.name).rstrip(".").lower()
    if status >= 500 and status not in _HTTP_MESSAGES:
        # an error Flask wrapped (raised in an after-request hook or an error handler, or an
        # explicit abort(500)): the cause goes to the log, never to the client
        original = getattr(exc, "original_exception", None) or exc
        log.error("unhandled exception", request_id=rid, path=path,
                  exc_info=(type(original), original, original.__traceback__))
        message = "internal error"
    headers = dict(data.get("headers") or {})
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    return status, message, headers, None


WEBSOCKET_REQUIRED = "websocket handshake required (Connection: Upgrade, Upgrade: websocket)"


def _handle_error(exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.code == 404 and _websocket_route(request):
        # a plain HTTP request to a websocket route (the ASGI front serves the handshakes): the
        # route exists, so not 404 (Mender's specs: 400 for a request that is not a handshake)
        return error_response(400, WEBSOCKET_REQUIRED)
    status, message, headers, extra = error_for(exc, request_id(), request.path)
    return error_response(status, message, headers, extra)


def _websocket_route(req) -> bool:
    if req.method not in ("GET", "HEAD"):
        return False
    context = current_app.extensions.get("mender")
    if context is None or not context.websocket_routes:
        return False
    # internal paths keep their 404 (on the public listener they must not be seen to exist)
    return not internal_only(req.path) and context.is_websocket_path(req.path)


_BODY_HEADERS = frozenset({"content-type", "content-length", "content-range", "content-disposition",
                           "content-encoding", "etag", "last-modified", "accept-ranges"})


def _json_error_for(response: Response) -> Response:
    """The JSON error for a 4xx/5xx built with another body (werkzeug's conditional handling
    answers 412 to a failed `If-Match` on a static file with the file itself)."""
    status = response.status_code
    message = _HTTP_MESSAGES.get(status) or (
        "internal error" if status >= 500 else response.status.partition(" ")[2].lower() or "error")
    replacement = error_response(status, message)
    for name, value in response.headers.items():
        if name.lower() not in _BODY_HEADERS and name not in replacement.headers:
            replacement.headers.add(name, value)
    response.close()  # a file response holds an open file
    return replacement


class Guard:
    """The outermost WSGI layer: whatever escapes Flask (an exception raised by an error handler,
    while Flask finalizes a response, or by the response's own `__call__`; a status line or a
    header the server could not send) becomes the JSON 500 with a request id, instead of the WSGI
    server's text/html page. Errors while a body streams, after the headers left, can only be
    logged: the server then cuts the connection, which tells the client the body is incomplete."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = False

        def checked_start_response(status, headers, exc_info=None):
            nonlocal started
            bad = bad_header(headers) if isinstance(headers, list) else "headers"
            if bad is not None or not isinstance(status, str) or not _HEADER_VALUE_OK.fullmatch(status):
                raise _UnsendableResponse(bad or "status")
            started = True
            return start_response(status, headers, exc_info)

        if transfer_coding_refused(environ.get("HTTP_TRANSFER_ENCODING")):  # under a WSGI worker class
            return self._refuse(environ, start_response, 501, UNSUPPORTED_TRANSFER_CODING)
        try:
            return self.wsgi_app(environ, checked_start_response)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            return self._internal_error(environ, start_response, exc, sys.exc_info() if started else None)

    @staticmethod
    def _refuse(environ, start_response, status: int, message: str):
        rid = request_id_for(environ.get("HTTP_X_MEN_REQUESTID", ""))
        return _wsgi_error(start_response, status, message, rid, [("Connection", "close")])

    @staticmethod
    def _internal_error(environ, start_response, exc: Exception, exc_info):
        rid = environ.get(ENVIRON_REQUEST_ID) or request_id_for(environ.get("HTTP_X_MEN_REQUESTID", ""))
        if isinstance(exc, _UnsendableResponse):
            log.error("response header cannot be sent", header=str(exc), request_id=rid)
        else:
            log.error("unhandled exception outside the app", request_id=rid,
                      exc_info=(type(exc), exc, exc.__traceback__))
        # with exc_info: the server re-raises if the first headers already left
        return _wsgi_error(start_response, 500, "internal error", rid, [], exc_info)


def _wsgi_error(start_response, status: int, message: str, rid: str, headers: list, exc_info=None) -> list[bytes]:
    """The JSON error body {"error", "request_id"} written straight to a WSGI server (outside Flask)."""
    body = json.dumps({"error": message, "request_id": rid}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase.upper()}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                    (REQUEST_ID_HEADER, rid), *headers], exc_info)
    return [body]


class _UnsendableResponse(Exception):
    """A response whose status or headers the server could not write."""


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
        state.request_id = req.environ[ENVIRON_REQUEST_ID] = request_id_for(
            req.headers.get(REQUEST_ID_HEADER, ""))
        if internal_only(req.path) and listener_of(req.environ) != INTERNAL:
            raise NotFound()
        if body_limits:
            limit = body_limits.get((req.method, req.endpoint))
            if limit is not None:
                req.max_content_length = limit
        if not req.query_string.isascii():
            try:  # werkzeug decodes raw (not percent-encoded) query bytes as strict UTF-8
                req.query_string.decode()
            except UnicodeDecodeError:
                raise BadRequest("malformed query string: not UTF-8") from None
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
        bad = bad_header(response.headers.items())
        if bad is not None:
            # a header built from input that the WSGI server cannot send (gunicorn would answer
            # its own text/html 500): a bug to fix where the header is built; the client gets
            # the JSON 500, metrics and the access line count it as one
            log.error("response header cannot be sent", header=bad, request_id=rid, path=req.path)
            response = error_response(500, "internal error")
        elif response.status_code >= 400 and response.mimetype != "application/json":
            response = _json_error_for(response)
        response.headers[REQUEST_ID_HEADER] = rid
        started = getattr(state, "started", None)
        elapsed = time.perf_counter() - started if started else 0.0
        rule = req.url_rule
        route = metrics.route_label(rule.rule) if rule is not None else "<unmatched>"
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

    # one handler: common.http.error_for decides (Flask still picks the most specific registration)
    for exc_type in (ServiceError, HTTPException, sqlite3.OperationalError, sqlite3.DatabaseError,
                     *UNAVAILABLE_ERRORS, RecursionError, OSError, Exception):
        app.register_error_handler(exc_type, _handle_error)
