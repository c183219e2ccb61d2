"""Internal API and the management authenticator's refusals, on every backend."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from common.clock import FrozenClock
from tests.helpers import Operator
from tests.useradm.conftest import LOGIN, USERS, basic

VERIFY = "/api/internal/v1/useradm/auth/verify"
INTERNAL = "/api/internal/v1/useradm"
FWD = {"X-Forwarded-Uri": "/api/management/v1/deployments/deployments", "X-Forwarded-Method": "GET"}


def forged(app, key=None, **claims):
    """A token signed with the server's own key (or `key`) carrying the given claims."""
    keys = app.extensions["mender"].services.useradm.tokens.keys
    now = int(time.time())
    base = {"jti": "j", "sub": "s", "iat": now, "nbf": now, "exp": now + 600, "iss": "mender.useradm",
            "scp": "mender.*", "mender.user": True}
    base.update(claims)
    base = {k: v for k, v in base.items() if v is not None}
    if key is None:
        return keys.sign(base)
    return jwt.encode(base, key, algorithm="EdDSA")


def test_verify_valid_token(client, operator):
    r = client.post(VERIFY, headers={**operator.headers, **FWD})
    assert r.status_code == 200
    # nginx-style header names work too
    r = client.post(VERIFY, headers={**operator.headers, "X-Original-URI": FWD["X-Forwarded-Uri"],
                                     "X-Original-Method": "POST"})
    assert r.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"X-Forwarded-Method": "GET"},
                                     {"X-Forwarded-Uri": "/api/management/v1/x/y"},
                                     {"X-Forwarded-Uri": "/api/management", "X-Forwarded-Method": "GET"},
                                     {"X-Forwarded-Uri": "no-slash/a/b/c/d", "X-Forwarded-Method": "GET"},
                                     {"X-Forwarded-Uri": "/api/management/v1/x/y", "X-Forwarded-Method": "FETCH"}])
def test_verify_bad_forwarded_headers_400(client, operator, headers):
    r = client.post(VERIFY, headers={**operator.headers, **headers})
    assert r.status_code == 400, r.data
    assert r.get_json()["request_id"]


def test_verify_refusals_401(app, client, operator):
    assert client.post(VERIFY, headers=FWD).status_code == 401
    assert client.post(VERIFY, headers={"Authorization": "Bearer not.a.jwt", **FWD}).status_code == 401
    client.post("/api/management/v1/useradm/auth/logout", headers=operator.headers)
    assert client.post(VERIFY, headers={**operator.headers, **FWD}).status_code == 401


def test_verify_expired_403_but_management_401(make_app, backend):
    clock = FrozenClock(1_800_000_000)
    app = make_app(backend, _CLOCK=clock, USERADM_JWT_EXP_TIMEOUT=60)
    op = Operator.create(app)
    client = op.client
    assert client.post(VERIFY, headers={**op.headers, **FWD}).status_code == 200
    clock.advance(61)
    r = client.post(VERIFY, headers={**op.headers, **FWD})
    assert r.status_code == 403 and r.get_json()["error"] == "token expired"
    assert op.get(f"{USERS}/me").status_code == 401


def test_authenticator_refuses_forged_and_foreign_tokens(app, client, operator):
    useradm = app.extensions["mender"].services.useradm
    me = operator.get(f"{USERS}/me").get_json()
    jti = useradm.tokens.verify(operator.token)["jti"]
    cases = {
        "other key": forged(app, ed25519.Ed25519PrivateKey.generate(), jti=jti, sub=me["id"]),
        "device token": forged(app, jti=jti, sub=me["id"], **{"mender.device": True}),
        "no mender.user": forged(app, jti=jti, sub=me["id"], **{"mender.user": None}),
        "wrong issuer": forged(app, jti=jti, sub=me["id"], iss="Mender"),
        "unknown jti": forged(app, jti="not-stored", sub=me["id"]),
        "other user's jti": forged(app, jti=jti, sub="someone-else"),
        "other tenant": forged(app, jti=jti, sub=me["id"], **{"mender.tenant": "evil"}),
        "tenant not a string": forged(app, jti=jti, sub=me["id"], **{"mender.tenant": ["x"]}),
        "no jti": forged(app, jti=None, sub=me["id"]),
        "not yet valid": forged(app, jti=jti, sub=me["id"], nbf=int(time.time()) + 3600),
        "alg none": jwt.encode({"jti": jti, "sub": me["id"], "mender.user": True}, None, algorithm="none"),
        "huge": "a" * 10000,
    }
    for name, token in cases.items():
        r = client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.get_json()["request_id"]
    # the genuine token still works
    assert operator.get(f"{USERS}/me").status_code == 200


def test_sessions_per_user_limit(make_app, backend):
    app = make_app(backend, USERADM_LIMIT_SESSIONS_PER_USER=2)
    first = Operator.create(app)
    second = Operator(first.client, first.email, first.password)
    third = Operator(first.client, first.email, first.password)
    second.login()
    third.login()
    assert first.get(f"{USERS}/me").status_code == 401  # the oldest session was dropped
    assert second.get(f"{USERS}/me").status_code == 200
    assert third.get(f"{USERS}/me").status_code == 200


def test_internal_tenant_users(app, client):
    assert client.post(f"{INTERNAL}/tenants/t1/users", json={"email": "a@t1.io", "password": "password-1"}
                       ).status_code == 404  # no such organization
    with app.app_context():
        app.extensions["mender"].services.tenantadm.create_tenant("Tenant one", tenant_id="t1")
    assert client.post(f"{INTERNAL}/tenants", json={"tenant_id": "t1"}).status_code == 201
    assert client.post(f"{INTERNAL}/tenants", json={}).status_code == 400
    assert client.post(f"{INTERNAL}/tenants", json={"tenant_id": "t1", "x": 1}).status_code == 400
    r = client.post(f"{INTERNAL}/tenants/t1/users", json={"email": "a@t1.io", "password": "password-1",
                                                          "propagate": False})
    assert r.status_code == 201
    assert client.post(f"{INTERNAL}/tenants/t1/users",
                       json={"email": "A@t1.io", "password": "password-1"}).status_code == 422
    assert client.post(f"{INTERNAL}/tenants/t1/users", json={"email": "b@t1.io", "password": "short"}).status_code == 422
    assert client.post(f"{INTERNAL}/tenants/t1/users", json={"email": "nope", "password": "password-1"}).status_code == 400
    assert client.post(f"{INTERNAL}/tenants/t1/users", json={"email": "c@t1.io"}).status_code == 400
    users = client.get(f"{INTERNAL}/tenants/t1/users").get_json()
    assert [u["email"] for u in users] == ["a@t1.io"]
    assert client.get(f"{INTERNAL}/tenants/t2/users").get_json() == []
    assert client.get(f"{INTERNAL}/tenants/t1/users?email=a@t1.io").get_json()[0]["id"] == users[0]["id"]
    assert client.get(f"{INTERNAL}/tenants/t1/users?created_after=x").status_code == 400
    # the user logs in, then is deleted through the internal API
    token = client.post(LOGIN, headers=basic("a@t1.io", "password-1")).get_data(as_text=True)
    assert client.delete(f"{INTERNAL}/tenants/t2/users/{users[0]['id']}").status_code == 204  # other tenant: no-op
    assert client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.delete(f"{INTERNAL}/tenants/t1/users/{users[0]['id']}").status_code == 204
    assert client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.get(f"{INTERNAL}/tenants/t1/users").get_json() == []


def test_internal_revoke_tokens(app, client):
    a = Operator.create(app, client, tenant="t1")
    b = Operator.create(app, client, tenant="t1")
    c = Operator.create(app, client, tenant="t2")
    assert client.delete(f"{INTERNAL}/tokens").status_code == 400
    a_id = a.get(f"{USERS}/me").get_json()["id"]
    assert client.delete(f"{INTERNAL}/tokens?tenant_id=t1&user_id={a_id}").status_code == 204
    assert a.get(f"{USERS}/me").status_code == 401
    assert b.get(f"{USERS}/me").status_code == 200
    assert client.delete(f"{INTERNAL}/tokens?tenant_id=t1").status_code == 204
    assert b.get(f"{USERS}/me").status_code == 401
    assert c.get(f"{USERS}/me").status_code == 200


def test_health_and_alive(client):
    assert client.get(f"{INTERNAL}/alive").status_code == 204
    assert client.get(f"{INTERNAL}/health").status_code == 204
