"""HTTP layer of the iotmanager service."""

from __future__ import annotations

import flask


def empty(status: int, headers: dict | None = None) -> flask.Response:
    """A response without a body (nor a Content-Type): 201 with a Location, 202."""
    response = flask.current_app.response_class(status=status, headers=headers)
    del response.headers["Content-Type"]
    return response
