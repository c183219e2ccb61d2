"""Every management route that changes something is named in auditlogs.catalog (what its entry
records, or READ_ONLY for a search sent as POST), and the catalog names no route the app lacks."""

from __future__ import annotations

import pytest

from auditlogs.catalog import BODY_ID, EMITTED, LOCATION, MUTATIONS, SELF, TENANT
from common.permissions import route_key

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def url_app(tmp_path_factory):
    from common.app import create_app
    from tests.helpers import backend_config
    app = create_app(backend_config("sqlite", str(tmp_path_factory.mktemp("catalog"))))
    yield app
    app.extensions["mender"].shutdown()
    app.extensions["mender"].db.close()


def mutating_routes(app) -> dict[str, object]:
    out = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/management/"):
            for method in rule.methods & MUTATING:
                out[route_key(method, rule.rule)] = rule
    return out


def test_every_mutating_management_route_is_in_the_catalog(url_app):
    missing = sorted(set(mutating_routes(url_app)) - set(MUTATIONS))
    assert not missing, f"add these to auditlogs/catalog.py MUTATIONS (or as READ_ONLY): {missing}"


def test_the_catalog_names_no_route_the_app_lacks(url_app):
    assert not sorted(set(MUTATIONS) - set(mutating_routes(url_app)))


def test_each_entry_names_a_real_path_parameter(url_app):
    routes = mutating_routes(url_app)
    for key, recorded in MUTATIONS.items():
        if recorded is not None and recorded.id_from not in (SELF, LOCATION, BODY_ID, TENANT, EMITTED):
            assert recorded.id_from in routes[key].arguments, key


def test_every_entry_says_where_its_object_id_comes_from():
    """An entry without an object id names nothing (the v2 organization creation, a direct
    upload's start, a bulk operation were written so): every mutation says where its id is, or
    that its service reports one event per object."""
    assert not [key for key, recorded in MUTATIONS.items() if recorded is not None and not recorded.id_from]
