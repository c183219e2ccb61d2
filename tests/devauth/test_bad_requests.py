"""Hostile and malformed auth requests: always a 4xx, and nothing created but the pending
auth set of a validly signed request."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from tests.helpers import Device, generate_device_key, public_pem, sign_body

# every test here runs through the direct route and through the Flask view (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("both_paths")

AUTH = Device.AUTH_PATH


def post(client, body: bytes, signature: str | None, content_type="application/json"):
    headers = {"Authorization": "Bearer "}
    if signature is not None:
        headers["X-MEN-Signature"] = signature
    return client.post(AUTH, data=body, content_type=content_type, headers=headers)


def body_of(identity="{\"mac\":\"aa\"}", pubkey=None, key=None, **extra) -> bytes:
    pubkey = pubkey if pubkey is not None else public_pem(key)
    return (json.dumps({"id_data": identity, "tenant_token": "", "pubkey": pubkey, **extra}) + "\n").encode()


def nothing_created(app) -> bool:
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()  # (a request rejected before routing never migrated the database)
    return ctx.services.devauth.count_devices("") == 0


KEY = generate_device_key("ed25519")
OTHER = generate_device_key("ed25519")
PRIVATE_PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
GOOD = body_of(key=KEY)


def _cases():
    """(name, body, signature, expected status)"""
    rsa1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    dsa_key = dsa.generate_private_key(2048)
    pem = public_pem(KEY)
    cases = [
        ("wrong signature", GOOD, sign_body(OTHER, GOOD), 401),
        ("signature over another body", GOOD, sign_body(KEY, body_of('{"mac":"bb"}', key=KEY)), 401),
        ("replayed body with another key", body_of(key=OTHER), sign_body(KEY, GOOD), 401),
        ("non-base64 signature", GOOD, "%%%not base64%%%", 401),
        ("empty signature", GOOD, "", 400),
        ("missing signature", GOOD, None, 400),
        ("truncated signature", GOOD, sign_body(KEY, GOOD)[:40], 401),
        ("truncated pem", body_of(pubkey=pem[: len(pem) // 2]), None, 400),
        ("private key pem", body_of(pubkey=PRIVATE_PEM), None, 400),
        ("garbage pem", body_of(pubkey="garbage"), None, 400),
        ("pem with trailing data", body_of(pubkey=pem + "trailing"), None, 400),
        ("rsa 1024", body_of(key=rsa1024), "rsa1024", 400),
        ("dsa", body_of(key=dsa_key), None, 400),
        ("id_data not an object", body_of('["a"]', key=KEY), "self", 400),
        ("id_data not json", body_of("mac=aa", key=KEY), "self", 400),
        ("id_data empty object", body_of("{}", key=KEY), "self", 400),
        ("id_data not a string", body_of({"mac": "aa"}, key=KEY), "self", 400),
        ("id_data too large", body_of(json.dumps({"a": "x" * 70000}), key=KEY), "self", 400),
        ("id_data deeply nested", body_of('{"a":' * 3000 + "1" + "}" * 3000, key=KEY), "self", 400),
        ("missing id_data", json.dumps({"pubkey": pem}).encode(), "self", 400),
        ("missing pubkey", json.dumps({"id_data": '{"a":1}'}).encode(), "self", 400),
        ("pubkey not a string", json.dumps({"id_data": '{"a":1}', "pubkey": 5}).encode(), "self", 400),
        ("tenant_token not a string", body_of(key=KEY, tenant_token=[1]), "self", 400),
        ("body not json", b"id_data=x", "self", 400),
        ("body a list", b"[1,2]", "self", 400),
        ("empty body", b"", "self", 400),
        ("deep nesting", b"[" * 100000 + b"]" * 100000, "self", 400),
        ("NUL bytes", b'{"id_data":"{\\"a\\":1}",\x00"pubkey":"x"}', "self", 400),
        ("invalid utf-8", b'{"id_data":"\xff\xfe","pubkey":"x"}', "self", 400),
    ]
    return cases, rsa1024


CASES, RSA1024 = _cases()


@pytest.mark.parametrize("name,body,sig,status", CASES, ids=[c[0] for c in CASES])
def test_malformed_auth_requests_are_4xx_and_create_nothing(app, client, name, body, sig, status):
    if sig == "self":
        sig = sign_body(KEY, body)
    elif sig == "rsa1024":
        sig = sign_body(RSA1024, body)
    r = post(client, body, sig)
    assert r.status_code == status, r.get_data(as_text=True)
    data = r.get_json()
    assert data["error"] and data["request_id"]
    assert nothing_created(app)


def test_wrong_content_type_is_415(app, client):
    r = post(client, GOOD, sign_body(KEY, GOOD), content_type="text/plain")
    assert r.status_code == 415
    r = client.post(AUTH, data=GOOD, headers={"X-MEN-Signature": sign_body(KEY, GOOD)})
    assert r.status_code == 415
    assert nothing_created(app)


def test_two_mib_body_is_413(app, client):
    body = body_of(key=KEY, padding="x" * (2 * 1024 * 1024))
    r = post(client, body, sign_body(KEY, body))
    assert r.status_code == 413
    assert nothing_created(app)


def test_validly_signed_request_creates_exactly_one_pending_auth_set(app, client):
    r = post(client, GOOD, sign_body(KEY, GOOD))
    assert r.status_code == 401
    with app.app_context():
        svc = app.extensions["mender"].services.devauth
        devices, total = svc.list_devices("")
        assert total == 1 and devices[0].status == "pending"
        assert [a.status for a in devices[0].auth_sets] == ["pending"]


def _mutate(rng, body: bytes) -> bytes:
    b = bytearray(body)
    op = rng.randrange(5)
    pos = rng.randrange(len(b))
    if op == 0:
        b[pos] = rng.randrange(256)
    elif op == 1:
        del b[pos:pos + rng.randrange(1, 40)]
    elif op == 2:
        b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    elif op == 3:
        b = b[:pos]
    else:
        b[pos:pos] = rng.choice([b"\x00", b"\xff", b"[" * 2000, b'\\u0000', b'"', b"{}", b"\r\n"])
    return bytes(b)


def test_fuzzed_auth_requests_never_5xx_nor_admitted(sqlite_app, sqlite_client):
    """S1 in small: mutated bodies, signed with the original signature (never created) or
    re-signed (at most a pending auth set), are always 400/401 and never issue a token."""
    import random
    rng = random.Random(20261123)
    key = generate_device_key("ec256")
    body = body_of('{"mac":"02:00:00:00:00:01","sn":"fuzz"}', key=key)
    original_sig = sign_body(key, body)
    for _ in range(300):
        mutated = _mutate(rng, body)
        if mutated == body:  # a byte overwritten with itself: not a mutation (the signature is valid)
            continue
        r = post(sqlite_client, mutated, original_sig)
        assert r.status_code in (400, 401), r.status_code
    assert nothing_created(sqlite_app)
    for _ in range(300):
        mutated = _mutate(rng, body)
        r = post(sqlite_client, mutated, sign_body(key, mutated))
        assert r.status_code in (400, 401), r.status_code
    svc = sqlite_app.extensions["mender"].services.devauth
    assert svc.count_devices("", "accepted") == 0
    assert svc.count_devices("") == svc.count_devices("", "pending")
