"""tenantadm's internal API: every operation and error status, on each database."""

from __future__ import annotations

import base64
import json

from tests.tenantadm.conftest import INTERNAL, PASSWORD
from tests.useradm.conftest import LOGIN, basic

TENANTS = f"{INTERNAL}/tenants"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def tampered(token: str) -> str:
    """The token with another organization id in its claims and the old signature."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["mender.tenant"] = claims["sub"] = "ffffffffffffffffffffffff"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def test_create_get_list_and_the_default_organization(client):
    r = client.post(TENANTS, json={"name": "Acme", "email": "boss@acme.io", "password": PASSWORD,
                                   "max_devices": 5, "max_users": 3, "storage_limit": 1000})
    assert r.status_code == 201, r.get_json()
    acme = r.get_json()
    assert r.headers["Location"] == f"{TENANTS}/{acme['id']}"
    assert len(acme["id"]) == 24 and acme["name"] == "Acme" and acme["status"] == "active"
    assert acme["tenant_token"].count(".") == 2
    assert client.get(f"{TENANTS}/{acme['id']}").get_json() == acme
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 200
    limits = client.get(f"{TENANTS}/{acme['id']}/limits").get_json()
    assert limits == {"devices": {"limit": 5, "usage": 0}, "users": {"limit": 3, "usage": 1},
                      "storage": {"limit": 1000, "usage": 0}}
    default = client.get(f"{TENANTS}/default").get_json()
    assert default["id"] == "default" and default["name"] == "Default organization" and default["status"] == "active"
    assert client.post(TENANTS, json={"name": "Beta"}).status_code == 201  # no first user
    listed = client.get(TENANTS)
    assert [t["name"] for t in listed.get_json()] == ["Default organization", "Acme", "Beta"]
    page = client.get(f"{TENANTS}?per_page=1&page=2")
    assert [t["name"] for t in page.get_json()] == ["Acme"] and 'rel="next"' in page.headers["Link"]
    assert [t["name"] for t in client.get(f"{TENANTS}?q=acm").get_json()] == ["Acme"]
    assert [t["name"] for t in client.get(f"{TENANTS}?q={acme['id']}").get_json()] == ["Acme"]
    assert [t["name"] for t in client.get(f"{TENANTS}?username=BOSS@acme.io").get_json()] == ["Acme"]
    assert client.get(f"{TENANTS}?username=nobody@acme.io").get_json() == []
    assert client.get(f"{TENANTS}?per_page=501").status_code == 400
    assert client.get(f"{TENANTS}/0123456789abcdef01234567").status_code == 404
    assert client.get(f"{TENANTS}/bad%2Fid").status_code == 404


def test_create_errors_leave_nothing_behind(client):
    client.post(TENANTS, json={"name": "Taken", "email": "taken@x.io", "password": PASSWORD})
    before = client.get(TENANTS).get_json()
    cases = [({}, 400), ({"name": ""}, 400), ({"name": "Ünïcode"}, 400), ({"name": "x" * 101}, 400),
             ({"name": "A", "email": "a@x.io"}, 400), ({"name": "A", "password": PASSWORD}, 400),
             ({"name": "A", "plan": "enterprise"}, 400), ({"name": "A", "max_devices": -2}, 400),
             ({"name": "A", "storage_limit": -1}, 400), ({"name": "A", "email": "nope", "password": PASSWORD}, 400),
             ({"name": "A", "email": "TAKEN@x.io", "password": PASSWORD}, 409),
             ({"name": "A", "email": "new@x.io", "password": "short"}, 422)]
    for body, status in cases:
        r = client.post(TENANTS, json=body)
        assert r.status_code == status, (body, r.get_json())
        assert set(r.get_json()) == {"error", "request_id"}
    assert client.post(TENANTS, data="name=A", content_type="text/plain").status_code == 415
    assert client.get(TENANTS).get_json() == before
    assert client.post(LOGIN, headers=basic("new@x.io", "short")).status_code == 401


def test_update_status_rotate_and_delete(app, client):
    t = client.post(TENANTS, json={"name": "Acme", "email": "boss@acme.io", "password": PASSWORD}).get_json()
    url = f"{TENANTS}/{t['id']}"
    assert client.put(url, json={"name": "Acme Inc."}).status_code == 204
    assert client.get(url).get_json()["name"] == "Acme Inc."
    assert client.put(url, json={}).status_code == 204
    for body in ({"name": "é"}, {"name": 3}, {"plan": "os"}, {"trial": True}):
        assert client.put(url, json=body).status_code == 400, body
    assert client.put(f"{TENANTS}/0123456789abcdef01234567", json={"name": "x"}).status_code == 404
    assert client.put(f"{TENANTS}/default", json={"name": "Headquarters"}).status_code == 204
    assert client.get(f"{TENANTS}/default").get_json()["name"] == "Headquarters"

    # status: suspend and reactivate
    for body in ({"status": "inactive"}, {"status": "gone"}, {}, {"status": 1}):
        assert client.put(f"{url}/status", json=body).status_code == 400, body
    assert client.put(f"{TENANTS}/default/status", json={"status": "suspended"}).status_code == 400
    assert client.put(f"{TENANTS}/0123456789abcdef01234567/status", json={"status": "active"}).status_code == 404
    r = client.put(f"{url}/status", json={"status": "suspended"})
    assert r.status_code == 200
    assert client.get(url).get_json()["status"] == "suspended"
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 401
    assert client.put(f"{url}/status", json={"status": "active"}).status_code == 200
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 200

    # rotation
    r = client.post(f"{url}/tenant_token")
    assert r.status_code == 200 and r.get_json()["tenant_token"] != t["tenant_token"]
    assert client.get(url).get_json()["tenant_token"] == r.get_json()["tenant_token"]
    assert client.post(f"{TENANTS}/0123456789abcdef01234567/tenant_token").status_code == 404

    # deletion: only of an organization that is not active
    assert client.delete(url).status_code == 405
    assert client.delete(f"{TENANTS}/default").status_code == 405
    assert client.delete(f"{TENANTS}/0123456789abcdef01234567").status_code == 404
    client.put(f"{url}/status", json={"status": "suspended"})
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404
    assert client.get(f"{INTERNAL}/users?name=boss@acme.io").get_json() == []


def test_verify(app, client):
    t = client.post(TENANTS, json={"name": "Acme"}).get_json()
    r = client.post(f"{TENANTS}/verify", headers=bearer(t["tenant_token"]))
    assert r.status_code == 200
    assert r.get_json() == {"id": t["id"], "name": "Acme", "status": "active"}  # no token echoed
    assert client.post(f"{TENANTS}/verify").status_code == 400
    for bad in ("garbage", "a.b.c", tampered(t["tenant_token"]), t["tenant_token"][:-3] + "abc"):
        assert client.post(f"{TENANTS}/verify", headers=bearer(bad)).status_code == 401, bad
    # a user token is not a tenant token
    client.post(TENANTS, json={"name": "Beta", "email": "b@b.io", "password": PASSWORD})
    user_token = client.post(LOGIN, headers=basic("b@b.io", PASSWORD)).get_data(as_text=True)
    assert client.post(f"{TENANTS}/verify", headers=bearer(user_token)).status_code == 401
    # the default organization's token verifies too
    default = client.get(f"{TENANTS}/default").get_json()
    assert client.post(f"{TENANTS}/verify", headers=bearer(default["tenant_token"])).get_json()["id"] == "default"
    # rotated: the old token no longer verifies (it would admit no new device)
    new = client.post(f"{TENANTS}/{t['id']}/tenant_token").get_json()["tenant_token"]
    assert client.post(f"{TENANTS}/verify", headers=bearer(t["tenant_token"])).status_code == 401
    assert client.post(f"{TENANTS}/verify", headers=bearer(new)).status_code == 200
    client.put(f"{TENANTS}/{t['id']}/status", json={"status": "suspended"})
    assert client.post(f"{TENANTS}/verify", headers=bearer(new)).status_code == 401
    client.put(f"{TENANTS}/{t['id']}/status", json={"status": "suspended"})
    client.delete(f"{TENANTS}/{t['id']}")
    assert client.post(f"{TENANTS}/verify", headers=bearer(new)).status_code == 401


def test_users(client):
    a = client.post(TENANTS, json={"name": "A", "email": "first@a.io", "password": PASSWORD}).get_json()
    b = client.post(TENANTS, json={"name": "B"}).get_json()
    users = f"{INTERNAL}/users"
    r = client.post(users, json={"name": "Second@A.io", "id": "user-2", "tenant_id": a["id"]})
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/tenants/{a['id']}/users/user-2")
    # created without a password: it cannot log in until one is set
    assert client.post(LOGIN, headers=basic("second@a.io", "!")).status_code == 401
    assert client.post(users, json={"name": "x@a.io", "id": "u3", "tenant_id": "0123456789abcdef01234567"}
                       ).status_code == 404
    assert client.post(users, json={"name": "SECOND@a.io", "id": "u4", "tenant_id": b["id"]}).status_code == 422
    assert client.post(users, json={"name": "other@a.io", "id": "user-2", "tenant_id": b["id"]}).status_code == 422
    for body in ({"name": "x@a.io", "id": "u5"}, {"name": "not-an-email", "id": "u5", "tenant_id": b["id"]},
                 {"name": "x@a.io", "id": "u5", "tenant_id": b["id"], "extra": 1}):
        assert client.post(users, json=body).status_code == 400, body
    assert client.post(users, json={"name": "d@default.io", "id": "u6", "tenant_id": "default"}).status_code == 201

    listed = client.get(users).get_json()
    assert {(u["name"], u["tenant_id"]) for u in listed} == {("first@a.io", a["id"]), ("second@a.io", a["id"]),
                                                            ("d@default.io", "default")}
    assert [u["name"] for u in client.get(f"{users}?tenant_id={a['id']}").get_json()] == ["first@a.io", "second@a.io"]
    assert [u["id"] for u in client.get(f"{users}?name=second@a.io").get_json()] == ["user-2"]
    assert [u["name"] for u in client.get(f"{users}?id=user-2").get_json()] == ["second@a.io"]
    assert [u["name"] for u in client.get(f"{users}?tenant_id=default").get_json()] == ["d@default.io"]
    assert client.get(f"{users}?login=github:1").get_json() == []
    assert client.get(f"{users}?per_page=0").status_code == 400
    assert client.get(f"{users}?tenant_id=bad%2Fid").status_code == 400

    user_url = f"{TENANTS}/{a['id']}/users/user-2"
    assert client.put(user_url, json={"name": "renamed@a.io"}).status_code == 204
    assert client.get(f"{users}?id=user-2").get_json()[0]["name"] == "renamed@a.io"
    assert client.put(user_url, json={"name": "first@a.io"}).status_code == 422
    assert client.put(user_url, json={"name": "nope"}).status_code == 400
    assert client.put(user_url, json={}).status_code == 400
    assert client.put(f"{TENANTS}/{b['id']}/users/user-2", json={"name": "z@a.io"}).status_code == 404
    assert client.put(f"{TENANTS}/0123456789abcdef01234567/users/user-2", json={"name": "z@a.io"}).status_code == 404
    assert client.delete(f"{TENANTS}/{b['id']}/users/user-2").status_code == 204  # another organization: no-op
    assert client.get(f"{users}?id=user-2").get_json() != []
    assert client.delete(user_url).status_code == 204
    assert client.get(f"{users}?id=user-2").get_json() == []


def test_limits(client):
    t = client.post(TENANTS, json={"name": "A"}).get_json()
    url = f"{TENANTS}/{t['id']}/limits"
    assert client.get(url).get_json() == {"devices": {"limit": -1, "usage": 0}, "users": {"limit": -1, "usage": 0},
                                          "storage": {"limit": 0, "usage": 0}}
    assert client.put(url, json={"max_devices": 10, "max_users": 2, "storage_limit": 4096}).status_code == 204
    assert client.put(url, json={"max_users": 4}).status_code == 204
    got = client.get(url).get_json()
    assert (got["devices"]["limit"], got["users"]["limit"], got["storage"]["limit"]) == (10, 4, 4096)
    for body in ({"max_devices": -2}, {"max_users": "1"}, {"storage_limit": -1}, {"other": 1}):
        assert client.put(url, json=body).status_code == 400, body
    missing = f"{TENANTS}/0123456789abcdef01234567/limits"
    assert client.get(missing).status_code == 404 and client.put(missing, json={}).status_code == 404
    # the services' own limit operations see the same values
    assert client.get(f"/api/internal/v1/devauth/tenant/{t['id']}/limits/max_devices").get_json() == {"limit": 10}
    assert client.get(f"/api/internal/v1/deployments/tenants/{t['id']}/limits/storage").get_json() == {
        "limit": 4096, "usage": 0}


def test_alive_and_health(client):
    assert client.get(f"{INTERNAL}/alive").status_code == 204
    assert client.get(f"{INTERNAL}/health").status_code == 204
