"""Login rate limiting for POST /ui/session, counted in the same buckets as useradm's login API.

useradm (useradm/ratelimit.py) limits failed logins per client address and per email with
Flask-Limiter, and confines the limiter's request hooks to its own endpoint. The UI's login uses
the limiter's strategy directly, with the keys Flask-Limiter builds for useradm's limits
(`<prefix>/<key>/<endpoint>:<scope>`), so failures on either endpoint count towards one budget.
"""

from __future__ import annotations

import hashlib
import math

from limits import parse_many

from common.errors import TooManyRequests

USERADM_LIMITER_PREFIX = "useradm-login"
USERADM_LOGIN_ENDPOINT = "useradm_login.Login"


class LoginLimits:
    """The USERADM_RATE_LIMIT_LOGIN budget: `check()` before a login, `failed()` after a 401."""

    def __init__(self, limiter, rate: str, clock):
        self._limiter = limiter
        self._items = parse_many(rate)
        self._clock = clock

    @classmethod
    def install(cls, app, ctx) -> "LoginLimits | None":
        """The limits of this app, or None when login rate limiting is off."""
        rate = ctx.config["USERADM_RATE_LIMIT_LOGIN"].strip()
        limiter = next((lim for lim in app.extensions.get("limiter", ())
                        if getattr(lim, "_key_prefix", None) == USERADM_LIMITER_PREFIX), None)
        if not rate or limiter is None:
            return None
        return cls(limiter, rate, ctx.clock)

    @staticmethod
    def _buckets(email: str, address: str) -> list[tuple[str, str, str]]:
        buckets = [(USERADM_LIMITER_PREFIX, address, f"{USERADM_LOGIN_ENDPOINT}:address")]
        if email:
            digest = hashlib.sha256(email.lower().encode()).hexdigest()
            buckets.append((USERADM_LIMITER_PREFIX, digest, f"{USERADM_LOGIN_ENDPOINT}:email"))
        return buckets

    def check(self, email: str, address: str) -> None:
        """TooManyRequests (with Retry-After) once a bucket of this email or address is full."""
        strategy = self._limiter.limiter
        for item in self._items:
            for bucket in self._buckets(email, address):
                if not strategy.test(item, *bucket):
                    reset = strategy.get_window_stats(item, *bucket).reset_time
                    retry = max(1, math.ceil(reset - self._clock.now()))
                    raise TooManyRequests("too many login attempts", headers={"Retry-After": str(retry)})

    def failed(self, email: str, address: str) -> None:
        """Count a failed attempt."""
        strategy = self._limiter.limiter
        for item in self._items:
            for bucket in self._buckets(email, address):
                strategy.hit(item, *bucket)
