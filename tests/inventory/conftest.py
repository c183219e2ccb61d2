"""Fixtures for inventory tests: the migrated service and store on each backend, a frozen clock."""

from __future__ import annotations

import time

import pytest

from common.clock import FrozenClock, rfc3339_ms
from inventory.api import render

# a fixed "now": 01:00 UTC today (tokens issued by useradm must not be expired in real time)
T0 = float(int(time.time()) // 86400 * 86400 + 3600)


def ts(offset: float = 0.0) -> str:
    """T0 + offset as the API renders timestamps."""
    return rfc3339_ms(T0 + offset)


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def app(make_app, backend, clock):
    return make_app(backend, _CLOCK=clock)


@pytest.fixture
def svc(app):
    """The inventory service of the parametrized backend (migrated)."""
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.inventory


@pytest.fixture
def store(svc):
    return svc.store


def attrs_of(device, scope: str | None = None) -> dict:
    """{(scope, name) or name: value} of a device (a record, or as the API renders it)."""
    if not isinstance(device, dict):
        device = render.device(device)
    if scope:
        return {a["name"]: a["value"] for a in device["attributes"] if a["scope"] == scope}
    return {(a["scope"], a["name"]): a["value"] for a in device["attributes"]}


def pred(attribute, op, value, scope="inventory"):
    return {"scope": scope, "attribute": attribute, "type": op, "value": value}
