"""Fixtures for useradm tests: the store on each backend, Basic-auth helpers."""

from __future__ import annotations

import base64

import pytest

LOGIN = "/api/management/v1/useradm/auth/login"
LOGOUT = "/api/management/v1/useradm/auth/logout"
USERS = "/api/management/v1/useradm/users"


def basic(email: str, password: str) -> dict:
    raw = f"{email}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def store(app):
    """The migrated useradm store of the parametrized backend."""
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.useradm._store


@pytest.fixture
def useradm(app):
    return app.extensions["mender"].services.useradm
