"""Per-organization limits: users (422), accepted devices (422 / 401), artifact storage (413);
past a limit nothing is half-written, and other organizations are not affected."""

from __future__ import annotations

import dataclasses
import io

import pytest

from tests.artifacts.tools import craft
from tests.helpers import Device, Operator
from tests.tenantadm.conftest import INTERNAL, create_org
from tests.tenantadm.populate import stored_objects

USERS = "/api/management/v1/useradm/users"
ARTIFACTS = "/api/management/v1/deployments/artifacts"


@pytest.fixture
def app(make_app, backend, storage_config):
    return make_app(backend, **storage_config)


def upload(op, name: str, filler: bytes = b""):
    data = craft(name, files=[("app.conf", b"hello\n" + filler)])
    return op.post(ARTIFACTS, content_type="multipart/form-data",
                   data={"size": str(len(data)), "artifact": (io.BytesIO(data), "a.mender")}), len(data)


@pytest.mark.parametrize("storage", ["filesystem"])
def test_user_limit(app, client, org_factory):
    a, b = org_factory("A", max_users=2), org_factory("B", max_users=1)
    assert a.admin.post(USERS, json={"email": "two@a.io", "password": "password-22"}).status_code == 201
    r = a.admin.post(USERS, json={"email": "three@a.io", "password": "password-33"})
    assert r.status_code == 422 and "user limit" in r.get_json()["error"]
    assert [u["email"] for u in a.admin.get(USERS).get_json()] == [a.admin.email, "two@a.io"]
    assert b.admin.post(USERS, json={"email": "two@b.io", "password": "password-22"}).status_code == 422
    assert client.post(f"{INTERNAL}/tenants/{a.id}/limits", json={}).status_code == 405  # limits are set with PUT
    assert client.put(f"{INTERNAL}/tenants/{a.id}/limits", json={"max_users": -1}).status_code == 204
    assert a.admin.post(USERS, json={"email": "three@a.io", "password": "password-33"}).status_code == 201
    # a concurrent creation that takes the last place: the later one is refused, never both kept
    client.put(f"{INTERNAL}/tenants/{a.id}/limits", json={"max_users": 4})
    useradm = app.extensions["mender"].services.useradm
    original = useradm._store.insert_user

    def racing_insert(user):
        useradm._store.insert_user = original
        original(dataclasses.replace(user, id="racer", email="racer@a.io"))  # lands between the check and the insert
        original(user)

    useradm._store.insert_user = racing_insert
    try:
        r = a.admin.post(USERS, json={"email": "five@a.io", "password": "password-55"})
    finally:
        useradm._store.insert_user = original
    assert r.status_code == 422
    assert sorted(u["email"] for u in a.admin.get(USERS).get_json()) == sorted(
        [a.admin.email, "two@a.io", "three@a.io", "racer@a.io"])


def test_default_organization_user_limit_from_the_setting(make_app, backend):
    app = make_app(backend, USERADM_MAX_USERS="1")
    client = app.test_client()
    op = Operator.create(app, client)
    assert op.post(USERS, json={"email": "two@x.io", "password": "password-22"}).status_code == 422
    a = create_org(app, client, "A")  # its first user fits the same default limit
    assert a.admin.post(USERS, json={"email": "two@a.io", "password": "password-22"}).status_code == 422


@pytest.mark.parametrize("storage", ["filesystem"])
def test_device_limit_per_organization(app, client, operator, org_factory):
    a, b = org_factory("A", max_devices=1), org_factory("B")
    first, second = Device(client, tenant_token=a.tenant_token), Device(client, tenant_token=a.tenant_token)
    for d in (first, second):
        d.auth()
    a.admin.accept(first)
    record = a.admin.find_device(second)
    r = a.admin.put(f"/api/management/v2/devauth/devices/{record['id']}/auth/{record['auth_sets'][0]['id']}/status",
                    json={"status": "accepted"})
    assert r.status_code == 422
    assert a.admin.find_device(second)["status"] == "pending"
    preauth = Device(client, tenant_token=a.tenant_token)
    assert a.admin.post("/api/management/v2/devauth/devices",
                        json={"identity_data": preauth.identity, "pubkey": preauth.pubkey}).status_code == 201
    assert preauth.auth().status_code == 401  # over the limit: stays preauthorized
    assert a.admin.get("/api/management/v2/devauth/limits/max_devices").get_json() == {"limit": 1}
    # other organizations have their own limits
    for _ in range(2):
        d = Device(client, tenant_token=b.tenant_token)
        d.auth()
        b.admin.accept(d)
    assert b.admin.get("/api/management/v2/devauth/limits/max_devices").get_json() == {"limit": -1}
    d = Device(client)
    d.auth()
    operator.accept(d)


def test_storage_limit(app, client, operator, org_factory):
    _, one = upload(operator, "probe")  # the size of an artifact like those below
    a, b = org_factory("A", storage_limit=one + one // 2), org_factory("B", storage_limit=one)
    r, _ = upload(a.admin, "a-1")
    assert r.status_code == 201
    objects = stored_objects(app, f"{a.id}/")
    r, _ = upload(a.admin, "a-2")
    assert r.status_code == 413 and "storage limit" in r.get_json()["error"]
    r, _ = upload(a.admin, "a-big", filler=b"x" * (one * 4))  # refused while streaming
    assert r.status_code == 413
    assert [x["name"] for x in a.admin.get(ARTIFACTS).get_json()] == ["a-1"]
    assert stored_objects(app, f"{a.id}/") == objects  # nothing half-written
    usage = a.admin.get("/api/management/v1/deployments/limits/storage").get_json()
    assert usage == {"limit": one + one // 2, "usage": one}
    assert upload(b.admin, "b-1")[0].status_code == 201  # B's own limit
    assert upload(operator, "d-1")[0].status_code == 201  # the default organization: unlimited
    # the internal operations of Mender's spec change the limit
    url = f"/api/internal/v1/deployments/tenants/{a.id}/limits/storage"
    assert client.get(url).get_json() == usage
    assert client.put(url, json={"limit": 0}).status_code == 204  # 0: unlimited
    assert upload(a.admin, "a-2")[0].status_code == 201
    for body in ({"limit": -1}, {}, {"limit": "1"}, {"limit": 1, "x": 2}):
        assert client.put(url, json=body).status_code == 400, body
    assert client.get("/api/internal/v1/deployments/tenants/default/limits/storage").get_json()["limit"] == 0
    assert client.get("/api/internal/v1/deployments/tenants/bad%2Fid/limits/storage").status_code == 404
    # a full organization frees room by deleting an artifact
    client.put(url, json={"limit": one * 2})
    assert upload(a.admin, "a-3")[0].status_code == 413
    first = a.admin.get(ARTIFACTS).get_json()[0]["id"]
    assert a.admin.delete(f"{ARTIFACTS}/{first}").status_code == 204
    assert upload(a.admin, "a-3")[0].status_code == 201


def test_storage_limit_holds_against_a_concurrent_upload(app, client, org_factory):
    """Two uploads that each fit but not together: the one that registers second is refused and
    its object removed (the check after the insert covers a database without transactions)."""
    _, one = upload(org_factory("Probe").admin, "probe")
    a = org_factory("A", storage_limit=one * 2 - 1)
    artifacts = app.extensions["mender"].services.artifacts
    original = artifacts.store.insert_artifact

    def racing(tenant, record):
        artifacts.store.insert_artifact = original
        original(tenant, dataclasses.replace(record, id="00000000-0000-4000-8000-000000000001", name="racer",
                                             depends_idx=['{"device_type":"racer"}']))
        original(tenant, record)

    artifacts.store.insert_artifact = racing
    try:
        r, _ = upload(a.admin, "a-1")
    finally:
        artifacts.store.insert_artifact = original
    assert r.status_code == 413
    assert [x["name"] for x in a.admin.get(ARTIFACTS).get_json()] == ["racer"]
    assert stored_objects(app, f"{a.id}/") == []  # the racer has no object: it was only a record


@pytest.mark.parametrize("storage", ["filesystem"])
def test_storage_limit_applies_to_direct_uploads(app, client, org_factory):
    _, one = upload(org_factory("Probe").admin, "probe")
    a = org_factory("A", storage_limit=one - 1)
    link = a.admin.post(f"{ARTIFACTS}/directupload").get_json()
    path = link["uri"].split("://", 1)[1].split("/", 1)[1]
    data = craft("a-1")
    assert client.put(f"/{path}", data=data).status_code == 413
    client.put(f"{INTERNAL}/tenants/{a.id}/limits", json={"storage_limit": 0})
    assert client.put(f"/{path}", data=data).status_code == 200
    client.put(f"{INTERNAL}/tenants/{a.id}/limits", json={"storage_limit": one - 1})
    r = a.admin.post(f"{ARTIFACTS}/directupload/{link['id']}/complete")
    assert r.status_code == 413
    assert a.admin.get(ARTIFACTS).get_json() == []
    assert stored_objects(app, f"{a.id}/") == []


@pytest.mark.parametrize("storage", ["filesystem"])
def test_device_limit_holds_against_a_concurrent_accept(app, client, org_factory, backend):
    """Another device accepted between the check and the accept (as on MongoDB, which has no
    transaction here): the later accept is undone and refused, the limit is never passed."""
    a = org_factory("A", max_devices=1)
    first, second = Device(client, tenant_token=a.tenant_token), Device(client, tenant_token=a.tenant_token)
    first.auth()
    second.auth()
    records = {d: a.admin.find_device(d) for d in (first, second)}
    devauth = app.extensions["mender"].services.devauth
    original = devauth._limit_allows

    def racing(tenant):
        allowed = original(tenant)
        devauth._limit_allows = original
        rec = records[first]
        with app.app_context():
            devauth.set_auth_set_status(tenant, rec["id"], rec["auth_sets"][0]["id"], "accepted")
        return allowed

    devauth._limit_allows = racing
    try:
        rec = records[second]
        r = a.admin.put(f"/api/management/v2/devauth/devices/{rec['id']}/auth/{rec['auth_sets'][0]['id']}/status",
                        json={"status": "accepted"})
    finally:
        devauth._limit_allows = original
    assert r.status_code == 422
    assert a.admin.find_device(second)["status"] == "pending"
    assert second.auth().status_code == 401
    # on SQLite the injected accept ran inside the refused request's transaction and went with it
    assert a.admin.find_device(first)["status"] == ("pending" if backend == "sqlite" else "accepted")
