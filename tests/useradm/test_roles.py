"""Roles: the roles API (built-in and custom, scoped to device groups and release tags), users
carrying roles, personal access tokens acting with their user's roles (narrower when asked), the
last administrator. One app per backend for the module."""

from __future__ import annotations

import os
import uuid

import pytest

from common.app import create_app
from tests.helpers import Operator, backend_config

V1 = "/api/management/v1/useradm"
V2 = "/api/management/v2/useradm"
BACKENDS = ["sqlite", "mongomock"] + (["mongo"] if os.environ.get("TEST_MONGO_URL") else [])
PW = "correct-horse-battery"


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    app = create_app(backend_config(request.param, str(tmp_path_factory.mktemp("roles"))))
    client = app.test_client()
    admin = Operator.create(app, client)
    yield app, client, admin
    ctx = app.extensions["mender"]
    ctx.shutdown()
    if ctx.config.get("_DROP_DB"):
        ctx.db.client.drop_database(ctx.db.db_name)
    ctx.db.close()


def name(prefix="role") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_user(admin, roles=None) -> tuple[str, str]:
    email = f"u-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PW}
    if roles is not None:
        body["roles"] = roles
    r = admin.post(f"{V1}/users", json=body)
    assert r.status_code == 201, r.data
    return r.headers["Location"].rsplit("/", 1)[1], email


def login(client, email) -> Operator:
    op = Operator(client, email, PW)
    op.login()
    return op


def new_token(maker: Operator, body: dict) -> Operator:
    """A personal access token `maker` creates with `body` (200 required), as an operator."""
    r = maker.post(f"{V1}/settings/tokens", json=body)
    assert r.status_code == 200, r.data
    op = Operator(maker.client, maker.email, PW)
    op.token = r.get_data(as_text=True)
    return op


def test_roles_api(world):
    app, client, admin = world
    listed = admin.get(f"{V2}/roles").get_json()
    builtin = [r["name"] for r in listed if r["built_in"]]
    assert builtin[:6] == ["RBAC_ROLE_PERMIT_ALL", "RBAC_ROLE_OBSERVER", "RBAC_ROLE_USER_MANAGER", "RBAC_ROLE_CI",
                           "RBAC_ROLE_DEPLOYMENTS_MANAGER", "RBAC_ROLE_REMOTE_TERMINAL"]
    sets = {s["name"]: s for s in admin.get(f"{V2}/permission_sets").get_json()}
    assert sets["DeployToDevices"]["supported_scope_types"] == ["DeviceGroups"]
    assert sets["ReadReleases"]["supported_scope_types"] == ["ReleaseTags"]

    role = name()
    body = {"name": role, "description": "deploy approved releases to testing",
            "permission_sets_with_scope": [
                {"name": "DeployToDevices", "scope": {"type": "DeviceGroups", "value": ["testing"]}},
                {"name": "ReadReleases", "scope": {"type": "ReleaseTags", "value": ["approved"]}},
                {"name": "ReadDevices"}]}
    r = admin.post(f"{V2}/roles", json=body)
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/v2/useradm/roles/{role}")
    got = admin.get(f"{V2}/roles/{role}").get_json()
    assert got["permission_sets_with_scope"] == body["permission_sets_with_scope"] and not got["built_in"]
    assert admin.get(f"{V1}/roles/{role}").get_json()["permissions"] == []  # v1 shows the same role
    assert admin.post(f"{V2}/roles", json=body).status_code == 409
    assert admin.post(f"{V2}/roles", json={**body, "name": "RBAC_ROLE_OBSERVER"}).status_code == 409
    r = admin.put(f"{V2}/roles/{role}", json={"description": "changed",
                                               "permission_sets_with_scope": [{"name": "ReadDevices"}]})
    assert r.status_code == 202
    assert admin.get(f"{V2}/roles/{role}").get_json()["permission_sets_with_scope"] == [{"name": "ReadDevices"}]
    for bad in ({"name": "bad name!", "permission_sets_with_scope": [{"name": "ReadDevices"}]},
                {"name": name(), "permission_sets_with_scope": [{"name": "Nope"}]},
                {"name": name(), "permission_sets_with_scope": [{"name": "SuperUser"}]},
                {"name": name(), "permission_sets_with_scope": []},
                {"name": name(), "permission_sets_with_scope": [
                    {"name": "UploadArtifacts", "scope": {"type": "DeviceGroups", "value": ["x"]}}]},
                {"name": name(), "permission_sets_with_scope": [
                    {"name": "ReadDevices", "scope": {"type": "ReleaseTags", "value": ["x"]}}]},
                {"name": name(), "permission_sets_with_scope": [
                    {"name": "ReadDevices", "scope": {"type": "DeviceGroups", "value": []}}]},
                {"name": name(), "permissions": [{"action": "http", "object": {"type": "GET", "value": "/x"}}]}):
        r = admin.post(f"{V2}/roles", json=bad)
        assert r.status_code == 400 and r.get_json()["request_id"], bad
    assert admin.put(f"{V2}/roles/RBAC_ROLE_OBSERVER", json={"description": "x"}).status_code == 409
    assert admin.delete(f"{V2}/roles/RBAC_ROLE_OBSERVER").status_code == 409
    assert admin.get(f"{V2}/roles/{name()}").status_code == 404
    # a role someone holds cannot be removed
    uid, _ = new_user(admin, [role])
    assert admin.delete(f"{V2}/roles/{role}").status_code == 409
    assert admin.put(f"{V1}/users/{uid}", json={"roles": ["RBAC_ROLE_OBSERVER"]}).status_code == 204
    assert admin.delete(f"{V2}/roles/{role}").status_code == 204
    assert admin.get(f"{V2}/roles/{role}").status_code == 404


def test_users_carry_roles_and_the_table_decides(world):
    app, client, admin = world
    assert admin.get(f"{V1}/users/me").get_json()["roles"] == ["RBAC_ROLE_PERMIT_ALL"]
    uid, email = new_user(admin, ["RBAC_ROLE_OBSERVER"])
    assert admin.get(f"{V1}/users/{uid}").get_json()["roles"] == ["RBAC_ROLE_OBSERVER"]
    assert admin.post(f"{V1}/users", json={"email": f"x-{uuid.uuid4().hex[:6]}@example.com", "password": PW,
                                           "roles": ["no-such-role"]}).status_code == 400
    observer = login(client, email)
    assert observer.get(f"{V1}/users").status_code == 200
    assert observer.get("/api/management/v1/inventory/devices").status_code == 200
    r = observer.post(f"{V1}/users", json={"email": "y@example.com", "password": PW})
    assert r.status_code == 403 and r.get_json()["request_id"] and "ManageUsers" in r.get_json()["error"]
    assert observer.delete("/api/management/v2/devauth/devices/x").status_code == 403
    # one's own account stays one's own; one's own roles are not
    assert observer.get(f"{V1}/users/me").status_code == 200
    assert observer.put(f"{V1}/users/me", json={"roles": ["RBAC_ROLE_PERMIT_ALL"]}).status_code == 403
    # a role given counts at the next request, with the same token
    assert admin.put(f"{V1}/users/{uid}", json={"roles": ["RBAC_ROLE_USER_MANAGER"]}).status_code == 204
    assert observer.get("/api/management/v1/inventory/devices").status_code == 403
    assert observer.get(f"{V1}/users").status_code == 200


def test_only_an_administrator_makes_or_removes_administrators(world):
    app, client, admin = world
    uid, email = new_user(admin, ["RBAC_ROLE_USER_MANAGER"])
    manager = login(client, email)
    other, _ = new_user(admin, ["RBAC_ROLE_OBSERVER"])
    assert manager.put(f"{V1}/users/{uid}", json={"roles": ["RBAC_ROLE_PERMIT_ALL"]}).status_code == 403
    assert manager.put(f"{V1}/users/{other}", json={"roles": ["RBAC_ROLE_PERMIT_ALL"]}).status_code == 403
    assert manager.post(f"{V1}/users", json={"email": f"m-{uuid.uuid4().hex[:6]}@example.com", "password": PW,
                                             "roles": ["RBAC_ROLE_PERMIT_ALL"]}).status_code == 403
    assert manager.put(f"{V1}/users/{other}", json={"roles": ["RBAC_ROLE_CI"]}).status_code == 204
    admin_id = admin.get(f"{V1}/users/me").get_json()["id"]
    assert manager.delete(f"{V1}/users/{admin_id}").status_code == 403
    # nor locks one out by changing the email it logs in with
    r = manager.put(f"{V1}/users/{admin_id}", json={"email": f"taken-{uuid.uuid4().hex[:6]}@example.com"})
    assert r.status_code == 403 and set(r.get_json()) == {"error", "request_id"}
    assert admin.get(f"{V1}/users/me").get_json()["email"] == admin.email
    assert manager.put(f"{V1}/users/{other}", json={"email": f"o-{uuid.uuid4().hex[:6]}@example.com"}).status_code == 204
    second, second_email = new_user(admin)  # another administrator may
    new_email = f"a-{uuid.uuid4().hex[:6]}@example.com"
    assert admin.put(f"{V1}/users/{second}", json={"email": new_email}).status_code == 204
    assert admin.delete(f"{V1}/users/{second}").status_code == 204
    assert manager.delete(f"{V1}/users/{other}").status_code == 204


def test_the_last_administrator_stays(make_app):
    app = make_app("sqlite")
    client = app.test_client()
    admin = Operator.create(app, client)
    me = admin.get(f"{V1}/users/me").get_json()["id"]
    r = admin.put(f"{V1}/users/{me}", json={"roles": ["RBAC_ROLE_OBSERVER"]})
    assert r.status_code == 409 and "RBAC_ROLE_PERMIT_ALL" in r.get_json()["error"]
    assert admin.delete(f"{V1}/users/{me}").status_code == 409
    assert admin.get(f"{V1}/users/me").get_json()["roles"] == ["RBAC_ROLE_PERMIT_ALL"]
    second, _ = new_user(admin)  # another administrator: now either may go
    assert admin.put(f"{V1}/users/{me}", json={"roles": ["RBAC_ROLE_OBSERVER", "RBAC_ROLE_USER_MANAGER"]}
                     ).status_code == 204
    assert admin.delete(f"{V1}/users/{second}").status_code == 403  # no longer an administrator itself


def test_personal_access_tokens_act_with_their_users_roles(world):
    app, client, admin = world
    uid, email = new_user(admin, ["RBAC_ROLE_OBSERVER", "RBAC_ROLE_CI"])
    user = login(client, email)
    pat = new_token(user, {"name": "ci", "roles": ["RBAC_ROLE_CI"]})
    assert user.get(f"{V1}/settings/tokens").get_json()[0]["roles"] == ["RBAC_ROLE_CI"]
    assert pat.get("/api/management/v1/deployments/artifacts").status_code == 200
    assert pat.get("/api/management/v1/inventory/devices").status_code == 403  # narrower than its user
    assert user.get("/api/management/v1/inventory/devices").status_code == 200
    r = user.post(f"{V1}/settings/tokens", json={"name": "wider", "roles": ["RBAC_ROLE_PERMIT_ALL"]})
    assert r.status_code == 400 and "subset" in r.get_json()["error"]
    full = new_token(user, {"name": "full"})
    assert full.get("/api/management/v1/inventory/devices").status_code == 200
    # a role taken from the user counts at each token's next request
    assert admin.put(f"{V1}/users/{uid}", json={"roles": ["RBAC_ROLE_OBSERVER"]}).status_code == 204
    assert pat.get("/api/management/v1/deployments/artifacts").status_code == 403
    assert full.get("/api/management/v1/deployments/artifacts").status_code == 200  # ReadReleases: observer
    assert full.post("/api/management/v1/deployments/artifacts").status_code == 403
    # given back, the narrowed token works again (it never held more than CI)
    assert admin.put(f"{V1}/users/{uid}", json={"roles": ["RBAC_ROLE_CI"]}).status_code == 204
    assert pat.get("/api/management/v1/deployments/artifacts").status_code == 200


def test_a_narrowed_token_mints_no_wider_token(world):
    """A token narrowed to some roles creates tokens as narrow at most: one it makes without
    `roles` keeps its own narrowing (else a leaked read-only token became a user manager's)."""
    app, client, admin = world
    uid, email = new_user(admin, ["RBAC_ROLE_OBSERVER", "RBAC_ROLE_USER_MANAGER"])
    user = login(client, email)
    narrow = new_token(user, {"name": "read", "roles": ["RBAC_ROLE_OBSERVER"]})
    body = {"email": f"x-{uuid.uuid4().hex[:8]}@example.com", "password": PW, "roles": []}
    assert narrow.post(f"{V1}/users", json=body).status_code == 403
    minted = new_token(narrow, {"name": "minted"})
    assert minted.post(f"{V1}/users", json=body).status_code == 403
    assert minted.get(f"{V1}/users").status_code == 200  # ReadUsers: the observer's
    listed = {t["name"]: t for t in user.get(f"{V1}/settings/tokens").get_json()}
    assert listed["minted"]["roles"] == ["RBAC_ROLE_OBSERVER"]
    r = narrow.post(f"{V1}/settings/tokens", json={"name": "wider", "roles": ["RBAC_ROLE_USER_MANAGER"]})
    assert r.status_code == 400 and "subset" in r.get_json()["error"]
    # the user's own session still makes a token with all of the user's roles
    full = new_token(user, {"name": "full"})
    assert full.post(f"{V1}/users", json=body).status_code == 201
