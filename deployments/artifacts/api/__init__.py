"""HTTP helpers shared by the artifacts blueprints."""

from __future__ import annotations

import contextlib

from flask import current_app, request

from common.auth import current_identity
from common.errors import BadRequest, Conflict
from deployments.artifacts.multipart import MultipartReader


def caller_tenant() -> str:
    """The tenant of the authenticated caller."""
    return current_identity().tenant


def base_url() -> str:
    """Scheme and host put in signed links: the configured ones, else the request's."""
    cfg = current_app.config
    scheme = cfg.get("DEPLOYMENTS_PRESIGN_URL_SCHEME") or request.scheme
    host = cfg.get("DEPLOYMENTS_PRESIGN_URL_HOSTNAME") or request.host
    return f"{scheme}://{host}"


def string_filter(raw: str | None):
    """`foo` matches exactly, `foo*` by prefix; None when absent (or a bare `*`)."""
    if raw is None or raw == "":
        return None
    if raw.endswith("*"):
        return ("prefix", raw[:-1]) if raw[:-1] else None
    return ("eq", [raw])


def names_filter(values: list[str]):
    """Several exact names, or one prefix (`foo*`); mixing them is a 400."""
    values = [v for v in values if v]
    if not values:
        return None
    if any(v.endswith("*") for v in values):
        if len(values) > 1:
            raise BadRequest("name: a prefix (name*) cannot be combined with other names")
        return string_filter(values[0])
    return ("eq", values)


def parse_sort(raw: str | None, allowed: tuple[str, ...], default: str = "name:asc") -> tuple[str, bool]:
    value = raw or default
    field, _, direction = value.partition(":")
    direction = direction or "asc"
    if field not in allowed or direction not in ("asc", "desc"):
        options = ", ".join(f"{f}:asc, {f}:desc" for f in allowed)
        raise BadRequest(f"sort: must be one of {options}")
    return field, direction == "asc"


def multipart_reader() -> MultipartReader:
    """A streaming reader of the request body; 400 unless it is multipart/form-data."""
    if request.mimetype != "multipart/form-data":
        raise BadRequest("Content-Type must be multipart/form-data")
    return MultipartReader(request.stream, request.mimetype_params.get("boundary", ""))


@contextlib.contextmanager
def conflict_answered():
    """An ArtifactConflict from the service becomes a 409 whose body names the other artifact."""
    from deployments.artifacts.api import render
    from deployments.artifacts.service import ArtifactConflict
    try:
        yield
    except ArtifactConflict as exc:
        raise Conflict(exc.message, body=render.conflict(exc)) from None
