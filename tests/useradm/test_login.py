"""Login, logout and the management authenticator over HTTP, on every backend."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from tests.helpers import Operator
from tests.useradm.conftest import LOGIN, LOGOUT, basic

PASSWORD = "correct-horse-battery"


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


@pytest.fixture
def user(useradm, app):
    with app.app_context():
        return useradm.create_user("Alice@Example.com", PASSWORD)


def test_login_returns_raw_jwt(client, user, app):
    # exactly what mender-cli sends: Basic auth, empty body, Content-Type application/json
    r = client.post(LOGIN, headers={**basic("alice@example.com", PASSWORD), "Content-Type": "application/json"})
    assert r.status_code == 200, r.data
    assert r.headers["Content-Type"] == "application/jwt"
    assert r.headers["X-MEN-RequestID"]
    token = r.get_data(as_text=True)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["kid"] == "0"
    c = claims_of(token)
    assert c["sub"] == user.id and c["mender.user"] is True and c["scp"] == "mender.*"
    assert c["iss"] == "mender.useradm" and "mender.tenant" not in c
    assert c["exp"] - c["iat"] == 604800 and c["nbf"] == c["iat"] and c["jti"]
    assert client.post(LOGOUT, headers={"Authorization": f"Bearer {token}"}).status_code == 202


def test_login_email_case_insensitive(client, user):
    assert client.post(LOGIN, headers=basic("ALICE@EXAMPLE.COM", PASSWORD)).status_code == 200


@pytest.mark.parametrize("email,password", [("alice@example.com", "wrong-password"),
                                            ("nobody@example.com", PASSWORD),
                                            ("alice@example.com", ""),
                                            ("alice@example.com", "x" * 100_000)])
def test_bad_credentials_same_401(client, user, email, password):
    r = client.post(LOGIN, headers=basic(email, password))
    assert r.status_code == 401
    assert r.get_json()["error"] == "invalid credentials"
    assert r.get_json()["request_id"]


@pytest.mark.parametrize("header", [None, "Bearer abc", "Basic", "Basic !!!notbase64",
                                    "Basic " + base64.b64encode(b"no-colon").decode(),
                                    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
                                    "Basic " + base64.b64encode(b":password").decode(),
                                    "Basic " + "A" * 10000])
def test_malformed_basic_header_401(client, user, header):
    headers = {"Authorization": header} if header else {}
    r = client.post(LOGIN, headers=headers)
    assert r.status_code == 401, r.data
    assert r.get_json()["request_id"]
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_operator_looking_email_is_refused(client, user):
    r = client.post(LOGIN, headers=basic('{"$gt": ""}', PASSWORD))
    assert r.status_code == 401


@pytest.mark.parametrize("body,ctype", [('{"unknown": 1}', "application/json"), ("[1]", "application/json"),
                                        ("{not json", "application/json"), ('{"no_expiry": "x"}', "application/json"),
                                        ('{"no_expiry": true}', "text/plain")])
def test_bad_login_body_400_or_415(client, user, body, ctype):
    r = client.post(LOGIN, data=body, headers={**basic("alice@example.com", PASSWORD), "Content-Type": ctype})
    assert r.status_code == (415 if ctype == "text/plain" else 400), r.data


@pytest.mark.parametrize("body,expires", [({"no_expiry": True}, False), ({"noExpiry": True}, False),
                                          ({"noExpiry": False, "token2fa": "123456"}, True),
                                          ({"no_expiry": None}, True), ({}, True)])
def test_login_options_as_mender_guis_send_them(client, user, body, expires):
    r = client.post(LOGIN, json=body, headers=basic("alice@example.com", PASSWORD))
    assert r.status_code == 200
    assert ("exp" in claims_of(r.get_data(as_text=True))) == expires


def test_logout_revokes_only_that_token(app, client, user):
    a = Operator(client, "alice@example.com", PASSWORD)
    b = Operator(client, "alice@example.com", PASSWORD)
    a.login()
    b.login()
    r = a.post(LOGOUT)
    assert r.status_code == 202
    assert a.post(LOGOUT).status_code == 401
    assert b.post(LOGOUT).status_code == 202


def test_logout_needs_token(client):
    r = client.post(LOGOUT)
    assert r.status_code == 401
    assert r.get_json()["error"]


def test_operator_helper_and_tenant_claim(app, client):
    op = Operator.create(app, client, tenant="tenant-1")
    c = claims_of(op.token)
    assert c["mender.tenant"] == "tenant-1"
    with app.app_context():
        ident = app.extensions["mender"].services.useradm.authenticate(op.token)
    assert ident.tenant == "tenant-1" and ident.is_user and not ident.is_device
    assert ident.token_id == c["jti"]
