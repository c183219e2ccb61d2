"""flask-smorest Blueprint with Mender's conventions: 400 (not 422) on invalid input,
415 on a body that is not JSON, and JSON parsing that survives hostile nesting."""

from __future__ import annotations

import functools
import io
import json
from typing import Any

import flask
import flask_smorest
from marshmallow import ValidationError, fields
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.routing import BaseConverter

from common.errors import BadRequest, TooLarge, UnsupportedMediaType
from common.jsonbody import parse_json_bytes
from common.tenancy import TENANT_ID_PATTERN, tenant_from_api, tenant_to_api


def request_json(req=None) -> Any:
    """The JSON body of `req` (any werkzeug request; the current Flask request by default): 415
    when it is not declared as JSON, 400 when malformed, 413 when it is over the size limit."""
    req = req if req is not None else flask.request._get_current_object()
    raw = read_body(req)
    require_json_type(req)
    if not raw.strip():
        raise BadRequest("missing JSON body")
    return parse_json_bytes(raw)


def require_json_type(req) -> None:
    """415 unless the body is declared as JSON (`application/json` exactly, what devices send,
    needs no parse of the header's parameters: werkzeug's `mimetype` does one)."""
    if req.environ.get("CONTENT_TYPE") != "application/json" and not core.is_json(req.mimetype):
        raise UnsupportedMediaType("Content-Type must be application/json")


def read_body(req) -> bytes:
    """The body, read once, within the request's limit (`check_chunked_size` for a chunked one)."""
    check_chunked_size(req)
    return req.get_data(cache=True)


_BODY_CHECKED = "mender.body_checked"


def check_chunked_size(req) -> None:
    """Enforce the size limit on a chunked body (no Content-Length) as on a declared one.

    Werkzeug stops reading such a body at `max_content_length` without saying whether more was
    sent (a JSON cut there would fail to parse: a 400 instead of the 413 it deserves). So the
    server's input is read one byte past the limit first: longer than the limit is a 413, and a
    body of exactly the limit is accepted, as with a Content-Length of the limit (the ASGI front
    reads a chunked body to a small route one byte past its limit too). Done once per request,
    before anything reads the body."""
    limit = req.max_content_length
    environ = req.environ
    if (limit is not None and req.content_length is None and environ.get("wsgi.input_terminated")
            and not environ.get(_BODY_CHECKED)):
        data = environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"request body too large (limit {limit} bytes)")
        environ["wsgi.input"] = io.BytesIO(data)
        environ[_BODY_CHECKED] = True


def no_content() -> flask.Response:
    """An empty 204 (no body, so no Content-Type), built without a serializer."""
    response = flask.current_app.response_class(status=204)
    del response.headers["Content-Type"]
    return response


def json_response(body: Any, status: int = 200) -> flask.Response:
    """`body` as compact JSON, built directly (the schema-less fast path of the device API)."""
    return flask.current_app.response_class(json.dumps(body, separators=(",", ":")), status=status,
                                            mimetype="application/json")


def flask_response(status: int, body: Any) -> flask.Response:
    """A direct route handler's answer (common.direct: None, a `Raw` body or a JSON-able value)
    as the Flask view that calls the same handler returns it."""
    from common.direct import Raw  # (common.direct imports this module through common.http)
    if body is None:
        response = no_content()
        response.status_code = status
        return response
    if type(body) is Raw:
        return flask.current_app.response_class(body.data, status=status, content_type=body.content_type)
    return json_response(body, status)


def handler_view(handler, public: bool = False, **params) -> flask.Response:
    """A Flask view's answer from a direct route's handler (common.direct): the same handler,
    called with the app context, the current request and caller (None on a public path) and the
    route's parameters, so both paths answer alike."""
    from common.app import ctx  # (imports this module)
    from common.auth import current_identity
    identity = None if public else current_identity()
    return flask_response(*handler(ctx(), flask.request._get_current_object(), identity, **params))


class MenderParser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> Any:
        raw = read_body(req)
        if not raw.strip():
            return core.missing
        if not core.is_json(req.mimetype):
            raise UnsupportedMediaType("Content-Type must be application/json")
        return parse_json_bytes(raw)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = MenderParser()

    def response(self, status_code, schema=None, **kwargs):
        """flask-smorest's response decorator; a view without a response schema that returns
        None answers with no body and no Content-Type (Mender's 201/202 "nothing to say"), where
        flask-smorest would send the JSON `null`."""
        decorate = super().response(status_code, schema, **kwargs)
        if schema is not None:
            return decorate
        status = int(status_code)

        def decorator(func):
            @functools.wraps(func)
            def view(*args, **kw):
                result = flask.current_app.ensure_sync(func)(*args, **kw)
                if result is None and status != 204:
                    response = flask.current_app.response_class(status=status)
                    del response.headers["Content-Type"]
                    return response
                return result
            return decorate(view)
        return decorator


def format_validation_messages(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested messages into `field: problem; other.field: problem`."""
    parts: list[str] = []

    def walk(node: Any, path: str, top: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                key = str(key)
                # the first level names where the input was (a field may be called `path` too)
                if top and key in ("json", "query", "querystring", "form", "files", "headers", "view_args", "path"):
                    walk(value, "")
                elif key == "_schema":
                    walk(value, path)
                else:
                    walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, (list, tuple)):
            if node and all(isinstance(v, str) for v in node):
                text = " ".join(node)
                parts.append(f"{path}: {text}" if path else text)
            else:
                for item in node:
                    walk(item, path)
        else:
            parts.append(f"{path}: {node}" if path else str(node))

    walk(messages, prefix, top=not prefix)
    return "; ".join(parts) or "invalid request"


class TenantConverter(BaseConverter):
    """`<tenant:name>` in internal paths: an organization id, `default` naming the default
    organization; the view receives the stored id ("" for the default organization)."""

    regex = TENANT_ID_PATTERN

    def to_python(self, value: str) -> str:
        return tenant_from_api(value)

    def to_url(self, value: str) -> str:
        return tenant_to_api(value)


class TenantIdField(fields.String):
    """An organization id in a query or a body: `default` (or empty) is the default organization;
    loads as the stored id ("" for the default organization)."""

    def _deserialize(self, value, attr, data, **kwargs):
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return tenant_from_api(raw)
        except BadRequest as exc:
            raise ValidationError(exc.message) from None
