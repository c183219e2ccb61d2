"""Fixtures shared by every test: apps on each storage backend, clients, a real gunicorn."""

from __future__ import annotations

import os
import uuid

import pytest

from common.app import create_app
from tests import mongomock_collmod
from tests.helpers import backend_config

mongomock_collmod.install()

BACKENDS = ["sqlite", "mongomock", "mongo"]


def _backend_params():
    marks = {"mongo": pytest.mark.skipif(not os.environ.get("TEST_MONGO_URL"),
                                         reason="real MongoDB runs need TEST_MONGO_URL")}
    return [pytest.param(b, marks=marks.get(b, ()), id=b) for b in BACKENDS]


@pytest.fixture(params=_backend_params())
def backend(request):
    """Each storage backend in turn: SQLite, the MongoDB store on mongomock, real MongoDB."""
    return request.param


@pytest.fixture(params=["direct", "flask"])
def both_paths(request, monkeypatch):
    """Each way a device endpoint served as a direct route (common.direct) can be reached: through
    the direct layer, and through its Flask view (MENDER_DIRECT_ROUTES=false). A module or test
    that uses it (`pytest.mark.usefixtures("both_paths")`) runs once each way; every app it makes
    reads the setting from the environment."""
    monkeypatch.setenv("MENDER_DIRECT_ROUTES", "true" if request.param == "direct" else "false")
    return request.param


@pytest.fixture
def make_app(tmp_path, request):
    """Factory: make_app(backend="sqlite", **config) -> a Flask app on a fresh data dir/database."""
    created = []

    def factory(backend: str = "sqlite", **config):
        data_dir = config.pop("MENDER_DATA_DIR", None) or str(tmp_path / f"data-{len(created)}")
        cfg = backend_config(backend, data_dir)
        cfg.update(config)
        app = create_app(cfg)
        created.append(app)
        return app

    yield factory
    for app in created:
        ctx = app.extensions["mender"]
        ctx.shutdown()
        if ctx.db.kind == "mongo" and os.environ.get("TEST_MONGO_URL") and ctx.config.get("_DROP_DB"):
            ctx.db.client.drop_database(ctx.db.db_name)
        ctx.db.close()


@pytest.fixture
def app(make_app, backend):
    return make_app(backend)


@pytest.fixture
def ctx(app):
    """The app's context, migrated: its services and stores are ready to use."""
    context = app.extensions["mender"]
    context.ensure_migrated()
    return context


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def sqlite_app(make_app):
    return make_app("sqlite")


@pytest.fixture
def sqlite_client(sqlite_app):
    return sqlite_app.test_client()


@pytest.fixture
def unique():
    return lambda prefix="x": f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def operator(app, client):
    """A logged-in operator of the default tenant on the parametrized backend."""
    from tests.helpers import Operator
    return Operator.create(app, client)


@pytest.fixture
def device_factory(app, client, operator):
    """device_factory(**kwargs) -> an accepted device with a token (kwargs as for Device)."""
    from tests.helpers import accepted_device
    return lambda **kw: accepted_device(app, operator, client, **kw)
