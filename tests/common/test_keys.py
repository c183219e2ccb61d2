"""Signing keys: generated once, shared by concurrent workers, configured keys win."""

import multiprocessing
import os
import stat
import subprocess

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from common.errors import ConfigError
from common.keys import TokenKeys, load_or_generate_key, load_or_generate_secret


def test_generated_key_is_ed25519_private_and_reused(tmp_path):
    key, path = load_or_generate_key("", str(tmp_path), "devauth.pem")
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, _ = load_or_generate_key("", str(tmp_path), "devauth.pem")
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert key.public_key().public_bytes(*raw) == again.public_key().public_bytes(*raw)


def _gen(data_dir, barrier, queue):
    barrier.wait()
    key, _ = load_or_generate_key("", data_dir, "k.pem")
    queue.put(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def test_concurrent_workers_end_up_with_one_key(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_gen, args=(str(tmp_path), barrier, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    keys = {queue.get(timeout=30) for _ in procs}
    for p in procs:
        p.join(10)
    assert len(keys) == 1
    assert os.listdir(tmp_path / "keys") == ["k.pem"]  # no temp files left


def test_configured_rsa_key_signs_rs256(tmp_path):
    path = tmp_path / "private.id.7.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(path), "2048"], check=True,
                   capture_output=True)
    keys = TokenKeys.from_config(str(path), "", str(tmp_path), "unused.pem", with_kid=True)
    assert keys.algorithm == "RS256" and keys.kid == "7"
    token = keys.sign({"sub": "x", "exp": 4102444800})
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "7", "typ": "JWT"}
    assert keys.decode(token)["sub"] == "x"
    assert not (tmp_path / "keys").exists()  # nothing generated when a key is configured


def test_fallback_key_verifies_old_tokens(tmp_path):
    old = TokenKeys.from_config("", "", str(tmp_path / "old"), "k.pem")
    token = old.sign({"sub": "x", "exp": 4102444800})
    old_path = str(tmp_path / "old" / "keys" / "k.pem")
    new = TokenKeys.from_config("", old_path, str(tmp_path / "new"), "k.pem")
    assert new.decode(token)["sub"] == "x"
    stranger = TokenKeys.from_config("", "", str(tmp_path / "other"), "k.pem")
    with pytest.raises(jwt.InvalidTokenError):
        stranger.decode(token)


def test_rejects_alg_none_and_hs256_confusion(tmp_path):
    keys = TokenKeys.from_config("", "", str(tmp_path), "k.pem")
    none_token = jwt.encode({"sub": "x"}, None, algorithm="none")
    with pytest.raises(jwt.InvalidTokenError):
        keys.decode(none_token)
    pub = keys.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = jwt.api_jws.PyJWS().encode(b'{"sub":"x"}', pub.decode().encode() * 0 + b"k" * 32, algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError):
        keys.decode(forged)


def test_bad_configured_keys_fail_clearly(tmp_path):
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match="cannot read"):
        load_or_generate_key(str(missing), str(tmp_path), "x.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="not an unencrypted PEM"):
        load_or_generate_key(str(garbage), str(tmp_path), "x.pem")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    weak = tmp_path / "weak.pem"
    weak.write_bytes(small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="2048"):
        load_or_generate_key(str(weak), str(tmp_path), "x.pem")


def test_secret_generated_once(tmp_path):
    a = load_or_generate_secret(str(tmp_path), "presign")
    assert len(a) == 32 and load_or_generate_secret(str(tmp_path), "presign") == a
