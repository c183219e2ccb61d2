"""Settings (ETag/If-Match) and personal access tokens over HTTP, on every backend."""

from __future__ import annotations

import base64
import json

import pytest

from common.clock import FrozenClock
from tests.helpers import Operator
from tests.useradm.conftest import LOGOUT, USERS

SETTINGS = "/api/management/v1/useradm/settings"
TOKENS = "/api/management/v1/useradm/settings/tokens"


@pytest.mark.parametrize("path", [SETTINGS, SETTINGS + "/me"])
def test_settings_etag_cycle(operator, path):
    r = operator.get(path)
    assert r.status_code == 200 and r.get_json() == {} and "ETag" not in r.headers
    r = operator.post(path, json={"2fa": "disabled", "columns": [1, 2]}, headers={"If-Match": '"nope"'})
    assert r.status_code == 412  # nothing stored yet: no version matches
    r = operator.post(path, json={"2fa": "disabled", "columns": [1, 2]})
    assert r.status_code == 201
    etag1 = r.headers["ETag"]
    r = operator.get(path)
    assert r.get_json() == {"2fa": "disabled", "columns": [1, 2]} and r.headers["ETag"] == etag1
    r = operator.post(path, json={"v": 2}, headers={"If-Match": '"stale"'})
    assert r.status_code == 412 and r.get_json()["request_id"]
    r = operator.post(path, json={"v": 2}, headers={"If-Match": etag1})
    assert r.status_code == 201 and r.headers["ETag"] != etag1
    assert operator.post(path, json={"v": 3}, headers={"If-Match": etag1}).status_code == 412
    unquoted = r.headers["ETag"].strip('"')
    assert operator.post(path, json={"v": 3}, headers={"If-Match": unquoted}).status_code == 201
    assert operator.get(path).get_json() == {"v": 3}


def test_settings_me_is_per_user_and_global_is_per_tenant(app, client, operator):
    operator.post(SETTINGS, json={"tenant": "wide"})
    operator.post(SETTINGS + "/me", json={"mine": 1})
    colleague = Operator.create(app, client)
    assert colleague.get(SETTINGS).get_json() == {"tenant": "wide"}
    assert colleague.get(SETTINGS + "/me").get_json() == {}
    stranger = Operator.create(app, client, tenant="other")
    assert stranger.get(SETTINGS).get_json() == {}


@pytest.mark.parametrize("path", [SETTINGS, SETTINGS + "/me"])
def test_settings_bad_input(operator, path):
    assert operator.post(path, data="[1]", content_type="application/json").status_code == 400
    assert operator.post(path, data="{x", content_type="application/json").status_code == 400
    assert operator.post(path, data="{}", content_type="text/plain").status_code == 415
    assert operator.post(path, data="", content_type="application/json").status_code == 400
    big = {"k": "x" * (64 * 1024)}
    r = operator.post(path, json=big)
    assert r.status_code == 400 and "65536 bytes" in r.get_json()["error"]
    assert operator.post(path, json={"$gt": "", "a.b": 1}).status_code == 201  # stored verbatim
    assert operator.get(path).get_json() == {"$gt": "", "a.b": 1}
    assert operator.client.get(path).status_code == 401
    assert operator.client.post(path, json={}).status_code == 401


def test_personal_access_token_lifecycle(client, operator):
    r = operator.post(TOKENS, json={"name": "ci", "expires_in": 3600})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/jwt"
    pat = r.get_data(as_text=True)
    claims = json.loads(base64.urlsafe_b64decode(pat.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 3600 and claims["mender.user"] is True
    pat_headers = {"Authorization": f"Bearer {pat}"}
    assert client.get(f"{USERS}/me", headers=pat_headers).status_code == 200
    listed = operator.get(TOKENS).get_json()
    assert len(listed) == 1
    assert listed[0]["name"] == "ci" and listed[0]["id"] == claims["jti"] and "last_used" in listed[0]
    assert listed[0]["expiration_date"].endswith("Z") and listed[0]["created_ts"].endswith("Z")
    assert pat not in json.dumps(listed)
    # duplicate name 409; never-expiring token
    assert operator.post(TOKENS, json={"name": "ci"}).status_code == 409
    r = operator.post(TOKENS, json={"name": "forever"})
    assert r.status_code == 200
    assert "exp" not in json.loads(base64.urlsafe_b64decode(r.get_data(as_text=True).split(".")[1] + "=="))
    forever = next(t for t in operator.get(TOKENS).get_json() if t["name"] == "forever")
    assert forever["expiration_date"] == "0001-01-01T00:00:00Z"
    # revoke
    assert operator.delete(f"{TOKENS}/{claims['jti']}").status_code == 204
    assert operator.delete(f"{TOKENS}/{claims['jti']}").status_code == 204
    assert client.get(f"{USERS}/me", headers=pat_headers).status_code == 401
    assert [t["name"] for t in operator.get(TOKENS).get_json()] == ["forever"]


def test_pat_cannot_be_revoked_by_another_user(app, client, operator):
    r = operator.post(TOKENS, json={"name": "mine"})
    jti = operator.get(TOKENS).get_json()[0]["id"]
    other = Operator.create(app, client)
    assert other.delete(f"{TOKENS}/{jti}").status_code == 204
    assert client.get(f"{USERS}/me", headers={"Authorization": "Bearer " + r.get_data(as_text=True)}).status_code == 200
    assert other.get(TOKENS).get_json() == []


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 257}, {"name": "a", "expires_in": -1},
                                  {"name": "a", "expires_in": 31536001}, {"name": "a", "expires_in": "10"},
                                  {"name": "a", "expires_in": 1.5}, {"name": "a", "scope": "all"},
                                  {"name": {"$gt": ""}}])
def test_pat_bad_input_400(operator, body):
    r = operator.post(TOKENS, json=body)
    assert r.status_code == 400, r.data


def test_pat_limit_422(make_app, backend):
    app = make_app(backend, USERADM_LIMIT_TOKENS_PER_USER=2)
    op = Operator.create(app)
    assert op.post(TOKENS, json={"name": "a"}).status_code == 200
    assert op.post(TOKENS, json={"name": "b"}).status_code == 200
    r = op.post(TOKENS, json={"name": "c"})
    assert r.status_code == 422 and r.get_json()["error"]


def test_pat_expiry_and_last_used(make_app, backend):
    clock = FrozenClock(1_800_000_000)
    app = make_app(backend, _CLOCK=clock)
    op = Operator.create(app)
    pat = op.post(TOKENS, json={"name": "short", "expires_in": 600}).get_data(as_text=True)
    headers = {"Authorization": f"Bearer {pat}"}
    assert op.client.get(f"{USERS}/me", headers=headers).status_code == 200
    first = op.get(TOKENS).get_json()[0]["last_used"]
    clock.advance(100)
    op.client.get(f"{USERS}/me", headers=headers)
    assert op.get(TOKENS).get_json()[0]["last_used"] == first  # written at most every 5 minutes
    clock.advance(300)
    op.client.get(f"{USERS}/me", headers=headers)
    assert op.get(TOKENS).get_json()[0]["last_used"] > first
    clock.advance(200)
    assert op.client.get(f"{USERS}/me", headers=headers).status_code == 401


def test_logout_with_pat_revokes_the_pat(client, operator):
    pat = operator.post(TOKENS, json={"name": "p"}).get_data(as_text=True)
    assert client.post(LOGOUT, headers={"Authorization": f"Bearer {pat}"}).status_code == 202
    assert operator.get(TOKENS).get_json() == []


def test_tokens_unauthenticated_401(client):
    assert client.get(TOKENS).status_code == 401
    assert client.post(TOKENS, json={"name": "x"}).status_code == 401
    assert client.delete(f"{TOKENS}/x").status_code == 401


def test_password_change_revokes_pats(client, operator):
    pat = operator.post(TOKENS, json={"name": "p"}).get_data(as_text=True)
    r = operator.put(f"{USERS}/me", json={"password": "brand-new-pass", "current_password": operator.password})
    assert r.status_code == 204
    assert client.get(f"{USERS}/me", headers={"Authorization": f"Bearer {pat}"}).status_code == 401


def test_settings_deep_nesting(operator):
    deep = '{"a":' * 900 + "1" + "}" * 900
    assert operator.post(SETTINGS, data=deep, content_type="application/json").status_code == 201
    r = operator.get(SETTINGS)
    assert r.status_code == 200 and r.get_data(as_text=True).count('{"a":') == 900
    hostile = '{"a":' * 100_000 + "1" + "}" * 100_000
    r = operator.post(SETTINGS, data=hostile, content_type="application/json")
    assert r.status_code == 400 and r.get_json()["request_id"]


def test_pat_cannot_mint_a_token_that_outlives_it(make_app, backend):
    """Issue 14: a 60 s personal access token created a token with `expires_in: 0` (never)."""
    clock = FrozenClock(1_800_000_000)
    app = make_app(backend, _CLOCK=clock)
    op = Operator.create(app)
    short = op.post(TOKENS, json={"name": "short", "expires_in": 60}).get_data(as_text=True)
    as_pat = {"Authorization": f"Bearer {short}"}
    clock.advance(20)  # 40 s left
    for expires_in in (0, 41, 3600, 31536000):
        r = op.client.post(TOKENS, json={"name": f"n{expires_in}", "expires_in": expires_in}, headers=as_pat)
        assert r.status_code == 400, (expires_in, r.data)
        assert "at most 40 seconds" in r.get_json()["error"] and r.get_json()["request_id"]
    r = op.client.post(TOKENS, json={"name": "never"}, headers=as_pat)  # omitted expires_in means never
    assert r.status_code == 400
    assert [t["name"] for t in op.get(TOKENS).get_json()] == ["short"]
    r = op.client.post(TOKENS, json={"name": "child", "expires_in": 40}, headers=as_pat)
    assert r.status_code == 200
    child = json.loads(base64.urlsafe_b64decode(r.get_data(as_text=True).split(".")[1] + "=="))
    assert child["exp"] == 1_800_000_000 + 60
    # a token that never expires may create any; so may a login session
    forever = op.post(TOKENS, json={"name": "forever"}).get_data(as_text=True)
    r = op.client.post(TOKENS, json={"name": "from-forever"}, headers={"Authorization": f"Bearer {forever}"})
    assert r.status_code == 200
    assert op.post(TOKENS, json={"name": "from-session", "expires_in": 31536000}).status_code == 200
