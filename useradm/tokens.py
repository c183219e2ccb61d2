"""User token (JWT) issuing and verification; the signing keys are loaded once per process."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import jwt

from common.errors import Unauthorized
from common.keys import TokenKeys

SCOPE_ALL = "mender.*"


class TokenExpired(Unauthorized):
    """The token is well-formed and signed but past its `exp` (the internal verify answers 403)."""

    default_message = "token expired"


class UserTokens:
    """Signs and verifies user JWTs with the configured (or generated) key."""

    def __init__(self, config, clock):
        self._config = config
        self._clock = clock
        self._keys: TokenKeys | None = None
        self._lock = threading.Lock()

    @property
    def keys(self) -> TokenKeys:
        if self._keys is None:
            with self._lock:
                if self._keys is None:
                    cfg = self._config
                    self._keys = TokenKeys.from_config(cfg["USERADM_SERVER_PRIV_KEY_PATH"],
                                                       cfg["USERADM_SERVER_FALLBACK_PRIV_KEY_PATH"],
                                                       cfg.data_dir, "useradm.pem", with_kid=True)
        return self._keys

    def issue(self, *, token_id: str, user_id: str, tenant: str, now: float, exp: float | None) -> str:
        claims: dict[str, Any] = {
            "jti": token_id, "sub": user_id, "iat": int(now), "nbf": int(now),
            "iss": self._config["USERADM_JWT_ISSUER"], "scp": SCOPE_ALL, "mender.user": True,
        }
        if exp is not None:
            claims["exp"] = int(exp)
        if tenant:
            claims["mender.tenant"] = tenant
        return self.keys.sign(claims)

    def verify(self, token: str) -> dict:
        """The claims of a valid user token. Raises TokenExpired past `exp`, Unauthorized otherwise."""
        if not isinstance(token, str) or len(token) > 8192:
            raise Unauthorized("invalid token")
        try:
            claims = self.keys.decode(
                token, issuer=self._config["USERADM_JWT_ISSUER"],
                # time claims are checked below against the injectable clock
                options={"require": ["jti", "sub", "iat", "iss"], "verify_exp": False,
                         "verify_nbf": False, "verify_iat": False})
        except jwt.InvalidTokenError:
            raise Unauthorized("invalid token") from None
        except (ValueError, TypeError):  # defensive: malformed segments some decoders let through
            raise Unauthorized("invalid token") from None
        if claims.get("mender.device") or claims.get("mender.user") is not True:
            raise Unauthorized("not a user token")
        for name in ("jti", "sub"):
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise Unauthorized("invalid token")
        tenant = claims.get("mender.tenant", "")
        if not isinstance(tenant, str):
            raise Unauthorized("invalid token")
        now = self._clock.now()
        exp = claims.get("exp")
        nbf = claims.get("nbf")
        if exp is not None and (not isinstance(exp, (int, float)) or isinstance(exp, bool)):
            raise Unauthorized("invalid token")
        if nbf is not None and (not isinstance(nbf, (int, float)) or isinstance(nbf, bool) or nbf > now + 60):
            raise Unauthorized("invalid token")
        if exp is not None and exp <= now:
            raise TokenExpired()
        return claims


def new_token_id() -> str:
    return str(uuid.uuid4())
