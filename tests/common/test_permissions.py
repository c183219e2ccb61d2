"""The permission table (common.permissions): it names every management route of the app (HTTP
and websocket) and nothing else, the HTTP layer refuses what it does not name, decisions row by
row for the built-in roles and narrowed grants, and docs/rbac.md is the table as the code has it."""

from __future__ import annotations

import os

import pytest
from flask import jsonify

from common import permissions as p
from common.auth import PUBLIC_PATHS, Identity
from common.permissions import Grant, decide, route_key
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def url_app(tmp_path_factory):
    from common.app import create_app
    from tests.helpers import backend_config
    app = create_app(backend_config("sqlite", str(tmp_path_factory.mktemp("perm"))))
    yield app
    app.extensions["mender"].shutdown()
    app.extensions["mender"].db.close()


def management_operations(app) -> set[str]:
    """Every management operation the app serves: Flask's URL map and the ASGI front's websockets."""
    keys = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/management/"):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                keys.add(route_key(method, rule.rule))
    for rule, _handler in app.extensions["mender"].websocket_routes:
        if rule.startswith("/api/management/"):
            keys.add(route_key("GET", rule))
    return keys


def test_every_management_route_is_in_the_table(url_app):
    missing = sorted(management_operations(url_app) - set(p.ROUTES))
    assert not missing, ("management routes the permission table does not name (add each to "
                         f"common/permissions.py ROUTES with the permission set it needs): {missing}")


def test_the_table_names_no_route_the_app_lacks(url_app):
    stale = sorted(set(p.ROUTES) - management_operations(url_app))
    assert not stale, f"rows of common/permissions.py ROUTES for routes that do not exist: {stale}"


def test_the_websocket_routes_are_decided_by_the_table(url_app):
    sockets = {route_key("GET", rule) for rule, _ in url_app.extensions["mender"].websocket_routes
               if rule.startswith("/api/management/")}
    assert sockets == {"GET /api/management/v1/deviceconnect/devices/{id}/connect",
                       "GET /api/management/v1/deviceconnect/sessions/{session_id}/playback"}
    assert all(n.permission_set == p.CONNECT_TO_DEVICES for k in sockets for n in p.ROUTES[k])


def test_open_rows_are_exactly_the_public_paths():
    open_rows = {k.split(" ", 1)[1] for k, needs in p.ROUTES.items() if needs == p.OPEN}
    assert open_rows == {path for path in PUBLIC_PATHS if path.startswith("/api/management/")}


def test_every_row_names_known_permission_sets_and_scopes():
    for key, needs in p.ROUTES.items():
        assert needs, key
        for n in needs:
            assert n.permission_set in p.PERMISSION_SETS or n.permission_set == p.PUBLIC, key
            assert n.scope in (p.ALL, p.ANY, p.LISTED, p.TARGET) or n.kind in p._BY_ID, key
            if n.scope not in (p.ALL, p.ANY) and n.permission_set not in (p.PUBLIC, p.BASIC):
                assert p.PERMISSION_SETS[n.permission_set].scope_types, key


def test_route_key():
    assert route_key("GET", "/api/x/<string:a>/y/<b>") == "GET /api/x/{a}/y/{b}"
    assert route_key("PUT", "/api/x/<int(min=1):n>") == "PUT /api/x/{n}"


def test_docs_carry_the_current_table():
    with open(os.path.join(ROOT, "docs", "rbac.md"), encoding="utf-8") as f:
        text = f.read()
    assert p.replace_generated(text, p.markdown_table()) == text, \
        "docs/rbac.md is out of date: run `flask --app wsgi rbac-table --write docs/rbac.md`"


def test_rbac_table_command(url_app, tmp_path):
    runner = url_app.test_cli_runner()
    printed = runner.invoke(args=["rbac-table"])
    assert printed.exit_code == 0 and p.markdown_table() in printed.output
    doc = tmp_path / "rbac.md"
    doc.write_text(f"intro\n{p.GENERATED_BEGIN}\nold\n{p.GENERATED_END}\noutro\n")
    written = runner.invoke(args=["rbac-table", "--write", str(doc)])
    assert written.exit_code == 0, written.output
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{p.GENERATED_END}\noutro\n")
    assert "\nold\n" not in text and p.markdown_table() in text


# ------------------------------------------------------------------------- decisions
def roles(*names):
    return p.role_grants(names)


@pytest.mark.parametrize("role,allowed,denied", [
    (p.PERMIT_ALL, ["DELETE /api/management/v2/devauth/devices/{id}", "POST /api/management/v1/useradm/users"], []),
    (p.OBSERVER, ["GET /api/management/v2/devauth/devices", "GET /api/management/v1/deployments/artifacts",
                  "GET /api/management/v1/useradm/users"],
     ["PUT /api/management/v2/devauth/devices/{id}/auth/{aid}/status", "POST /api/management/v1/deployments/artifacts",
      "POST /api/management/v1/useradm/users", "POST /api/management/v1/deployments/deployments",
      "GET /api/management/v1/deviceconnect/devices/{id}/connect"]),
    (p.USER_MANAGER, ["POST /api/management/v1/useradm/users", "GET /api/management/v1/useradm/users"],
     ["GET /api/management/v2/devauth/devices", "GET /api/management/v1/deployments/artifacts"]),
    (p.CI, ["POST /api/management/v1/deployments/artifacts", "GET /api/management/v2/deployments/deployments/releases"],
     ["DELETE /api/management/v1/deployments/artifacts/{artifact_id}", "GET /api/management/v2/devauth/devices",
      "POST /api/management/v1/deployments/deployments", "DELETE /api/management/v2/devauth/devices/{id}"]),
    (p.DEPLOYMENTS_MANAGER, ["POST /api/management/v1/deployments/deployments",
                             "PUT /api/management/v1/deployments/deployments/{deployment_id}/status",
                             "GET /api/management/v2/devauth/devices"],
     ["POST /api/management/v1/deployments/artifacts", "DELETE /api/management/v2/devauth/devices/{id}"]),
    (p.REMOTE_TERMINAL, ["GET /api/management/v1/deviceconnect/devices/{id}/connect",
                         "PUT /api/management/v1/deviceconnect/devices/{id}/upload"],
     ["POST /api/management/v1/deployments/deployments", "GET /api/management/v1/deployments/artifacts"]),
])
def test_builtin_roles(role, allowed, denied):
    grants = roles(role)
    for key in allowed:
        assert decide(grants, p.ROUTES[key]).allowed, key
    for key in denied:
        access = decide(grants, p.ROUTES[key])
        assert not access.allowed and "requires the permission set" in access.reason, key


def test_every_user_holds_basic_and_nobody_an_unknown_operation():
    assert decide((), p.ROUTES["POST /api/management/v1/useradm/auth/logout"]).allowed
    assert not decide((), p.ROUTES["GET /api/management/v1/useradm/users"]).allowed
    denied = decide(roles(p.PERMIT_ALL), None)
    assert not denied.allowed and "not in the permission table" in denied.reason


def test_unknown_roles_grant_nothing():
    assert p.role_grants(["RBAC_ROLE_NOPE"]) == ()
    custom = {"lab": (Grant(p.READ_DEVICES, p.DEVICE_GROUPS, frozenset({"lab"})),)}
    assert p.role_grants(["lab", "other"], custom) == custom["lab"]


def test_narrowed_grants():
    lab_reader = (Grant(p.READ_DEVICES, p.DEVICE_GROUPS, frozenset({"lab"})),)
    listed = p.need(p.READ_DEVICES, p.LISTED)
    access = decide(lab_reader, listed)
    assert access.allowed and access.device_groups == {"lab"} and access.release_tags is None and access.scoped
    assert not decide(lab_reader, p.need(p.READ_DEVICES, p.ALL)).allowed
    assert decide(lab_reader, p.need(p.READ_DEVICES, p.ANY)) == p.Access(True)
    by_id = decide(lab_reader, p.need(p.READ_DEVICES, "device:id"))
    assert by_id.checks == (("device", "id"),) and by_id.device_groups == {"lab"}
    # an unscoped grant of the same set wins over a narrowed one
    assert decide(lab_reader + roles(p.OBSERVER), listed) == p.Access(True)


def test_grants_combine_per_permission_set_never_across():
    """CVE-2026-33552 (Mender Enterprise < 4.1.1): roles over different groups gave the union
    of their privileges. Manage on A and read on B: read A and B, manage only A."""
    grants = (Grant(p.MANAGE_DEVICES, p.DEVICE_GROUPS, frozenset({"A"})),
              Grant(p.READ_DEVICES, p.DEVICE_GROUPS, frozenset({"B"})))
    assert decide(grants, p.need(p.READ_DEVICES, p.LISTED)).device_groups == {"A", "B"}
    assert decide(grants, p.need(p.MANAGE_DEVICES, "device:id")).device_groups == {"A"}
    assert not decide(grants, p.need(p.DEPLOY_TO_DEVICES, p.TARGET)).allowed


def test_deploying_needs_devices_and_releases():
    grants = (Grant(p.DEPLOY_TO_DEVICES, p.DEVICE_GROUPS, frozenset({"testing"})),
              Grant(p.READ_RELEASES, p.RELEASE_TAGS, frozenset({"approved"})))
    needs = p.need(p.DEPLOY_TO_DEVICES, p.TARGET) + p.need(p.READ_RELEASES, p.TARGET)
    access = decide(grants, needs)
    assert access.allowed and access.device_groups == {"testing"} and access.release_tags == {"approved"}
    assert not decide(grants[:1], needs).allowed


# ------------------------------------------------------------------------- the HTTP layer
def test_a_route_the_table_does_not_name_is_refused(make_app):
    app = make_app("sqlite")
    app.extensions["mender"].authenticators["management"] = \
        lambda token: Identity(subject="u", is_user=True, token_id="t")

    @app.route("/api/management/v1/unlisted/thing", methods=["GET", "POST"])
    def unlisted():
        return jsonify({"ran": True})

    client = app.test_client()
    for method in ("GET", "POST", "HEAD"):
        r = client.open("/api/management/v1/unlisted/thing", method=method, headers={"Authorization": "Bearer x"})
        assert r.status_code == 403, method
        if method != "HEAD":
            body = r.get_json()
            assert body["error"] == "forbidden: operation not in the permission table" and body["request_id"]
    assert client.options("/api/management/v1/unlisted/thing", headers={"Authorization": "Bearer x"}).status_code == 200


def test_head_is_decided_as_get(make_app, monkeypatch):
    app = make_app("sqlite")
    ctx = app.extensions["mender"]
    ctx.authenticators["management"] = lambda token: Identity(subject="u", is_user=True, token_id="t")
    ctx.authorizer.grants_of = lambda identity: roles(p.CI)
    client = app.test_client()
    headers = {"Authorization": "Bearer x"}
    assert client.head("/api/management/v1/deployments/artifacts", headers=headers).status_code == 200
    assert client.head("/api/management/v2/devauth/devices", headers=headers).status_code == 403
    r = client.get("/api/management/v2/devauth/devices", headers=headers)
    assert r.status_code == 403
    assert r.get_json()["error"] == "forbidden: requires the permission set ReadDevices"
