"""Inventory HTTP APIs: device, management v1/v2 and internal."""

from __future__ import annotations

from flask import Response, jsonify, request

from common.api import read_body, request_json
from common.auth import current_identity
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


def json_body(req=None):
    """The JSON body of `req` (any werkzeug request; the current Flask request by default): 415
    when not JSON, 400 when malformed, 413 when too large."""
    return request_json(req)


def optional_json_body():
    """The JSON body, or None when there is none (search parameters are optional)."""
    if not read_body(request).strip():
        return None
    return request_json()
