"""deviceconnect fixtures: a migrated store on each backend, the service."""

from __future__ import annotations

import pytest

from deviceconnect.store import make_store


@pytest.fixture
def store(ctx):
    return make_store(ctx.db)


@pytest.fixture
def service(ctx):
    return ctx.services.deviceconnect
