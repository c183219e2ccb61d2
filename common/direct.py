"""Direct routes: the fleet's hottest device requests (the deployment poll) served by a thin WSGI
layer in front of Flask, with every rule of the Flask path and none of its per-request machinery.

A device poll through Flask paid for a request and an app context, URL matching, six hooks, two
context-local lookups per attribute and a response object: about as much server CPU as the poll's
own work (bench/README.md). A direct route is a (method, rule) pair that a service registers with
a handler `handler(req, identity, **params) -> (status, body)` (`req` a plain werkzeug Request;
`identity` None on a public route; `params` the rule's `<name>` segments, decoded as werkzeug
decodes a path; `body` a JSON-able value, a `Raw` body with its content type, or None for an
empty answer). The layer does what common.http's hooks and error handlers do, through the same
functions:

- the request id (the caller's X-MEN-RequestID when sane, else a new one), echoed on the answer;
- the listener rule (`/api/internal/...` only on the internal listener), the query string's UTF-8
  check, the body limit (MENDER_REQUEST_SIZE_LIMIT, 413 before reading);
- lazy migrations and the per-request hooks every request runs (AppContext.request_hooks);
- authentication by the realm's authenticator (common.auth.authenticate_token: devices' tokens
  are checked against their stored row on every request, so revocation applies at once), except
  on the device API's public paths (the signed auth request);
- the request's reads in one read transaction (`Database.read`; its body, of known length, read
  before it), which its first write ends;
- errors mapped by common.http.error_for into `{"error", "request_id"}`;
- the Prometheus request metrics and the JSON access line, with the route template as label.

Only device routes (under /api/devices/: the `devices` realm or its public paths, which the
permission table does not decide and the audit log does not record) can be direct; a rule's
`<name>` segment matches what werkzeug's default (`string`) converter matches, one non-empty path
segment. A request with another method or path, or with a path Flask would redirect or refuse,
goes to Flask unchanged (HEAD, OPTIONS, a trailing slash, a double slash). The Flask
view of each route stays registered (the OpenAPI document, and MENDER_DIRECT_ROUTES=false) and
calls the same handler, so both paths answer alike (tests/common/test_direct.py compares them).
"""

from __future__ import annotations

import json
import re
import time
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any, Callable

from werkzeug.exceptions import ClientDisconnected
from werkzeug.sansio.utils import get_content_length
from werkzeug.utils import cached_property
from werkzeug.wrappers import Request

from common import metrics
from common.auth import DEVICES, PUBLIC_PATHS, PUBLIC_PREFIXES, authenticate_token, realm_of
from common.errors import BadRequest, TooLarge
from common.http import ENVIRON_REQUEST_ID, REQUEST_ID_HEADER, error_for, request_id_for
from common.identity import Identity
from common.listeners import internal_only
from common.logging import access_log_enabled, get_logger

access_log = get_logger("access")

Handler = Callable[..., tuple[int, Any]]
_SEGMENT = re.compile(r"<(?:string:)?([A-Za-z_][A-Za-z0-9_]*)>")


class Raw:
    """A handler's body that is not JSON: the bytes and their Content-Type, sent as they are."""

    __slots__ = ("data", "content_type")

    def __init__(self, data: bytes, content_type: str):
        self.data = data
        self.content_type = content_type

_STATUS_LINES = {200: "200 OK", 201: "201 CREATED", 204: "204 NO CONTENT"}


def _compact_json() -> Callable[[Any], bytes]:
    """json.dumps(value, separators=(",", ":")).encode(), the same bytes, with the encoder made
    once: json.dumps with separators builds a JSONEncoder and its C encoder on every call (~3-5 µs
    of a 200 poll's ~8 µs of JSON)."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return lambda value: encoder.encode(value).encode()
    # (markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys, allow_nan):
    # the arguments JSONEncoder.iterencode passes for these settings, without the circular-reference
    # markers (the bodies are trees the handlers build)
    make = c_make_encoder(None, encoder.default, encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(make(value, 0)).encode()


compact_json = _compact_json()


def status_line(status: int) -> str:
    line = _STATUS_LINES.get(status)
    if line is None:
        from http import HTTPStatus
        try:
            line = f"{status} {HTTPStatus(status).phrase.upper()}"
        except ValueError:
            line = f"{status} UNKNOWN"
    return line


class DirectRequest(Request):
    """werkzeug's Request, reading a body of known length in one call: the layer has checked it
    against the limit, and werkzeug's guarded stream costs more than a poll's JSON parse."""

    _body: bytes | None = None

    @cached_property
    def content_length(self) -> int | None:
        """werkzeug's, from the environ's two values directly (through its headers, the absent
        Transfer-Encoding was a KeyError raised and caught on every request)."""
        environ = self.environ
        return get_content_length(environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING"))

    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        length = self.content_length
        if as_text or parse_form_data or length is None or "stream" in self.__dict__:
            return super().get_data(cache, as_text, parse_form_data)
        if self._body is None:
            body = self.input_stream.read(length) if length else b""
            if len(body) < length:  # as werkzeug's stream: the client went away mid-body
                raise ClientDisconnected()
            self._body = body
        return self._body


class _Route:
    __slots__ = ("rule", "label", "handler", "realm", "pattern")

    def __init__(self, rule: str, handler: Handler, realm: str | None, pattern: re.Pattern | None = None):
        self.rule = rule
        self.label = metrics.route_label(rule)
        self.handler = handler
        self.realm = realm
        self.pattern = pattern


class DirectRoutes:
    """The WSGI layer (AppContext.direct_routes): `add` routes, then it wraps Flask's wsgi_app."""

    def __init__(self, context, enabled: bool = True):
        self.context = context
        self.enabled = enabled
        self.routes: dict[tuple[str, str], _Route] = {}
        self.patterns: dict[str, list[_Route]] = {}  # method -> the routes of rules with <name> segments
        self.app = None  # Flask's wsgi_app, set by `wrap`
        cfg = context.config
        self.limit = int(cfg.get("MENDER_REQUEST_SIZE_LIMIT", 1 << 20))
        self.metrics_enabled = bool(cfg.get("MENDER_METRICS_ENABLED", True))

    def add(self, method: str, rule: str, handler: Handler) -> None:
        """Serve `method rule` with `handler`: `rule` as the Flask view's (its metrics label), its
        parameters `<name>` or `<string:name>`. Raises ValueError for a route outside the device
        API, with another converter, or whose parameters could reach a public path."""
        realm = realm_of(rule)
        if not rule.startswith("/api/devices/") or internal_only(rule) or realm not in (DEVICES, None):
            raise ValueError(f"a direct route is a device API path, not {rule!r}")
        if "<" not in rule:
            self.routes[(method.upper(), rule)] = _Route(rule, handler, realm)
            return
        literal = rule[:rule.index("<")]
        if (_SEGMENT.sub("", rule).count("<") or realm != DEVICES
                or any(p.startswith(literal) for p in (*PUBLIC_PATHS, *PUBLIC_PREFIXES))):
            raise ValueError(f"a direct route's parameters are <name> segments of a device path, not {rule!r}")
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)"
                        for i, part in enumerate(_SEGMENT.split(rule)))
        self.patterns.setdefault(method.upper(), []).append(_Route(rule, handler, realm, re.compile(regex)))

    def wrap(self, wsgi_app):
        self.app = wsgi_app
        return self

    def __call__(self, environ: dict, start_response):
        # an exact match of method and path, else a rule with <name> segments (none is under
        # /api/internal/, so no listener rule applies); anything else is Flask's
        if not self.enabled:
            return self.app(environ, start_response)
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        route = self.routes.get((method, path))
        if route is not None:
            return self._serve(route, environ, start_response, {})
        for route in self.patterns.get(method, ()):
            match = route.pattern.fullmatch(path or "")
            if match is not None:  # each segment as werkzeug decodes the path (UTF-8, replacing)
                params = {k: v.encode("latin-1").decode(errors="replace") for k, v in match.groupdict().items()}
                return self._serve(route, environ, start_response, params)
        return self.app(environ, start_response)

    def _serve(self, route: _Route, environ: dict, start_response, params: dict):
        started = time.perf_counter()
        rid = environ[ENVIRON_REQUEST_ID] = request_id_for(environ.get("HTTP_X_MEN_REQUESTID", ""))
        req = DirectRequest(environ)
        req.max_content_length = self.limit
        identity = None
        try:
            if "HTTP_TRANSFER_ENCODING" not in environ:
                # the request's reads in one read transaction (common.db's SqliteDatabase.read):
                # the token's, the handler's; a write ends it. The body (of known length, checked
                # against the limit first) is read before, so no socket read happens inside it
                self._check(req, environ)
                if req.content_length:
                    try:
                        req.get_data()
                    except ClientDisconnected:
                        pass  # raised again where the handler reads it (after authentication, as Flask)
                with self.context.db.read():
                    identity = self._prepare(route, req, environ, checked=True)
                    status, body = route.handler(req, identity, **params)
            else:
                identity = self._prepare(route, req, environ)
                status, body = route.handler(req, identity, **params)
            if body is None:
                payload = b""
                headers = [(REQUEST_ID_HEADER, rid)]
            elif type(body) is Raw:
                payload = body.data
                headers = [("Content-Type", body.content_type), ("Content-Length", str(len(payload))),
                           (REQUEST_ID_HEADER, rid)]
            else:
                payload = compact_json(body)
                headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                           (REQUEST_ID_HEADER, rid)]
        except Exception as exc:  # noqa: BLE001 - mapped as Flask's error handlers map it
            status, message, extra_headers, extra = error_for(exc, rid, req.path, self.context.disk_check)
            error = dict(extra or {})
            error["error"] = message
            error["request_id"] = rid
            payload = compact_json(error) + b"\n"  # as Flask's jsonify
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
            headers += [(str(k), str(v)) for k, v in extra_headers.items()]
            headers.append((REQUEST_ID_HEADER, rid))
        elapsed = time.perf_counter() - started
        method = environ["REQUEST_METHOD"]
        if self.metrics_enabled:
            metrics.observe(method, route.label, status, elapsed)
        if access_log_enabled():
            access_log.info("request", method=method, path=req.path, route=route.label, status=status,
                            duration_ms=round(elapsed * 1000, 2), request_id=rid, remote=req.remote_addr,
                            subject=identity.subject if identity else None)
        start_response(status_line(status), headers)
        return [payload] if payload else []

    def _prepare(self, route: _Route, req: Request, environ: dict, checked: bool = False) -> Identity | None:
        """common.http's before-request checks, authentication, the app's per-request hooks."""
        if not checked:
            self._check(req, environ)
        context = self.context
        if not context.migrated:
            context.ensure_migrated()
        identity = authenticate_token(context.authenticators, route.realm, req) if route.realm else None
        for hook in context.request_hooks:
            hook()
        return identity

    def _check(self, req: Request, environ: dict) -> None:
        """The query string's encoding and the body's announced length."""
        query = environ.get("QUERY_STRING", "")
        if query and not query.isascii():
            try:  # werkzeug decodes raw (not percent-encoded) query bytes as strict UTF-8
                query.encode("latin-1").decode()
            except UnicodeDecodeError:
                raise BadRequest("malformed query string: not UTF-8") from None
        length = req.content_length
        if length is not None and length > self.limit:
            raise TooLarge(f"request body too large (limit {self.limit} bytes)")
