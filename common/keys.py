"""Token signing keys and shared secrets: loaded from configured files, or generated once
into the data directory (atomically, so that concurrent workers end up with the same key)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from common.errors import ConfigError

_KID_PATTERN = re.compile(r"private\.id\.([0-9]+)\.pem$")


def _write_once(path: str, data: bytes) -> None:
    """Create `path` with `data` (mode 0600) unless it exists; atomic against concurrent writers:
    the content is complete before the name appears, and the first writer wins."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def load_private_key(path: str) -> Any:
    """Parse a PEM private key file. Raises ConfigError if it is missing or not a key we can use."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    algorithm_for(key)  # validates the type
    return key


def algorithm_for(key: Any) -> str:
    """The JWT algorithm a private key signs with."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ConfigError("RSA signing keys must have at least 2048 bits")
        return "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ConfigError(f"unsupported signing key type {type(key).__name__} (use RSA, Ed25519 or ECDSA P-256)")


def load_or_generate_key(configured_path: str, data_dir: str, name: str) -> tuple[Any, str]:
    """The configured key, else `<data_dir>/keys/<name>` (an Ed25519 key generated on first use).
    Returns (private key, path)."""
    if configured_path:
        return load_private_key(configured_path), configured_path
    path = os.path.join(data_dir, "keys", name)
    if not os.path.exists(path):
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        _write_once(path, pem)
    return load_private_key(path), path


def load_or_generate_secret(data_dir: str, name: str, nbytes: int = 32) -> bytes:
    """A random secret kept (base64) in `<data_dir>/keys/<name>`, generated on first use."""
    path = os.path.join(data_dir, "keys", name)
    if not os.path.exists(path):
        _write_once(path, base64.b64encode(secrets.token_bytes(nbytes)) + b"\n")
    with open(path, "rb") as f:
        return base64.b64decode(f.read().strip())


def _fingerprint(public_key: Any) -> bytes:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


@dataclass
class TokenKeys:
    """Signs tokens with the main key; verifies with the main key, then the fallback (rotation)."""

    private_key: Any
    kid: str | None = None
    fallback_key: Any = None
    algorithm: str = field(init=False)

    def __post_init__(self) -> None:
        self.algorithm = algorithm_for(self.private_key)
        self._verifiers = [(self.private_key.public_key(), self.algorithm)]
        if self.fallback_key is not None:
            self._verifiers.append((self.fallback_key.public_key(), algorithm_for(self.fallback_key)))
        # identifies each verification key (main first): lets a store recognise tokens per key
        self.fingerprints = [_fingerprint(k) for k, _ in self._verifiers]

    @classmethod
    def from_config(cls, configured: str, fallback: str, data_dir: str, name: str,
                    with_kid: bool = False) -> "TokenKeys":
        key, path = load_or_generate_key(configured, data_dir, name)
        kid = None
        if with_kid:
            m = _KID_PATTERN.search(path)
            kid = m.group(1) if m else "0"
        fallback_key = load_private_key(fallback) if fallback else None
        return cls(key, kid=kid, fallback_key=fallback_key)

    def sign(self, claims: dict) -> str:
        headers = {"kid": self.kid} if self.kid is not None else None
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=headers)

    def decode(self, token: str, **kwargs: Any) -> dict:
        """Verify signature and standard claims; raises jwt.InvalidTokenError (ExpiredSignatureError
        when only the expiry is wrong)."""
        last: Exception | None = None
        for public_key, alg in self._verifiers:
            try:
                return jwt.decode(token, public_key, algorithms=[alg], **kwargs)
            except jwt.InvalidSignatureError as exc:
                last = exc
            except jwt.InvalidAlgorithmError as exc:
                last = exc
        assert last is not None
        raise last
