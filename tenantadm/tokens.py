"""Tenant tokens: JWTs signed by tenantadm that name an organization, as Mender's (claims
`mender.tenant`, `sub` = the organization id, `jti`, `iat`; no expiry: devices keep them in
their configuration for years). The key is loaded once per process."""

from __future__ import annotations

import uuid
from functools import cached_property
from typing import Any

import jwt

from common.errors import BadRequest, Unauthorized
from common.keys import TokenKeys
from common.tenancy import tenant_from_api, tenant_to_api

ISSUER = "mender.tenantadm"
CLAIM = "mender.tenant"
MAX_TOKEN_LENGTH = 4096


class TenantTokens:
    """Signs and verifies tenant tokens with the configured (or generated) key."""

    def __init__(self, config, clock):
        self._config = config
        self._clock = clock

    @cached_property
    def keys(self) -> TokenKeys:
        """Loaded on first use (two threads may both load it: the key file is written once)."""
        cfg = self._config
        return TokenKeys.from_config(cfg["TENANTADM_SERVER_PRIV_KEY_PATH"], cfg["TENANTADM_SERVER_FALLBACK_PRIV_KEY_PATH"],
                                     cfg.data_dir, "tenantadm.pem")

    def issue(self, tenant: str) -> tuple[str, str]:
        """A new token for the organization; returns (token, its jti)."""
        public_id = tenant_to_api(tenant)
        token_id = str(uuid.uuid4())
        claims: dict[str, Any] = {"jti": token_id, "sub": public_id, "iss": ISSUER, "iat": int(self._clock.now()),
                                  CLAIM: public_id}
        return self.keys.sign(claims), token_id

    def verify(self, token: str) -> tuple[str, str]:
        """(stored tenant id, jti) of a token signed by this server; Unauthorized otherwise."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise Unauthorized("tenant token verification failed")
        try:
            claims = self.keys.decode(token, issuer=ISSUER, options={
                "require": ["jti", "sub", "iss", CLAIM], "verify_exp": False, "verify_iat": False,
                "verify_nbf": False})
        except jwt.InvalidTokenError:
            raise Unauthorized("tenant token verification failed") from None
        except (ValueError, TypeError):  # defensive: malformed segments some decoders let through
            raise Unauthorized("tenant token verification failed") from None
        public_id, token_id = claims.get(CLAIM), claims.get("jti")
        if not isinstance(public_id, str) or not isinstance(token_id, str) or claims.get("sub") != public_id:
            raise Unauthorized("tenant token verification failed")
        try:
            return tenant_from_api(public_id), token_id
        except BadRequest:
            raise Unauthorized("tenant token verification failed") from None
