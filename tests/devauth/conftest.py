"""devauth fixtures: a migrated store on each backend, a service, device keys."""

from __future__ import annotations

import pytest

from devauth.store import make_store


@pytest.fixture
def store(ctx):
    return make_store(ctx.db)


@pytest.fixture
def service(ctx):
    return ctx.services.devauth
