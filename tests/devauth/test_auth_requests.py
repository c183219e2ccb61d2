"""The device API: signed auth requests, admission, tokens (both backends)."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import Device, generate_device_key, sign_body

# every test here runs through the direct route and through the Flask view (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("both_paths")

AUTH = Device.AUTH_PATH
VERIFY = "/api/internal/v1/devauth/tokens/verify"
KINDS = ["rsa2048", "rsa", "ec256", "ec384", "ed25519"]


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def header_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def verify(client, token):
    return client.post(VERIFY, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("kind", KINDS)
def test_each_key_type_is_admitted_after_acceptance(app, client, operator, kind):
    device = Device(client, key_kind=kind)
    r = device.auth()
    assert r.status_code == 401
    assert r.get_json()["error"] == "device unauthorized" and r.get_json()["request_id"]
    record = operator.find_device(device)
    assert record["status"] == "pending"
    assert [a["status"] for a in record["auth_sets"]] == ["pending"]
    assert record["auth_sets"][0]["pubkey"] == device.pubkey
    assert device.auth().status_code == 401  # an identical retry changes nothing
    assert len(operator.find_device(device)["auth_sets"]) == 1

    operator.accept(device)
    r = device.auth()
    assert r.status_code == 200
    assert r.mimetype == "application/jwt"
    token = r.get_data(as_text=True)
    claims = claims_of(token)
    assert claims["sub"] == record["id"] and claims["iss"] == "Mender" and claims["mender.device"] is True
    assert claims["exp"] - claims["iat"] == 604800 and "mender.tenant" not in claims
    assert header_of(token)["alg"] == "EdDSA"
    assert verify(client, token).status_code == 200
    assert operator.find_device(device)["status"] == "accepted"


def test_every_request_gets_a_fresh_token(client, device_factory):
    device = device_factory()
    first = device.token
    r = device.auth()
    assert r.status_code == 200
    assert claims_of(first)["jti"] != claims_of(device.token)["jti"]
    assert verify(client, first).status_code == 200
    assert verify(client, device.token).status_code == 200


def test_old_tokens_beyond_the_per_device_cap_are_revoked(client, device_factory):
    from devauth.service import TOKENS_PER_DEVICE
    device = device_factory()
    tokens = [device.token]
    for _ in range(TOKENS_PER_DEVICE):
        assert device.auth().status_code == 200
        tokens.append(device.token)
    assert verify(client, tokens[0]).status_code == 401
    assert all(verify(client, t).status_code == 200 for t in tokens[1:])


def test_go_client_wire_form_is_accepted(client, operator):
    """Header names in Go canonical form, `Authorization: Bearer` with an empty tenant token."""
    device = Device(client, key_kind="rsa")
    body = device.auth_body()
    assert body.endswith(b"\n")
    headers = {"X-Men-Signature": sign_body(device.key, body), "Authorization": "Bearer "}
    assert client.post(AUTH, data=body, content_type="application/json", headers=headers).status_code == 401
    operator.accept(device)
    r = client.post(AUTH, data=body, content_type="application/json; charset=utf-8", headers=headers)
    assert r.status_code == 200 and r.mimetype == "application/jwt"


def test_rejected_device_gets_401(client, operator):
    device = Device(client)
    device.auth()
    record = operator.find_device(device)
    aid = record["auth_sets"][0]["id"]
    r = operator.put(f"/api/management/v2/devauth/devices/{record['id']}/auth/{aid}/status",
                     json={"status": "rejected"})
    assert r.status_code == 204
    assert device.auth().status_code == 401
    assert operator.find_device(device)["status"] == "rejected"


def test_preauthorized_device_is_accepted_on_first_request(client, operator):
    device = Device(client, key_kind="ec256")
    r = operator.post("/api/management/v2/devauth/devices",
                      json={"identity_data": device.identity, "pubkey": device.pubkey})
    assert r.status_code == 201
    device_id = r.headers["Location"].rsplit("/", 1)[1]
    assert operator.find_device(device)["status"] == "preauthorized"
    r = device.auth()
    assert r.status_code == 200
    assert device.id == device_id
    record = operator.find_device(device)
    assert record["status"] == "accepted" and [a["status"] for a in record["auth_sets"]] == ["accepted"]


def test_preauthorized_identity_with_another_key_stays_pending(client, operator):
    device = Device(client)
    other_key = generate_device_key("ed25519")
    r = operator.post("/api/management/v2/devauth/devices",
                      json={"identity_data": device.identity,
                            "pubkey": Device(client, key=other_key).pubkey})
    assert r.status_code == 201
    assert device.auth().status_code == 401
    record = operator.find_device(device)
    assert sorted(a["status"] for a in record["auth_sets"]) == ["pending", "preauthorized"]
    assert record["status"] == "preauthorized"


def test_key_rotation_creates_a_new_pending_auth_set(client, operator, device_factory):
    device = device_factory(key_kind="rsa2048")
    old_token = device.token
    rotated = Device(client, identity=device.identity, key_kind="ed25519")
    assert rotated.auth().status_code == 401
    record = operator.find_device(device)
    assert [a["status"] for a in record["auth_sets"]] == ["accepted", "pending"]
    assert record["status"] == "accepted"
    assert device.auth().status_code == 200  # the old key still works until the new one is accepted
    operator.accept(rotated)
    assert rotated.id == device.id
    record = operator.find_device(device)
    assert [a["status"] for a in record["auth_sets"]] == ["rejected", "accepted"]
    assert device.auth().status_code == 401
    assert verify(client, old_token).status_code == 401
    assert verify(client, rotated.token).status_code == 200
