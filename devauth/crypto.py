"""Device keys, auth-request signatures and canonical identities (no HTTP here)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from common.errors import BadRequest, Unauthorized

RSA_MIN_BITS = 2048
RSA_MAX_BITS = 4096
# Go's crypto/rsa (Mender's) refuses a larger public exponent. OpenSSL takes any up to 3072-bit
# moduli, and verifying with one as long as the modulus costs ~100 times the CPU (10 ms against
# 0.1 ms at RSA-3072) of an auth request anyone can send.
RSA_MAX_EXPONENT = (1 << 31) - 1
EC_CURVES = (ec.SECP256R1, ec.SECP384R1)
MAX_PUBKEY_CHARS = 8 * 1024  # an RSA-4096 SPKI PEM is ~800 characters
MAX_ID_DATA_BYTES = 64 * 1024
MAX_SIGNATURE_CHARS = 1024  # base64 of an RSA-4096 signature is 684 characters

_PEM_RE = re.compile(r"\A\s*-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?"
                     r"-----END PUBLIC KEY-----\s*\Z")


def parse_public_key(pem: str) -> Any:
    """Parse a single PEM `PUBLIC KEY` (SPKI) block of a supported type.

    Supported: RSA 2048–4096 bits, ECDSA P-256/P-384, Ed25519. Raises BadRequest
    for anything else (private keys, truncated or trailing data, other key types and sizes).
    """
    if not isinstance(pem, str) or not pem.strip():
        raise BadRequest("pubkey: missing public key")
    if len(pem) > MAX_PUBKEY_CHARS:
        raise BadRequest("pubkey: too long")
    m = _PEM_RE.match(pem)
    if not m:
        raise BadRequest("pubkey: cannot decode public key: expected one PEM 'PUBLIC KEY' block")
    try:
        der = base64.b64decode("".join(m.group(1).split()), validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise BadRequest("pubkey: cannot decode public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if not RSA_MIN_BITS <= key.key_size <= RSA_MAX_BITS:
            raise BadRequest(f"pubkey: RSA keys must have {RSA_MIN_BITS} to {RSA_MAX_BITS} bits")
        if key.public_numbers().e > RSA_MAX_EXPONENT:
            raise BadRequest(f"pubkey: RSA public exponent larger than {RSA_MAX_EXPONENT}")
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, EC_CURVES):
            raise BadRequest("pubkey: unsupported elliptic curve (use P-256 or P-384)")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise BadRequest("pubkey: unsupported public key type (use RSA, ECDSA or Ed25519)")
    return key


def normalize_pem(key: Any) -> str:
    """The canonical PEM (SPKI) of a public key: how auth sets store and compare keys."""
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def normalize_pubkey(pem: str) -> str:
    """Parse and re-serialize a PEM public key; BadRequest as parse_public_key."""
    return normalize_pem(parse_public_key(pem))


def verify_signature(key: Any, signature_b64: str, body: bytes) -> None:
    """Check `X-MEN-Signature` (standard base64) over the exact raw body; Unauthorized when it fails."""
    if len(signature_b64) > MAX_SIGNATURE_CHARS:
        raise Unauthorized("signature verification failed")
    try:
        sig = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("signature verification failed") from None
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(sig, body, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(sig, body)
    except (InvalidSignature, ValueError):
        raise Unauthorized("signature verification failed") from None


# --------------------------------------------------------------------------- identity


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def parse_identity(id_data: str) -> dict:
    """Parse `id_data` (a JSON document in a string); BadRequest unless it is a non-empty object."""
    if not isinstance(id_data, str) or not id_data.strip():
        raise BadRequest("id_data: missing identity data")
    if len(id_data.encode("utf-8", "surrogatepass")) > MAX_ID_DATA_BYTES:
        raise BadRequest(f"id_data: larger than {MAX_ID_DATA_BYTES} bytes")
    try:
        value = json.loads(id_data, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequest("id_data: nested too deeply") from None
    except ValueError:
        raise BadRequest("id_data: not a JSON document") from None
    return check_identity(value, "id_data")


def check_identity(value: Any, field: str = "identity_data") -> dict:
    if not isinstance(value, dict) or not value:
        raise BadRequest(f"{field}: must be a non-empty JSON object")
    try:
        canonical_json(value)
    except RecursionError:
        raise BadRequest(f"{field}: nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"{field}: {exc}") from None
    return value


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')


def _go_string(s: str) -> str:
    def repl(m: re.Match) -> str:
        ch = m.group(0)
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if "\ud800" <= ch <= "\udfff":  # lone surrogate: Go writes U+FFFD
            return "\ufffd"
        return f"\\u{ord(ch):04x}"
    return '"' + _NEEDS_ESCAPE.sub(repl, s) + '"'


def _go_number(n: float) -> str:
    # Go decodes JSON numbers into float64 and prints them with strconv 'f' (or 'e' outside [1e-6, 1e21))
    f = float(n)
    if math.isinf(f) or math.isnan(f):
        raise ValueError("number out of range")
    if f == 0:
        return "0" if math.copysign(1, f) > 0 else "-0"
    a = abs(f)
    if 1e-6 <= a < 1e21:
        text = format(Decimal(repr(f)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    text = repr(f)
    mant, _, exp = text.partition("e")
    sign = exp[0] if exp[0] in "+-" else "+"
    digits = exp.lstrip("+-").lstrip("0") or "0"
    if mant.endswith(".0"):
        mant = mant[:-2]
    return f"{mant}e{sign}{digits}"


def canonical_json(value: Any) -> str:
    """JSON as Go's json.Marshal prints a decoded document: sorted keys, compact, HTML-escaped."""
    if isinstance(value, dict):
        return "{" + ",".join(_go_string(k) + ":" + canonical_json(value[k]) for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return _go_number(value)
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def identity_hash(identity: dict) -> str:
    """Hex SHA-256 of the canonical identity: the device key within a tenant."""
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()
