"""Device tokens: verification, attacks (S2), expiry, revocation, the internal API."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from common.clock import FrozenClock
from tests.helpers import Device, Operator

VERIFY = "/api/internal/v1/devauth/tokens/verify"
INTERNAL = "/api/internal/v1/devauth"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def verify(client, token, method="POST"):
    return client.open(VERIFY, method=method, headers={"Authorization": f"Bearer {token}"})


def server_key(app):
    return app.extensions["mender"].services.devauth.tokens.keys.private_key


def test_verify_get_and_post(client, device_factory):
    device = device_factory()
    assert verify(client, device.token).status_code == 200
    assert verify(client, device.token, "GET").status_code == 200
    assert client.post(VERIFY).status_code == 401


def forged_tokens(app, device) -> dict:
    claims = claims_of(device.token)
    key = server_key(app)
    pub_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    header, payload, sig = device.token.split(".")
    other = jwt.encode(claims, serialization.load_pem_private_key(
        Device(None).key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), None), algorithm="EdDSA")
    return {
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "hs256 with public key": f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{payload}."
                                 + base64.urlsafe_b64encode(__import__('hmac').new(
                                     pub_pem, f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{payload}".encode(),
                                     "sha256").digest()).rstrip(b"=").decode(),
        "signed by another key": other,
        "tampered payload": f"{header}.{b64({**claims, 'sub': 'someone-else'})}.{sig}",
        "wrong iss": jwt.encode({**claims, "iss": "evil"}, key, algorithm="EdDSA"),
        "no mender.device": jwt.encode({k: v for k, v in claims.items() if k != "mender.device"}, key,
                                       algorithm="EdDSA"),
        "nbf in future": jwt.encode({**claims, "nbf": claims["iat"] + 3600}, key, algorithm="EdDSA"),
        "unknown jti": jwt.encode({**claims, "jti": "not-stored"}, key, algorithm="EdDSA"),
        "other tenant": jwt.encode({**claims, "mender.tenant": "t2"}, key, algorithm="EdDSA"),
        "garbage": "abc.def.ghi",
        "not a jwt": "hello",
    }


def test_forged_tokens_are_rejected(app, client, operator, device_factory):
    device = device_factory()
    for name, token in forged_tokens(app, device).items():
        assert verify(client, token).status_code == 401, name
        with pytest.raises(Exception) as exc:
            app.extensions["mender"].services.devauth.authenticate(token)
        assert getattr(exc.value, "status", None) == 401, name
    # a user token is no device token
    assert verify(client, operator.token).status_code == 401


def test_expired_token_is_403_on_verify_and_401_for_devices(make_app, backend):
    clock = FrozenClock()
    app = make_app(backend, _CLOCK=clock, DEVICEAUTH_JWT_EXP_TIMEOUT=3600)
    client = app.test_client()
    operator = Operator.create(app, client)
    device = Device(client)
    device.auth()
    operator.accept(device)
    assert claims_of(device.token)["exp"] == int(clock.now()) + 3600
    clock.advance(3599)
    assert verify(client, device.token).status_code == 200
    clock.advance(2)
    with pytest.raises(Exception) as exc:
        app.extensions["mender"].services.devauth.authenticate(device.token)
    assert exc.value.status == 401
    r = verify(client, device.token)
    assert r.status_code == 403 and r.get_json()["error"] == "token expired"
    assert device.auth().status_code == 200  # the device simply asks again
    assert verify(client, device.token).status_code == 200


def test_tokens_of_rejected_and_decommissioned_devices_are_rejected(client, operator, device_factory):
    a, b = device_factory(), device_factory()
    rec = operator.find_device(a)
    operator.put(f"/api/management/v2/devauth/devices/{rec['id']}/auth/{rec['auth_sets'][0]['id']}/status",
                 json={"status": "rejected"})
    assert verify(client, a.token).status_code == 401
    operator.delete(f"/api/management/v2/devauth/devices/{b.id}")
    assert verify(client, b.token).status_code == 401


def test_internal_token_revocation(client, device_factory):
    a, b = device_factory(), device_factory()
    assert client.delete(f"{INTERNAL}/tokens").status_code == 400  # tenant_id is required
    assert client.delete(f"{INTERNAL}/tokens?tenant_id=&device_id={a.id}").status_code == 204
    assert verify(client, a.token).status_code == 401
    assert verify(client, b.token).status_code == 200
    assert client.delete(f"{INTERNAL}/tokens?tenant_id=other").status_code == 204
    assert verify(client, b.token).status_code == 200
    assert client.delete(f"{INTERNAL}/tokens?tenant_id=").status_code == 204
    assert verify(client, b.token).status_code == 401


def test_internal_limits(client):
    url = f"{INTERNAL}/tenant/t1/limits/max_devices"
    assert client.get(url).get_json() == {"limit": -1}
    assert client.put(url, json={"limit": 3}).status_code == 204
    assert client.get(url).get_json() == {"limit": 3}
    assert client.get(f"{INTERNAL}/tenant/t2/limits/max_devices").get_json() == {"limit": -1}
    for bad in [{"limit": -2}, {"limit": "3"}, {"limit": 1.5}, {}, {"limit": 3, "x": 1}]:
        assert client.put(url, json=bad).status_code == 400, bad
    assert client.delete(url).status_code == 204
    assert client.get(url).get_json() == {"limit": -1}


def test_configured_default_limit(make_app, backend):
    app = make_app(backend, DEVICEAUTH_MAX_DEVICES=0)
    client = app.test_client()
    operator = Operator.create(app, client)
    assert operator.get("/api/management/v2/devauth/limits/max_devices").get_json() == {"limit": 0}
    device = Device(client)
    device.auth()
    rec = operator.find_device(device)
    r = operator.put(f"/api/management/v2/devauth/devices/{rec['id']}/auth/{rec['auth_sets'][0]['id']}/status",
                     json={"status": "accepted"})
    assert r.status_code == 422


def test_internal_devices_and_status(client, device_factory):
    device = device_factory()
    r = client.get(f"{INTERNAL}/tenants/t2/devices?status=accepted&per_page=5")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "0"
    assert client.get(f"{INTERNAL}/tenants/t2/devices?status=bogus").status_code == 400
    assert client.get(f"{INTERNAL}/tenants/t2/devices").get_json() == []
    assert client.get(f"{INTERNAL}/tenants/t2/devices/count").get_json() == {"count": 0}
    assert client.get(f"{INTERNAL}/tenants/t2/devices/{device.id}/status").status_code == 404
    assert client.post(f"{INTERNAL}/tenants", json={"tenant_id": "t3"}).status_code == 201
    assert client.post(f"{INTERNAL}/tenants", json={"x": 1}).status_code == 400


def test_rs256_server_key(make_app, backend, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa
    path = tmp_path / "server.pem"
    path.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    app = make_app(backend, DEVICEAUTH_SERVER_PRIV_KEY_PATH=str(path))
    client = app.test_client()
    operator = Operator.create(app, client)
    device = Device(client)
    device.auth()
    operator.accept(device)
    assert json.loads(base64.urlsafe_b64decode(device.token.split(".")[0] + "=="))["alg"] == "RS256"
    assert verify(client, device.token).status_code == 200


def test_internal_delete_device(client, device_factory):
    device = device_factory()
    assert client.delete(f"{INTERNAL}/tenants/t2/devices/{device.id}").status_code == 201
    assert verify(client, device.token).status_code == 200  # another tenant's device: untouched
    assert client.get(f"{INTERNAL}/tenants/t2/devices/{device.id}/status").status_code == 404


def test_device_routes_of_other_services_use_the_device_authenticator(client, operator, device_factory):
    device = device_factory()
    url = "/api/devices/v1/inventory/device/attributes"
    attrs = [{"name": "device_type", "value": "test-device"}]
    assert device.request("PATCH", url, json=attrs).status_code == 200
    assert client.patch(url, json=attrs).status_code == 401
    assert client.patch(url, json=attrs, headers=operator.headers).status_code == 401
    jti = claims_of(device.token)["jti"]
    assert operator.delete(f"/api/management/v2/devauth/tokens/{jti}").status_code == 204
    r = device.request("PATCH", url, json=attrs)
    assert r.status_code == 401  # revocation is effective on the next request
    assert device.auth().status_code == 200  # the client re-authenticates and retries
    assert device.request("PATCH", url, json=attrs).status_code == 200


def test_server_key_rotation_with_fallback(make_app, tmp_path):
    """Tokens signed with the previous key stay valid while it is the fallback, and not after."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    def key_file(name):
        path = tmp_path / name
        path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return str(path)

    old, new = key_file("old.pem"), key_file("new.pem")
    data_dir = str(tmp_path / "shared")
    app1 = make_app("sqlite", MENDER_DATA_DIR=data_dir, DEVICEAUTH_SERVER_PRIV_KEY_PATH=old)
    client1 = app1.test_client()
    operator = Operator.create(app1, client1)
    device = Device(client1)
    device.auth()
    operator.accept(device)
    rotated = make_app("sqlite", MENDER_DATA_DIR=data_dir, DEVICEAUTH_SERVER_PRIV_KEY_PATH=new,
                       DEVICEAUTH_SERVER_FALLBACK_PRIV_KEY_PATH=old).test_client()
    assert verify(rotated, device.token).status_code == 200
    dropped = make_app("sqlite", MENDER_DATA_DIR=data_dir, DEVICEAUTH_SERVER_PRIV_KEY_PATH=new).test_client()
    assert verify(dropped, device.token).status_code == 401
    device.client = dropped
    assert device.auth().status_code == 200  # a new token signed with the new key
    assert verify(dropped, device.token).status_code == 200


def test_check_in_time_is_written_at_most_once_a_minute(make_app, backend):
    from common.clock import rfc3339_ms
    clock = FrozenClock(1_800_000_000.0)
    app = make_app(backend, _CLOCK=clock)
    check_ins = app.extensions["mender"].services.devauth.check_ins  # written in batches: flush to look
    client = app.test_client()
    operator = Operator.create(app, client)
    device = Device(client)
    device.auth()
    operator.accept(device)
    url = f"/api/management/v2/devauth/devices/{device.id}"
    check_ins.flush()
    assert operator.get(url).get_json()["check_in_time"] == rfc3339_ms(clock.now())
    first = clock.now()
    clock.advance(30)
    assert device.auth().status_code == 200
    assert verify(client, device.token).status_code == 200
    assert check_ins.pending() == 0  # within the minute: not even recorded
    assert operator.get(url).get_json()["check_in_time"] == rfc3339_ms(first)
    clock.advance(31)
    assert verify(client, device.token).status_code == 200
    check_ins.flush()
    assert operator.get(url).get_json()["check_in_time"] == rfc3339_ms(clock.now())


def test_check_ins_are_batched_and_written_by_the_worker_thread(make_app, backend):
    from common.clock import rfc3339_ms
    app = make_app(backend, DEVICEAUTH_CHECK_IN_BATCH_SECONDS=0.2)
    check_ins = app.extensions["mender"].services.devauth.check_ins
    client = app.test_client()
    operator = Operator.create(app, client)
    devices = [Device(client) for _ in range(3)]
    for d in devices:
        d.auth()
        operator.accept(d)
    for d in devices:
        assert verify(client, d.token).status_code == 200
    deadline = time.monotonic() + 10
    while check_ins.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert check_ins.pending() == 0
    for d in devices:
        devauth = operator.get(f"/api/management/v2/devauth/devices/{d.id}").get_json()["check_in_time"]
        inventory = operator.get(f"/api/management/v1/inventory/devices/{d.id}").get_json()["attributes"]
        assert devauth and {"name": "check_in_time", "scope": "system", "value": devauth} in \
            [{k: a[k] for k in ("name", "scope", "value")} for a in inventory]
        assert devauth <= rfc3339_ms(time.time())


def test_check_ins_synchronous_when_batching_is_off(make_app):
    app = make_app("sqlite", DEVICEAUTH_CHECK_IN_BATCH_SECONDS=0)
    client = app.test_client()
    operator = Operator.create(app, client)
    device = Device(client)
    device.auth()
    operator.accept(device)
    assert app.extensions["mender"].services.devauth.check_ins.pending() == 0
    assert operator.get(f"/api/management/v2/devauth/devices/{device.id}").get_json()["check_in_time"]
