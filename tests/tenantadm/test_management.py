"""tenantadm's management API: the caller's organization, its tenant token, creating organizations
(closed, approval and open signup), approving and removing them."""

from __future__ import annotations

import pytest

from tests.helpers import Operator
from tests.tenantadm.conftest import INTERNAL, MGMT_V1, MGMT_V2, PASSWORD, create_org
from tests.useradm.conftest import LOGIN, basic

SIGNUP = {"organization": "Newco", "email": "founder@newco.io", "password": PASSWORD,
          "g-recaptcha-response": "ignored", "name": "Jane", "plan": "enterprise"}


def login_status(client, email, password=PASSWORD) -> int:
    return client.post(LOGIN, headers=basic(email, password)).status_code


def test_user_tenant_and_rotation(app, client, operator, org_factory):
    acme = org_factory("Acme")
    r = acme.admin.get(f"{MGMT_V1}/user/tenant")
    assert r.status_code == 200
    assert r.get_json() == {"id": acme.id, "name": "Acme", "status": "active", "tenant_token": acme.tenant_token}
    default = operator.get(f"{MGMT_V1}/user/tenant").get_json()
    assert default["id"] == "default" and default["name"] == "Default organization" and default["tenant_token"]
    assert client.get(f"{MGMT_V1}/user/tenant").status_code == 401
    r = acme.admin.post(f"{MGMT_V1}/user/tenant/tenant_token")
    assert r.status_code == 200 and r.get_json()["tenant_token"] not in (acme.tenant_token, "")
    assert acme.admin.get(f"{MGMT_V1}/user/tenant").get_json()["tenant_token"] == r.get_json()["tenant_token"]
    assert operator.get(f"{MGMT_V1}/user/tenant").get_json()["tenant_token"] == default["tenant_token"]


def test_closed_signup_admins_create_organizations(client, operator, org_factory):
    other = org_factory("Other")
    assert client.post(f"{MGMT_V1}/tenants", json=SIGNUP).status_code == 401
    assert client.post(f"{MGMT_V2}/tenants", json=SIGNUP).status_code == 401
    assert other.admin.post(f"{MGMT_V1}/tenants", json=SIGNUP).status_code == 403
    assert client.post(f"{MGMT_V1}/tenants", json=SIGNUP, headers={"Authorization": "Bearer junk"}).status_code == 401
    assert login_status(client, "founder@newco.io") == 401
    # an administrator of the default organization administers the server
    r = operator.post(f"{MGMT_V1}/tenants", json=SIGNUP)
    assert r.status_code == 202 and r.data == b""
    assert login_status(client, "founder@newco.io") == 200
    r = operator.post(f"{MGMT_V2}/tenants", json=dict(SIGNUP, organization="Second", email="two@second.io"))
    assert r.status_code == 200 and set(r.get_json()) == {"id"}
    assert client.get(f"{INTERNAL}/tenants/{r.get_json()['id']}").get_json()["status"] == "active"
    assert operator.post(f"{MGMT_V1}/tenants", json=SIGNUP).status_code == 409  # the email is taken
    assert operator.post(f"{MGMT_V1}/tenants", json=dict(SIGNUP, email="x@y.io", password="short")).status_code == 422


@pytest.fixture
def approval_app(make_app, backend):
    return make_app(backend, TENANTADM_SIGNUP="approval")


def test_approval_signup(approval_app):
    client = approval_app.test_client()
    operator = Operator.create(approval_app, client)
    other = create_org(approval_app, client, "Other")
    r = client.post(f"{MGMT_V2}/tenants", json=SIGNUP)
    assert r.status_code == 200
    new_id = r.get_json()["id"]
    assert client.get(f"{INTERNAL}/tenants/{new_id}").get_json()["status"] == "inactive"
    assert login_status(client, "founder@newco.io") == 401  # until approved
    status = f"{MGMT_V2}/tenants/{new_id}/status"
    assert other.admin.put(status, json={"status": "active"}).status_code == 403
    assert client.put(status, json={"status": "active"}).status_code == 401
    assert operator.put(status, json={"status": "suspended"}).status_code == 400
    assert operator.put(status, json={}).status_code == 400
    assert operator.put(f"{MGMT_V2}/tenants/0123456789abcdef01234567/status", json={"status": "active"}).status_code == 404
    assert operator.put(status, json={"status": "active"}).status_code == 202
    assert login_status(client, "founder@newco.io") == 200
    assert operator.put(status, json={"status": "active"}).status_code == 202  # already active: stays so
    # a signup sent with another organization's user token is a signup like any other
    assert other.admin.post(f"{MGMT_V1}/tenants", json=dict(SIGNUP, email="third@x.io")).status_code == 202
    third = client.get(f"{INTERNAL}/tenants?username=third@x.io").get_json()[0]
    assert third["status"] == "inactive"
    # a suspended organization is reactivated by the server's operator (CLI, internal API), not here
    client.put(f"{INTERNAL}/tenants/{other.id}/status", json={"status": "suspended"})
    assert operator.put(f"{MGMT_V2}/tenants/{other.id}/status", json={"status": "active"}).status_code == 409
    assert other.admin.post(f"{MGMT_V1}/tenants", json=dict(SIGNUP, email="fourth@x.io")).status_code == 401


def test_open_signup_forms_and_errors(make_app, backend):
    app = make_app(backend, TENANTADM_SIGNUP="open")
    client = app.test_client()
    r = client.post(f"{MGMT_V1}/tenants", data=SIGNUP)  # form-encoded, as hosted Mender's UI sends it
    assert r.status_code == 202, r.get_json()
    assert login_status(client, "founder@newco.io") == 200
    assert client.post(f"{MGMT_V1}/tenants", json=SIGNUP).status_code == 409
    for body in ({k: v for k, v in SIGNUP.items() if k != "organization"}, dict(SIGNUP, plan="gold"),
                 dict(SIGNUP, extra=1), dict(SIGNUP, email="nope", organization="X"),
                 dict(SIGNUP, organization="Ünï", email="u@x.io")):
        r = client.post(f"{MGMT_V1}/tenants", json=body)
        assert r.status_code == 400, (body, r.get_json())
    assert client.post(f"{MGMT_V1}/tenants", data="x", content_type="text/plain").status_code == 400
    assert client.post(f"{MGMT_V1}/tenants", json=["a"]).status_code == 400


def test_remove_organizations(client, operator, org_factory):
    acme, other = org_factory("Acme"), org_factory("Other")
    url = f"{MGMT_V2}/tenants/{acme.id}"
    assert other.admin.delete(url).status_code == 403
    assert acme.admin.delete(url).status_code == 403
    assert client.delete(url).status_code == 401
    assert operator.delete(url).status_code == 405  # active
    assert operator.delete(f"{MGMT_V2}/tenants/default").status_code == 405
    assert operator.delete(f"{MGMT_V2}/tenants/0123456789abcdef01234567").status_code == 404
    client.put(f"{INTERNAL}/tenants/{acme.id}/status", json={"status": "suspended"})
    assert operator.delete(url).status_code == 204
    assert operator.delete(url).status_code == 404
    assert login_status(client, acme.admin.email) == 401
    assert other.admin.get(f"{MGMT_V1}/user/tenant").status_code == 200


def test_only_administrators_of_the_default_organization_create_organizations(app, client, operator):
    """A server administrator is a user of the default organization holding RBAC_ROLE_PERMIT_ALL
    (as for removing and approving organizations): its read-only users do not create any."""
    for roles in (["RBAC_ROLE_OBSERVER"], ["RBAC_ROLE_USER_MANAGER"], []):
        user = Operator.create(app, client, roles=roles)
        for path in (f"{MGMT_V1}/tenants", f"{MGMT_V2}/tenants"):
            r = user.post(path, json=SIGNUP)
            assert r.status_code == 403, (roles, path, r.data)
            assert set(r.get_json()) == {"error", "request_id"}
    assert login_status(client, "founder@newco.io") == 401
    assert operator.post(f"{MGMT_V1}/tenants", json=SIGNUP).status_code == 202


def test_approval_signup_by_a_read_only_user_awaits_approval(approval_app):
    client = approval_app.test_client()
    observer = Operator.create(approval_app, client, roles=["RBAC_ROLE_OBSERVER"])
    r = observer.post(f"{MGMT_V2}/tenants", json=SIGNUP)
    assert r.status_code == 200
    assert client.get(f"{INTERNAL}/tenants/{r.get_json()['id']}").get_json()["status"] == "inactive"
