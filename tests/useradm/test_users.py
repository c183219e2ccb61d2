"""Users API (v1 and v2 users/me) over HTTP, on every backend."""

from __future__ import annotations

import pytest

from tests.helpers import Operator
from tests.useradm.conftest import LOGIN, USERS, basic

PW = "correct-horse-battery"
V2_ME = "/api/management/v2/useradm/users/me"


def test_create_get_list(operator):
    r = operator.post(USERS, json={"email": "Bob@Example.com", "password": "bob-password"})
    assert r.status_code == 201, r.data
    location = r.headers["Location"]
    assert location.startswith(USERS + "/")
    r = operator.get(location)
    assert r.status_code == 200
    bob = r.get_json()
    assert bob["email"] == "bob@example.com" and bob["id"] == location.rsplit("/", 1)[1]
    assert bob["created_ts"].endswith("Z") and bob["updated_ts"] and "login_ts" not in bob
    assert "password" not in bob and "password_hash" not in bob
    r = operator.get(USERS)
    assert r.status_code == 200
    assert {u["email"] for u in r.get_json()} == {operator.email, "bob@example.com"}
    assert r.headers["X-Total-Count"] == "2"
    assert 'rel="first"' in r.headers["Link"]
    # the new user can log in; login_ts is then shown
    assert operator.client.post(LOGIN, headers=basic("bob@example.com", "bob-password")).status_code == 200
    assert "login_ts" in operator.get(location).get_json()


def test_list_filters_and_paging(operator):
    ids = []
    for i in range(3):
        r = operator.post(USERS, json={"email": f"u{i}@example.com", "password": PW})
        ids.append(r.headers["Location"].rsplit("/", 1)[1])
    r = operator.get(f"{USERS}?id={ids[0]}&id={ids[2]}")
    assert sorted(u["id"] for u in r.get_json()) == sorted([ids[0], ids[2]])
    r = operator.get(f"{USERS}?email=U1@example.com")
    assert [u["id"] for u in r.get_json()] == [ids[1]]
    r = operator.get(f"{USERS}?per_page=2&page=2")
    assert len(r.get_json()) == 2 and r.headers["X-Total-Count"] == "4" and 'rel="prev"' in r.headers["Link"]
    assert operator.get(f"{USERS}?created_after=0").headers["X-Total-Count"] == "4"
    assert operator.get(f"{USERS}?created_before=1").get_json() == []
    assert operator.get(f"{USERS}?updated_before=1").get_json() == []
    assert operator.get(f"{USERS}?updated_after=0").headers["X-Total-Count"] == "4"
    for bad in ("created_after=yesterday", "per_page=501", "page=0", "updated_before=-1"):
        r = operator.get(f"{USERS}?{bad}")
        assert r.status_code == 400, bad
        assert r.get_json()["request_id"]


@pytest.mark.parametrize("body,status", [
    ({"email": "not-an-email", "password": PW}, 400),
    ({"email": {"$gt": ""}, "password": PW}, 400),
    ({"email": '{"$gt": ""}', "password": PW}, 400),
    ({"email": "bj\u00f6rn@example.com", "password": PW}, 400),  # non-ASCII: invalid, as Mender
    ({"email": "a" * 250 + "@x.io", "password": PW}, 400),
    ({"email": "c@example.com"}, 400),
    ({"password": PW}, 400),
    ({"email": "c@example.com", "password": PW, "role": "admin"}, 400),  # unknown field
    ({"email": "c@example.com", "password": "short"}, 422),
    ({"email": "c@example.com", "password": "x" * 257}, 422),
    ({"email": "c@example.com", "password": "\u00e9" * 256 + "\U0001f600" * 0}, 201),  # 256 chars
    ({"email": "c@example.com", "password": "x" * 100_000}, 422),
])
def test_create_validation(operator, body, status):
    r = operator.post(USERS, json=body)
    assert r.status_code == status, r.data
    users = [u["email"] for u in operator.get(USERS).get_json()]
    if status >= 400:
        assert r.get_json()["error"] and r.get_json()["request_id"]
        assert users == [operator.email]  # nothing was created
    else:
        assert sorted(users) == sorted([operator.email, body["email"]])


def test_create_duplicate_email_422_case_insensitive(operator):
    r = operator.post(USERS, json={"email": operator.email.upper(), "password": PW})
    assert r.status_code == 422
    assert "already exists" in r.get_json()["error"]


def test_create_bad_json(operator):
    r = operator.post(USERS, data="[1, 2]", content_type="application/json")
    assert r.status_code == 400
    r = operator.post(USERS, data="{oops", content_type="application/json")
    assert r.status_code == 400
    r = operator.post(USERS, data='{"email": "a@b.c", "password": "12345678"}', content_type="text/plain")
    assert r.status_code == 415
    assert [u["email"] for u in operator.get(USERS).get_json()] == [operator.email]


def test_get_unknown_404_and_me(operator):
    assert operator.get(f"{USERS}/no-such-user").status_code == 404
    r = operator.get(f"{USERS}/me")
    assert r.status_code == 200 and r.get_json()["email"] == operator.email


def test_unauthenticated_401(client):
    for method, path in (("GET", USERS), ("POST", USERS), ("GET", f"{USERS}/x"), ("PUT", f"{USERS}/x"),
                         ("DELETE", f"{USERS}/x"), ("GET", f"{USERS}/me"), ("PUT", f"{USERS}/me"),
                         ("PUT", V2_ME)):
        r = client.open(path, method=method, json={})
        assert r.status_code == 401, (method, path)
        assert r.get_json()["request_id"]


def test_tenants_are_isolated(app, client, operator):
    other = Operator.create(app, client, tenant="acme")
    assert [u["email"] for u in other.get(USERS).get_json()] == [other.email]
    me = operator.get(f"{USERS}/me").get_json()
    assert other.get(f"{USERS}/{me['id']}").status_code == 404
    assert other.put(f"{USERS}/{me['id']}", json={"email": "x@y.io"}).status_code == 404
    assert other.delete(f"{USERS}/{me['id']}").status_code == 204  # idempotent, and a no-op
    assert operator.get(f"{USERS}/me").status_code == 200
    # an email names one account on the whole server: login needs no organization
    r = other.post(USERS, json={"email": operator.email.upper(), "password": "another-password"})
    assert r.status_code == 422 and "already exists" in r.get_json()["error"]
    r = other.post(USERS, json={"email": "second@acme.io", "password": "another-password"})
    assert r.status_code == 201
    r = client.post(LOGIN, headers=basic("second@acme.io", "another-password"))
    assert r.status_code == 200
    assert app.extensions["mender"].services.useradm.tokens.verify(r.get_data(as_text=True))["mender.tenant"] == "acme"


def test_change_own_password_revokes_other_tokens(client, operator):
    other_session = Operator(client, operator.email, operator.password)
    other_session.login()
    r = operator.put(f"{USERS}/me", json={"password": "new-password-1"})
    assert r.status_code == 422 and "current_password" in r.get_json()["error"]
    r = operator.put(f"{USERS}/me", json={"password": "new-password-1", "current_password": "wrong-one"})
    assert r.status_code == 422
    r = operator.put(f"{USERS}/me", json={"password": "short", "current_password": operator.password})
    assert r.status_code == 422
    r = operator.put(f"{USERS}/me", json={"password": "new-password-1", "current_password": operator.password})
    assert r.status_code == 204
    assert operator.get(f"{USERS}/me").status_code == 200       # the caller's own token survives
    assert other_session.get(f"{USERS}/me").status_code == 401  # every other token is revoked
    assert client.post(LOGIN, headers=basic(operator.email, operator.password)).status_code == 401
    assert client.post(LOGIN, headers=basic(operator.email, "new-password-1")).status_code == 200


def test_v2_me_password_change(client, operator):
    r = operator.put(V2_ME, json={"password": "new-password-2", "current_password": operator.password})
    assert r.status_code == 204
    assert client.post(LOGIN, headers=basic(operator.email, "new-password-2")).status_code == 200
    assert operator.put(V2_ME, json={"email": "x@y.io"}).status_code == 400  # v2 has no email field
    assert operator.put(V2_ME, json={"password": "new-password-3"}).status_code == 422


def test_change_email(client, operator):
    me = operator.get(f"{USERS}/me").get_json()
    r = operator.put(f"{USERS}/{me['id']}", json={"email": "new@example.com"})
    assert r.status_code == 422  # own email change needs the current password
    r = operator.put(f"{USERS}/{me['id']}", json={"email": "New@Example.com", "current_password": operator.password})
    assert r.status_code == 204
    got = operator.get(f"{USERS}/me").get_json()
    assert got["email"] == "new@example.com" and got["updated_ts"] >= me["updated_ts"]
    assert operator.put(f"{USERS}/me", json={"email": "bad"}).status_code == 400
    assert client.post(LOGIN, headers=basic("new@example.com", operator.password)).status_code == 200


def test_admin_edits_other_user(operator):
    r = operator.post(USERS, json={"email": "carol@example.com", "password": PW})
    carol = r.headers["Location"].rsplit("/", 1)[1]
    before = operator.get(f"{USERS}/{carol}").get_json()
    assert operator.put(f"{USERS}/{carol}", json={"password": "other-password"}).status_code == 422
    assert operator.put(f"{USERS}/{carol}", json={"email": operator.email}).status_code == 422  # taken
    assert operator.get(f"{USERS}/{carol}").get_json() == before  # refused: nothing changed
    assert operator.put(f"{USERS}/{carol}", json={"email": "carol2@example.com"}).status_code == 204
    assert operator.put(f"{USERS}/{carol}", json={"unknown": 1}).status_code == 400
    assert operator.put(f"{USERS}/nobody", json={"email": "z@example.com"}).status_code == 404
    assert operator.get(f"{USERS}/{carol}").get_json()["email"] == "carol2@example.com"
    assert "z@example.com" not in [u["email"] for u in operator.get(USERS).get_json()]


def test_delete_user_revokes_its_tokens(app, client, operator):
    victim = Operator.create(app, client)
    vid = victim.get(f"{USERS}/me").get_json()["id"]
    assert operator.delete(f"{USERS}/{vid}").status_code == 204
    assert operator.delete(f"{USERS}/{vid}").status_code == 204
    assert victim.get(f"{USERS}/me").status_code == 401
    assert operator.get(f"{USERS}/{vid}").status_code == 404
    assert client.post(LOGIN, headers=basic(victim.email, victim.password)).status_code == 401


def test_hostile_encodings(operator):
    r = operator.post(USERS, data=b'{"email":"a\xff@x.io","password":"12345678"}', content_type="application/json")
    assert r.status_code == 400
    r = operator.post(USERS, data='{"email":"a\\ud800@x.io","password":"abcdefgh"}', content_type="application/json")
    assert r.status_code == 400
    # a lone surrogate in a password becomes U+FFFD (as Go's JSON decoder does): still a password
    r = operator.post(USERS, data='{"email":"s@x.io","password":"\\ud800abcdefgh"}', content_type="application/json")
    assert r.status_code == 201
    r = operator.get(USERS + "?" + "&".join(f"id={i}" for i in range(501)))
    assert r.status_code == 400
    assert operator.get(USERS + "?email=%ff%fe").status_code == 200
