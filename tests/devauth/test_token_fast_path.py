"""Device tokens are recognised by their stored SHA-256 (no signature check per request), and
that fast path keeps every revocation rule of the full check."""

import base64
import json

import jwt
import pytest

from tests.helpers import Device

NEXT = "/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=test-device"


def _forge(token: str, **changes) -> str:
    header, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims.update(changes)
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{body}.{sig}"


def test_fast_path_skips_signature_verification(app, device_factory, monkeypatch):
    device = device_factory()
    svc = app.extensions["mender"].services.devauth
    calls = []
    monkeypatch.setattr(svc.tokens, "check", lambda token: calls.append(token) or pytest.fail("full check"))
    assert device.request("GET", NEXT).status_code == 204
    assert calls == []


def test_tampered_tokens_take_the_full_check_and_fail(app, device_factory):
    device = device_factory()
    other = device_factory()
    for forged in (_forge(device.token, sub=other.id), _forge(device.token, exp=4102444800),
                   _forge(device.token, **{"mender.tenant": "t2"}), device.token[:-4] + "AAAA"):
        r = device.client.get(NEXT, headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401, forged


def test_revocation_applies_on_the_next_request(app, client, operator, device_factory):
    device = device_factory()
    assert device.request("GET", NEXT).status_code == 204
    record = operator.find_device(device)
    aid = record["auth_sets"][0]["id"]
    assert operator.put(f"/api/management/v2/devauth/devices/{record['id']}/auth/{aid}/status",
                        json={"status": "rejected"}).status_code == 204
    assert device.request("GET", NEXT).status_code == 401


def test_expired_token_on_the_fast_path(make_app, backend):
    from common.clock import FrozenClock
    from tests.helpers import Operator, accepted_device
    clock = FrozenClock()
    app = make_app(backend, _CLOCK=clock, DEVICEAUTH_JWT_EXP_TIMEOUT=60)
    client = app.test_client()
    op = Operator.create(app, client)
    device = accepted_device(app, op, client)
    assert device.request("GET", NEXT).status_code == 204
    clock.advance(61)
    assert device.request("GET", NEXT).status_code == 401
    r = client.post("/api/internal/v1/devauth/tokens/verify", headers={"Authorization": f"Bearer {device.token}"})
    assert r.status_code == 403  # the internal verify tells an expired token (403) from an unknown one (401)


def test_peek_reads_claims_only_from_a_json_object_payload():
    """peek only finds the row to compare hashes with: a payload that is not exactly one JSON
    object with the claims' types gives None (the full check then decides)."""
    from devauth.tokens import DeviceTokens

    def token(raw: bytes) -> str:
        return "h." + base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + ".s"

    claims = {"jti": "j", "sub": "s", "exp": 5, "mender.device": True, "mender.tenant": "t"}
    compact = json.dumps(claims, separators=(",", ":")).encode()
    assert DeviceTokens.peek(token(compact)) == claims
    assert DeviceTokens.peek(token(json.dumps(claims).encode())) == claims
    for raw in (b" " + compact, compact + b" ", compact + b"{}", compact[:-1], b"\xff" + compact,
                "{\"jti\":\"\u00e9\"}".encode("latin-1"), b"[]", b"", b"[" * 5000 + b"]" * 5000,
                json.dumps({**claims, "exp": True}).encode(), json.dumps({**claims, "mender.device": 1}).encode(),
                json.dumps({**claims, "mender.tenant": 1}).encode(), json.dumps({**claims, "jti": 1}).encode()):
        assert DeviceTokens.peek(token(raw)) is None, raw
    assert DeviceTokens.peek("a.b") is None and DeviceTokens.peek("a.!!!.c") is None
