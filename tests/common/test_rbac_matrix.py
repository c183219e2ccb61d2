"""The permission table, enforced: every built-in role and two custom roles limited to device
groups and release tags, against every management route of the URL map (allowed: anything but
403; refused: 403 with the JSON error), and what the limited roles see in lists, searches,
counts and statistics, by id, and where they may deploy. One app per backend."""

from __future__ import annotations

import io
import os
import re
import uuid

import pytest

from common import permissions as p
from common.app import create_app
from auditlogs.catalog import MUTATIONS
from auditlogs.model import EntryFilter
from common.permissions import route_key
from tests.deployments.test_api import build_artifact
from tests.helpers import Operator, accepted_device, backend_config

BACKENDS = ["sqlite", "mongomock"] + (["mongo"] if os.environ.get("TEST_MONGO_URL") else [])
PW = "correct-horse-battery"
LAB_READER = "lab-reader"
TESTING_DEPLOYER = "testing-deployer"
CUSTOM = {
    LAB_READER: [{"name": "ReadDevices", "scope": {"type": "DeviceGroups", "value": ["lab"]}},
                 {"name": "ConnectToDevices", "scope": {"type": "DeviceGroups", "value": ["lab"]}}],
    TESTING_DEPLOYER: [{"name": "DeployToDevices", "scope": {"type": "DeviceGroups", "value": ["testing"]}},
                       {"name": "ReadReleases", "scope": {"type": "ReleaseTags", "value": ["approved"]}}],
}
SKIP = {"POST /api/management/v1/useradm/auth/login", "POST /api/management/v1/useradm/auth/logout"}
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rbac")
    app = create_app(backend_config(request.param, str(tmp)))
    client = app.test_client()
    admin = Operator.create(app, client)
    for name, sets in CUSTOM.items():
        assert admin.post("/api/management/v2/useradm/roles",
                          json={"name": name, "permission_sets_with_scope": sets}).status_code == 201
    users = {"admin": admin}
    for role in list(p.BUILTIN_ROLES) + list(CUSTOM):
        users[role] = Operator.create(app, client, roles=[role])
    devices = {}
    for group in ("lab", "testing", None):
        dev = accepted_device(app, admin, client)
        if group:
            assert admin.put(f"/api/management/v1/inventory/devices/{dev.id}/group",
                             json={"group": group}).status_code == 204
        devices[group] = dev.id
    for release, tag in (("rel-approved", "approved"), ("rel-beta", "beta")):
        data = build_artifact(tmp, release)
        r = admin.post("/api/management/v1/deployments/artifacts",
                       data={"size": str(len(data)), "artifact": (io.BytesIO(data), "a.mender")},
                       content_type="multipart/form-data")
        assert r.status_code == 201, r.data
        assert admin.put(f"/api/management/v2/deployments/deployments/releases/{release}/tags",
                         json=[tag]).status_code == 204
    yield app, client, users, devices
    ctx = app.extensions["mender"]
    ctx.shutdown()
    if ctx.config.get("_DROP_DB"):
        ctx.db.client.drop_database(ctx.db.db_name)
    ctx.db.close()


def grants_of(role: str) -> tuple[p.Grant, ...]:
    if role in p.BUILTIN_ROLES:
        return p.BUILTIN_ROLES[role].grants
    from useradm.service import check_grants
    return check_grants(CUSTOM[role])


def management_routes(app):
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/management/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = route_key(method, rule.rule)
            if key not in SKIP:
                yield method, rule.rule, key


def concrete(rule: str) -> str:
    return _PARAM.sub(lambda m: "g" + uuid.uuid4().hex[:10], rule)


@pytest.mark.parametrize("role", ["admin"] + list(p.BUILTIN_ROLES) + list(CUSTOM))
def test_every_route_answers_as_the_table_says(world, role):
    app, client, users, _ = world
    user = users[role]
    grants = grants_of(p.PERMIT_ALL if role == "admin" else role)
    wrong = []
    mutated = {}
    for method, rule, key in management_routes(app):
        allowed = p.decide(grants, p.ROUTES.get(key)).allowed
        kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        rid = f"matrix-{uuid.uuid4().hex}"
        r = user.request(method, concrete(rule), headers={"X-MEN-RequestID": rid}, **kw)
        if method != "GET" and r.status_code < 400 and MUTATIONS.get(key) is not None:
            mutated[rid] = key
        if allowed and r.status_code == 403:
            wrong.append(f"{key}: 403 for an allowed role ({r.get_json()})")
        if not allowed:
            body = r.get_json(silent=True) or {}
            if r.status_code != 403 or not body.get("request_id") or not body.get("error"):
                wrong.append(f"{key}: {r.status_code} for a refused role")
    assert not wrong, "\n".join(wrong)
    # every change that went through is in the audit log, with its request id
    entries, _ = app.extensions["mender"].services.auditlogs.list("", EntryFilter(), limit=10_000)
    logged = {e.request_id for e in entries}
    assert not {key for rid, key in mutated.items() if rid not in logged}


def test_no_secret_reaches_the_audit_log(world):
    app, client, users, _ = world
    admin = users["admin"]
    marker = "S3cret-" + uuid.uuid4().hex
    r = admin.post("/api/management/v1/useradm/settings/tokens", json={"name": "scan"})
    pat = r.get_data(as_text=True)
    email = f"scan-{uuid.uuid4().hex[:6]}@example.com"
    uid = admin.post("/api/management/v1/useradm/users", json={"email": email, "password": marker}
                     ).headers["Location"].rsplit("/", 1)[1]
    bad = Operator(client, email, marker + "-wrong")
    assert client.post(bad.LOGIN_PATH, headers={"Authorization": "Basic " + __import__("base64").b64encode(
        f"{email}:{marker}-wrong".encode()).decode()}).status_code == 401
    ok = Operator(client, email, marker)
    ok.login()
    assert ok.put("/api/management/v1/useradm/users/me",
                  json={"password": marker + "-new", "current_password": marker}).status_code == 204
    entries, _ = app.extensions["mender"].services.auditlogs.list("", EntryFilter(), limit=10_000)
    text = repr([(e.actor, e.object_id, e.object_name, e.object_extra, e.change) for e in entries])
    secrets = [marker, pat, ok.token] + [u.token for u in users.values()]
    assert not [s for s in secrets if s and s in text]
    assert "eyJ" not in text and "BEGIN" not in text
    actions = {(e.action, e.object_id) for e in entries}
    assert ("login_failed", uid) in actions and ("login", uid) in actions
    assert any(e.action == "update" and e.object_id == uid and e.change == "password changed" for e in entries), [(e.action, e.change) for e in entries if e.object_id == uid]


def ids(r) -> set[str]:
    assert r.status_code == 200, r.data
    return {d["id"] for d in r.get_json()}


def test_a_role_limited_to_device_groups_sees_only_those(world):
    app, client, users, devices = world
    lab = users[LAB_READER]
    inv = "/api/management/v1/inventory"
    r = lab.get(f"{inv}/devices")
    assert ids(r) == {devices["lab"]} and r.headers["X-Total-Count"] == "1"
    r = lab.post("/api/management/v2/inventory/filters/search", json={"page": 1, "per_page": 20})
    assert ids(r) == {devices["lab"]} and r.headers["X-Total-Count"] == "1"
    r = lab.post("/api/management/v2/inventory/filters/search",
                 json={"filters": [{"scope": "system", "attribute": "group", "type": "$eq", "value": "testing"}]})
    assert ids(r) == set() and r.headers["X-Total-Count"] == "0"
    assert lab.get(f"{inv}/groups").get_json() == ["lab"]
    assert lab.get(f"{inv}/devices/{devices['lab']}").status_code == 200
    for other in (devices["testing"], devices[None]):
        assert lab.get(f"{inv}/devices/{other}").status_code == 404
        assert lab.get(f"/api/management/v2/devauth/devices/{other}").status_code == 404
        assert lab.get(f"/api/management/v1/deviceconnect/devices/{other}").status_code == 404
    assert lab.get(f"/api/management/v2/devauth/devices/{devices['lab']}").status_code == 200
    assert lab.get(f"{inv}/groups/lab/devices").status_code == 200
    assert lab.get(f"{inv}/groups/testing/devices").status_code == 404
    # counts and statistics over every device are refused, not answered partially
    assert lab.get("/api/management/v2/inventory/statistics").status_code == 403
    assert lab.get("/api/management/v2/devauth/devices/count").status_code == 403
    assert lab.get("/api/management/v2/devauth/devices").status_code == 403
    # the administrator sees everything
    assert ids(users["admin"].get(f"{inv}/devices")) >= set(devices.values())


def test_a_role_limited_to_groups_and_tags_deploys_only_there(world):
    app, client, users, devices = world
    dep = users[TESTING_DEPLOYER]
    base = "/api/management/v1/deployments/deployments"

    def create(path=base, **body):
        return dep.post(path, json={"name": f"d-{uuid.uuid4().hex[:6]}", **body})

    r = create(f"{base}/group/testing", artifact_name="rel-approved")
    assert r.status_code == 201, r.data
    assert create(f"{base}/group/lab", artifact_name="rel-approved").status_code == 404
    assert create(f"{base}/group/testing", artifact_name="rel-beta").status_code == 403
    assert create(devices=[devices["testing"]], artifact_name="rel-approved").status_code == 201
    assert create(devices=[devices["testing"], devices["lab"]], artifact_name="rel-approved").status_code == 403
    assert create(all_devices=True, artifact_name="rel-approved").status_code == 403
    r = dep.post("/api/management/v2/deployments/deployments",
                 json={"name": "f", "artifact_name": "rel-approved",
                       "filter": [{"scope": "system", "attribute": "group", "type": "$eq", "value": "testing"}]})
    assert r.status_code == 403
    # releases: only those tagged `approved`
    rel = "/api/management/v2/deployments/deployments/releases"
    assert [x["name"] for x in dep.get(rel).get_json()] == ["rel-approved"]
    assert dep.get(f"{rel}/rel-approved").status_code == 200
    assert dep.get(f"{rel}/rel-beta").status_code == 404
    assert {x["name"] for x in users["admin"].get(rel).get_json()} == {"rel-approved", "rel-beta"}
