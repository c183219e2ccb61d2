"""User-token keys: RSA/RS256 with a `kid` from the file name, rotation with a fallback key,
and algorithm-confusion attempts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.helpers import Operator

ME = "/api/management/v1/useradm/users/me"


def write_key(path, key) -> str:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def test_rsa_key_signs_rs256_with_kid_from_file_name(make_app, backend, tmp_path):
    key = write_key(tmp_path / "private.id.3.pem", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    app = make_app(backend, USERADM_SERVER_PRIV_KEY_PATH=key)
    op = Operator.create(app)
    header = jwt.get_unverified_header(op.token)
    assert header["alg"] == "RS256" and header["kid"] == "3"
    assert op.get(ME).status_code == 200


def test_rotation_with_fallback_key(make_app, tmp_path):
    old = write_key(tmp_path / "old.pem", ed25519.Ed25519PrivateKey.generate())
    new = write_key(tmp_path / "new.pem", ed25519.Ed25519PrivateKey.generate())
    data_dir = str(tmp_path / "d")
    before = make_app("sqlite", MENDER_DATA_DIR=data_dir, USERADM_SERVER_PRIV_KEY_PATH=old)
    op = Operator.create(before)
    rotated = make_app("sqlite", MENDER_DATA_DIR=data_dir, USERADM_SERVER_PRIV_KEY_PATH=new,
                       USERADM_SERVER_FALLBACK_PRIV_KEY_PATH=old)
    client = rotated.test_client()
    assert client.get(ME, headers=op.headers).status_code == 200  # old token still accepted
    after = make_app("sqlite", MENDER_DATA_DIR=data_dir, USERADM_SERVER_PRIV_KEY_PATH=new)
    assert after.test_client().get(ME, headers=op.headers).status_code == 401  # fallback removed


def test_generated_key_is_reused_across_processes(make_app, tmp_path):
    data_dir = str(tmp_path / "d")
    a = make_app("sqlite", MENDER_DATA_DIR=data_dir)
    op = Operator.create(a)
    b = make_app("sqlite", MENDER_DATA_DIR=data_dir)  # another worker: same key file, same database
    assert b.test_client().get(ME, headers=op.headers).status_code == 200


def test_hs256_signed_with_public_key_is_refused(app, client, operator):
    """Algorithm confusion: an HMAC token keyed with the server's public key."""
    keys = app.extensions["mender"].services.useradm.tokens.keys
    public_pem = keys.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = jwt.decode(operator.token, options={"verify_signature": False})

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "0"}).encode()) + "." + \
        b64(json.dumps(claims).encode())
    sig = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(sig)}"
    r = client.get(ME, headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert operator.get(ME).status_code == 200
