"""Devices and tenant tokens: the token decides the organization; unknown, tampered, rotated or
suspended-organization tokens are refused; the same identity lives in two organizations."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import Device
from tests.tenantadm.conftest import INTERNAL, create_org
from tests.tenantadm.test_internal import tampered

DEVICES = "/api/management/v2/devauth/devices"
INVENTORY = "/api/management/v1/inventory/devices"
ATTRIBUTES = "/api/devices/v1/inventory/device/attributes"


def claims(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def listed(op) -> list[dict]:
    r = op.get(f"{DEVICES}?per_page=500")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_tenant_token_decides_the_organization(app, client, operator, org_factory):
    a, b = org_factory("A"), org_factory("B")
    device = Device(client, tenant_token=a.tenant_token)
    assert device.auth().status_code == 401  # pending in A
    assert [d["identity_data"] for d in listed(a.admin)] == [device.identity]
    assert listed(b.admin) == [] and listed(operator) == []
    a.admin.accept(device)
    assert claims(device.token)["mender.tenant"] == a.id
    r = device.request("PATCH", ATTRIBUTES, json=[{"name": "os", "value": "linux"}])
    assert r.status_code == 200, r.get_json()
    assert [d["id"] for d in a.admin.get(INVENTORY).get_json()] == [device.id]
    assert b.admin.get(INVENTORY).get_json() == [] and operator.get(INVENTORY).get_json() == []

    # the same identity, even with the same key, is another device in B
    twin = Device(client, identity=device.identity, key=device.key, tenant_token=b.tenant_token)
    assert twin.auth().status_code == 401
    b.admin.accept(twin)
    assert twin.id != device.id and claims(twin.token)["mender.tenant"] == b.id
    assert [d["id"] for d in listed(a.admin)] == [device.id]
    assert [d["id"] for d in listed(b.admin)] == [twin.id]
    # each token acts in its own organization only
    twin.request("PATCH", ATTRIBUTES, json=[{"name": "os", "value": "rtos"}])
    values = {a_["name"]: a_["value"] for a_ in a.admin.get(f"{INVENTORY}/{device.id}").get_json()["attributes"]}
    assert values["os"] == "linux"
    assert b.admin.get(f"{INVENTORY}/{device.id}").status_code == 404

    # no tenant token: the default organization (multi-tenancy is not switched on)
    plain = Device(client, identity=device.identity, key=device.key)
    assert plain.auth().status_code == 401
    assert [d["identity_data"] for d in listed(operator)] == [device.identity]


def test_bad_tenant_tokens_are_refused_and_record_nothing(app, client, operator, org_factory):
    a, gone = org_factory("A"), org_factory("Gone")
    client.put(f"{INTERNAL}/tenants/{gone.id}/status", json={"status": "suspended"})
    client.delete(f"{INTERNAL}/tenants/{gone.id}")
    suspended = org_factory("Suspended")
    client.put(f"{INTERNAL}/tenants/{suspended.id}/status", json={"status": "suspended"})
    user_token = a.admin.token
    for token in ("garbage", "a.b.c", tampered(a.tenant_token), a.tenant_token[:-4] + "AAAA", gone.tenant_token,
                  suspended.tenant_token, user_token):
        d = Device(client, tenant_token=token)
        r = d.auth()
        assert r.status_code == 401, token
        assert set(r.get_json()) == {"error", "request_id"}
    assert listed(a.admin) == [] and listed(operator) == []
    for tid in (suspended.id, gone.id):
        assert client.get(f"/api/internal/v1/devauth/tenants/{tid}/devices/count").get_json() == {"count": 0}


def test_strict_multi_tenancy_refuses_an_empty_token(make_app, backend):
    app = make_app(backend, MENDER_MULTI_TENANT="true")
    client = app.test_client()
    from tests.helpers import Operator
    operator = Operator.create(app, client)
    assert Device(client).auth().status_code == 401
    assert listed(operator) == []
    # the default organization has a tenant token of its own
    default_token = operator.get("/api/management/v1/tenantadm/user/tenant").get_json()["tenant_token"]
    device = Device(client, tenant_token=default_token)
    assert device.auth().status_code == 401
    operator.accept(device)
    assert "mender.tenant" not in claims(device.token)
    a = create_org(app, client, "A")
    other = Device(client, tenant_token=a.tenant_token)
    other.auth()
    assert len(listed(a.admin)) == 1 and len(listed(operator)) == 1


def test_rotation_keeps_accepted_devices(app, client, org_factory):
    a = org_factory("A")
    old = a.tenant_token
    accepted = Device(client, tenant_token=old)
    accepted.auth()
    a.admin.accept(accepted)
    pending = Device(client, tenant_token=old)
    pending.auth()
    preauthorized = Device(client, tenant_token=old)
    r = a.admin.post("/api/management/v2/devauth/devices",
                     json={"identity_data": preauthorized.identity, "pubkey": preauthorized.pubkey})
    assert r.status_code == 201
    new = a.admin.post("/api/management/v1/tenantadm/user/tenant/tenant_token").get_json()["tenant_token"]
    assert new != old
    assert accepted.request("GET", "/api/devices/v1/deployments/device/deployments/next",
                            query_string={"artifact_name": "x", "device_type": "y"}).status_code == 204
    assert accepted.auth().status_code == 200  # re-authenticates with the old token
    assert preauthorized.auth().status_code == 200  # approved by the operator before
    assert pending.auth().status_code == 401
    before = len(listed(a.admin))
    stranger = Device(client, tenant_token=old)
    assert stranger.auth().status_code == 401
    assert len(listed(a.admin)) == before  # the old token enrols nobody
    newcomer = Device(client, tenant_token=new)
    assert newcomer.auth().status_code == 401
    assert len(listed(a.admin)) == before + 1
    a.admin.accept(pending)  # the operator may still accept a device that was pending
    assert pending.auth().status_code == 200


def test_suspension_stops_devices_until_reactivated(app, client, org_factory):
    a, b = org_factory("A"), org_factory("B")
    device, other = Device(client, tenant_token=a.tenant_token), Device(client, tenant_token=b.tenant_token)
    for org, d in ((a, device), (b, other)):
        d.auth()
        org.admin.accept(d)
    next_path = "/api/devices/v1/deployments/device/deployments/next?artifact_name=x&device_type=y"
    assert client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "suspended"}).status_code == 200
    assert device.request("GET", next_path).status_code == 401  # its token is revoked
    assert device.auth().status_code == 401
    assert a.admin.get(DEVICES).status_code == 401
    assert other.request("GET", next_path).status_code == 204  # another organization is untouched
    client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "active"})
    assert device.auth().status_code == 200
    assert device.request("GET", next_path).status_code == 204
    assert a.admin.get(DEVICES).status_code == 200  # user tokens work again


def test_token_issued_while_suspending_is_refused(app, client, org_factory, monkeypatch):
    """An auth request that read `active` before the suspension writes its token after the
    suspension revoked the others: the re-check refuses it and leaves no live token."""
    a = org_factory("A")
    device = Device(client, tenant_token=a.tenant_token)
    device.auth()
    a.admin.accept(device)
    svc = app.extensions["mender"].services.tenantadm
    original = svc.admit

    def admit_then_suspend(token, **kw):
        admission = original(token, **kw)
        svc._store.update_tenant(a.id, updated_ts=0.0, status="suspended")  # the suspension lands now
        return admission

    monkeypatch.setattr(svc, "admit", admit_then_suspend)
    r = device.auth()
    assert r.status_code == 401
    devauth = app.extensions["mender"].services.devauth
    with app.app_context():
        assert devauth._store.delete_tokens(a.id, None) == 0  # no token of the organization is left


@pytest.mark.parametrize("body_token", [123, ["x"]])
def test_tenant_token_must_be_a_string(client, body_token):
    from tests.helpers import sign_body, generate_device_key, public_pem
    key = generate_device_key()
    body = json.dumps({"id_data": json.dumps({"mac": "x"}), "tenant_token": body_token,
                       "pubkey": public_pem(key)}).encode()
    r = client.post(Device.AUTH_PATH, data=body, content_type="application/json",
                    headers={"X-MEN-Signature": sign_body(key, body)})
    assert r.status_code == 400
