"""Inventory HTTP APIs: device, management v1/v2 and internal."""

from __future__ import annotations

import io

from flask import Response, jsonify, request

from common.api import request_json
from common.auth import current_identity
from common.errors import TooLarge
from common.pagination import Page, paging_headers
from inventory.model import EstimatedCount


def empty(status: int) -> Response:
    """A response without a body (Mender answers 200 with no body to inventory uploads)."""
    return Response(status=status)


def paged(items: list[dict], page: Page, total: int) -> Response:
    """A page of results with X-Total-Count and Link; a total estimated from a sample (a large
    search on SQLite, docs/inventory.md) adds `X-Total-Count-Estimated: true`."""
    response = jsonify(items)
    response.headers.update(paging_headers(page, len(items), total))
    if isinstance(total, EstimatedCount):
        response.headers["X-Total-Count-Estimated"] = "true"
    return response


def caller():
    """(tenant, subject) of the authenticated caller."""
    identity = current_identity()
    return identity.tenant, identity.subject


def query_items():
    return list(request.args.items(multi=True))


def _check_chunked_size(req=None) -> None:
    """Enforce the size limit on chunked bodies too.

    A chunked body has no Content-Length, and Werkzeug then silently truncates it at
    MAX_CONTENT_LENGTH (the JSON would fail to parse: a 400 instead of the 413 it deserves).
    So read one byte past the limit from the server's input first."""
    req = req if req is not None else request
    limit = req.max_content_length
    environ = req.environ
    if (limit is not None and req.content_length is None and environ.get("wsgi.input_terminated")
            and not environ.get("inventory.body_checked")):
        data = environ["wsgi.input"].read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"request body too large (limit {limit} bytes)")
        environ["wsgi.input"] = io.BytesIO(data)
        environ["inventory.body_checked"] = True


def json_body(req=None):
    """The JSON body of `req` (any werkzeug request; the current Flask request by default): 415
    when not JSON, 400 when malformed, 413 when too large."""
    _check_chunked_size(req)
    return request_json(req)


def optional_json_body():
    """The JSON body, or None when there is none (search parameters are optional)."""
    _check_chunked_size()
    if not request.get_data(cache=True).strip():
        return None
    return request_json()
