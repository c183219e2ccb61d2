"""auditlogs fixtures: a migrated store on each backend."""

from __future__ import annotations

import pytest

from auditlogs.store import make_store


@pytest.fixture
def store(ctx):
    return make_store(ctx.db)
