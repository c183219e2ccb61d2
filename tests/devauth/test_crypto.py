"""Keys, signatures and canonical identities (no HTTP)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa, x25519

from common.errors import BadRequest, Unauthorized
from devauth import crypto
from tests.helpers import generate_device_key, public_pem, sign_body

KINDS = ["rsa2048", "rsa", "ec256", "ec384", "ed25519"]


def verifies(public_key, signature: str, body: bytes) -> bool:
    """Whether devauth accepts the signature (it raises Unauthorized when not)."""
    try:
        crypto.verify_signature(public_key, signature, body)
    except Unauthorized:
        return False
    return True


@pytest.mark.parametrize("kind", KINDS)
def test_each_supported_key_type_verifies_and_normalizes(kind):
    key = generate_device_key(kind)
    pem = public_pem(key)
    parsed = crypto.parse_public_key(pem)
    assert crypto.normalize_pem(parsed) == pem
    # CRLF line ends and surrounding blanks normalize to the same PEM
    assert crypto.normalize_pubkey("\n" + pem.replace("\n", "\r\n") + "\n\n") == pem
    body = b'{"id_data":"{}","pubkey":"x"}\n'
    assert verifies(parsed, sign_body(key, body), body)
    assert not verifies(parsed, sign_body(key, body + b" "), body)
    assert not verifies(parsed, sign_body(key, body), body.rstrip())
    assert not verifies(parsed, sign_body(generate_device_key(kind), body), body)  # another key of the kind


def test_rsa_4096_accepted():
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    parsed = crypto.parse_public_key(public_pem(key))
    assert crypto.normalize_pem(parsed) == public_pem(key)
    assert verifies(parsed, sign_body(key, b"{}"), b"{}")


def _rsa_pem_with_exponent(e: int) -> str:
    n = rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key().public_numbers().n
    return public_pem_of(rsa.RSAPublicNumbers(e, n).public_key())


def public_pem_of(public_key) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_rsa_public_exponent_at_most_go_s():
    """As Go's crypto/rsa: an exponent above 2^31-1 is refused (one as long as the modulus made
    every unauthenticated auth request's verification cost ~100 times the CPU)."""
    assert crypto.parse_public_key(_rsa_pem_with_exponent((1 << 31) - 1))
    for e in ((1 << 31) + 1, (1 << 3000) + 1):
        with pytest.raises(BadRequest, match="exponent"):
            crypto.parse_public_key(_rsa_pem_with_exponent(e))


def _pem(key) -> str:
    return public_pem(key)


@pytest.mark.parametrize("make", [
    lambda: _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    lambda: _pem(dsa.generate_private_key(2048)),
    lambda: _pem(x25519.X25519PrivateKey.generate()),
    lambda: _pem(ec.generate_private_key(ec.SECP521R1())),
    lambda: _pem(ec.generate_private_key(ec.SECP256K1())),
], ids=["rsa1024", "dsa", "x25519", "p521", "secp256k1"])
def test_unsupported_key_types_are_bad_requests(make):
    with pytest.raises(BadRequest):
        crypto.parse_public_key(make())


def test_malformed_pems_are_bad_requests():
    key = ed25519.Ed25519PrivateKey.generate()
    pem = public_pem(key)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    rsa_pkcs1 = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    lines = pem.splitlines()
    for bad in [private, pem[: len(pem) // 2], pem + pem, pem + "trailing", "garbage", "", "   ",
                "\n".join(lines[:1] + ["!!!!"] + lines[-1:]),
                "\n".join(lines[:1] + [base64.b64encode(b"not a key").decode()] + lines[-1:]),
                rsa_pkcs1, "-----BEGIN PUBLIC KEY-----\n" + "A" * 10000 + "\n-----END PUBLIC KEY-----\n"]:
        with pytest.raises(BadRequest):
            crypto.parse_public_key(bad)


@pytest.mark.parametrize("sig", ["", "!!!not-base64!!!", "AAAA", "A" * 5000, "YWJj\x00"])
def test_bad_signatures_are_unauthorized(sig):
    key = generate_device_key("ec256")
    assert not verifies(key.public_key(), sig, b"body")


@pytest.mark.parametrize("value,expected", [
    ({"sn": "1", "mac": "a"}, '{"mac":"a","sn":"1"}'),
    ({"b": [1, 2.0, 1.5, -0.0], "a": {"y": None, "x": True}}, '{"a":{"x":true,"y":null},"b":[1,2,1.5,-0]}'),
    ({"n": 1e21, "m": 1e20, "s": 1e-7, "t": 0.000001, "u": 123456789012345678},
     '{"m":100000000000000000000,"n":1e+21,"s":1e-7,"t":0.000001,"u":123456789012345680}'),
    ({"h": "<a&b>", "u": "é\u2028", "c": "\x01\n\t\"\\"}, '{"c":"\\u0001\\n\\t\\"\\\\","h":"\\u003ca\\u0026b\\u003e","u":"é\\u2028"}'),
])
def test_canonical_json_matches_go(value, expected):
    assert crypto.canonical_json(value) == expected


def test_identity_hash_is_sha256_of_canonical_form():
    ident = crypto.parse_identity('{ "sn" : "1",\n "mac": "a" }')
    assert crypto.identity_hash(ident) == hashlib.sha256(b'{"mac":"a","sn":"1"}').hexdigest()
    assert crypto.identity_hash(crypto.parse_identity('{"mac":"a","sn":"1"}')) == crypto.identity_hash(ident)


@pytest.mark.parametrize("raw", ["", "[]", '"x"', "1", "{}", "not json", '{"a":NaN}', '{"a":1e999}',
                                 "[" * 100000 + "]" * 100000, '{"a":' * 5000 + "1" + "}" * 5000,
                                 json.dumps({"a": "x" * (70 * 1024)})])
def test_bad_identities(raw):
    with pytest.raises(BadRequest):
        crypto.parse_identity(raw)
