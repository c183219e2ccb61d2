"""Inventory HTTP APIs: device, management v1/v2 and internal."""

from __future__ import annotations

from flask import Response, request

from common.auth import current_identity


def empty(status: int) -> Response:
    """A response without a body (Mender answers 200 with no body to inventory uploads)."""
    return Response(status=status)


def caller():
    """(tenant, subject) of the authenticated caller."""
    identity = current_identity()
    return identity.tenant, identity.subject


def query_items():
    return list(request.args.items(multi=True))
