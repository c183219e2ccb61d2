"""Device JWTs: issuing and verifying the signature and claims (storage and revocation live in
the service)."""

from __future__ import annotations

import json
import uuid
from binascii import a2b_base64
from typing import Any

import jwt

from common.errors import Forbidden, Unauthorized
from common.keys import TokenKeys

REQUIRED_CLAIMS = ("jti", "sub", "iss", "iat", "exp")
_DECODER = json.JSONDecoder()
_URLSAFE = bytes.maketrans(b"-_", b"+/")


class DeviceTokens:
    """Signs and checks device tokens with the configured key (built once per process, lazily)."""

    def __init__(self, config, clock):
        self._config = config
        self._clock = clock
        self._keys: TokenKeys | None = None

    @property
    def keys(self) -> TokenKeys:
        if self._keys is None:
            cfg = self._config
            self._keys = TokenKeys.from_config(cfg["DEVICEAUTH_SERVER_PRIV_KEY_PATH"],
                                               cfg["DEVICEAUTH_SERVER_FALLBACK_PRIV_KEY_PATH"],
                                               cfg.data_dir, "devauth.pem")
        return self._keys

    @property
    def issuer(self) -> str:
        return self._config["DEVICEAUTH_JWT_ISSUER"]

    def issue(self, tenant: str, device_id: str) -> tuple[str, dict]:
        """A fresh signed token for a device; returns (token, claims)."""
        now = int(self._clock.now())
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": device_id,
            "iss": self.issuer,
            "iat": now,
            "exp": now + int(self._config["DEVICEAUTH_JWT_EXP_TIMEOUT"]),
            "mender.device": True,
            "mender.plan": "enterprise",
            "mender.trial": False,
        }
        if tenant:
            claims["mender.tenant"] = tenant
        return self.keys.sign(claims), claims

    @staticmethod
    def peek(token: str) -> dict | None:
        """The claims of a token WITHOUT verifying it (None when it does not even parse): only to
        find its stored row, whose hash then decides whether the token is one we issued."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            return None
        try:
            payload = token.split(".")[1]
            # base64.urlsafe_b64decode's own steps (ASCII bytes, the URL-safe alphabet mapped back,
            # binascii's lenient decode) without its two Python layers
            text = a2b_base64(payload.encode("ascii").translate(_URLSAFE) + b"=" * (-len(payload) % 4)).decode()
            # the decoder without json.loads' encoding detection and whitespace scans: the tokens we
            # issue are compact UTF-8 JSON, and any other text only misses this lookup
            claims, end = _DECODER.raw_decode(text)
        except (ValueError, RecursionError):
            return None
        if end != len(text):
            return None
        if (not isinstance(claims, dict) or not isinstance(claims.get("jti"), str)
                or not isinstance(claims.get("sub"), str) or claims.get("mender.device") is not True
                or not isinstance(claims.get("exp"), (int, float)) or isinstance(claims.get("exp"), bool)
                or not isinstance(claims.get("mender.tenant", ""), str)):
            return None
        return claims

    def check(self, token: str) -> dict:
        """Verify signature, issuer, required claims and expiry against the service clock.

        Raises Unauthorized for anything invalid, Forbidden("token expired") when only the
        expiry is wrong; returns the claims."""
        if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
            raise Unauthorized("invalid token")
        try:
            # expiry is checked below against the injectable clock, not time.time()
            claims = self.keys.decode(token, issuer=self.issuer,
                                      options={"require": list(REQUIRED_CLAIMS), "verify_exp": False,
                                               "verify_iat": False, "verify_nbf": False})
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        if claims.get("mender.device") is not True:
            raise Unauthorized("not a device token")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str):
            raise Unauthorized("invalid token")
        tenant = claims.get("mender.tenant", "")
        if not isinstance(tenant, str):
            raise Unauthorized("invalid token")
        now = self._clock.now()
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now):
            raise Unauthorized("token not yet valid")
        exp = claims["exp"]
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise Unauthorized("invalid token")
        if exp <= now:
            raise Forbidden("token expired")
        return claims
