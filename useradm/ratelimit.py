"""Login rate limiting with Flask-Limiter: per email and per client address, counted in the
server's own database by default, so that every gunicorn worker (and every host on one
MongoDB) shares the counters."""

from __future__ import annotations

import binascii
import hashlib
import ipaddress
import sqlite3

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.storage import Storage
from pymongo.errors import PyMongoError

from common.errors import ConfigError
from common.logging import get_logger

LOGIN_ENDPOINT = "useradm_login.Login"
DB_STORAGE_URI = "useradm-db://"
log = get_logger("useradm")


class UseradmDbStorage(Storage):
    """A `limits` storage (fixed windows) on the useradm store: SQLite or MongoDB."""

    STORAGE_SCHEME = ["useradm-db"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, store=None, clock=None,
                 **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        if store is None or clock is None:
            raise ConfigError("useradm-db:// rate limit storage needs the useradm store")
        self._store = store
        self._clock = clock

    @property
    def base_exceptions(self):
        return (sqlite3.Error, PyMongoError)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return self._store.rate_hit(key, amount, float(expiry), self._clock.now())

    def get(self, key: str) -> int:
        live = self._store.rate_get(key, self._clock.now())
        return live[0] if live else 0

    def get_expiry(self, key: str) -> float:
        now = self._clock.now()
        live = self._store.rate_get(key, now)
        return live[1] if live else now

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        return self._store.rate_reset()

    def clear(self, key: str) -> None:
        self._store.rate_clear(key)


def login_email_key() -> str:
    """The rate-limit key of the email in the Basic header: a hash (no addresses stored in
    clear), or "" when the header carries no readable email."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or len(value) > 4096:
        return ""
    try:
        email = binascii.a2b_base64(value.strip().encode("ascii"), strict_mode=True).decode("utf-8").partition(":")[0]
    except (binascii.Error, ValueError, UnicodeError):
        return ""
    return hashlib.sha256(email.lower().encode()).hexdigest() if email else ""


def login_address_key() -> str:
    """The client address (the proxy-corrected one when MENDER_TRUSTED_PROXIES is set).

    A request from this host (a loopback peer) that carries X-Forwarded-For came through a
    reverse proxy on this host: with MENDER_TRUSTED_PROXIES left at 0 every client would share
    the proxy's address, and one attacker's failed logins would lock every user out. Its last
    X-Forwarded-For hop (the address that proxy saw; what a client sends is to the left of it)
    is the key then, as a trusted proxy's would be. Only a process on this host can connect
    from a loopback address, so a client elsewhere cannot choose its key this way."""
    address = get_remote_address() or "unknown"
    if current_app.config.get("MENDER_TRUSTED_PROXIES", 0) == 0 and _is_loopback(address):
        forwarded = request.headers.get("X-Forwarded-For", "")
        hop = forwarded.rpartition(",")[2].strip()
        if hop and len(hop) <= _MAX_ADDRESS and _is_address(hop):
            _warn_untrusted_proxy()
            return hop
    return address


_MAX_ADDRESS = 64
_warned = False


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_loopback(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def _warn_untrusted_proxy() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning("login rate limiting: requests come through a reverse proxy on this host but "
                    "MENDER_TRUSTED_PROXIES is 0; set it to the number of proxies (docs/useradm.md)")


def _hooks(app) -> dict:
    return {"before": list(app.before_request_funcs.get(None, [])),
            "after": list(app.after_request_funcs.get(None, [])),
            "teardown": list(app.teardown_request_funcs.get(None, []))}


def _confine_to_login(app, before: dict) -> None:
    """Flask-Limiter hooks every request of the app (~0.2 ms each); only login is limited here,
    so its hooks are moved to the login blueprint (Flask runs them for that blueprint's requests
    only) and wrapped to do nothing on its other endpoints."""
    blueprint = LOGIN_ENDPOINT.partition(".")[0]

    def guard(fn, passthrough):
        def hook(*args):
            if request.endpoint == LOGIN_ENDPOINT:
                return fn(*args)
            return args[0] if passthrough and args else None
        return hook

    for kind, registry, passthrough in (("before", app.before_request_funcs, False),
                                        ("after", app.after_request_funcs, True),
                                        ("teardown", app.teardown_request_funcs, False)):
        funcs = registry.get(None, [])
        registry[None] = [f for f in funcs if f in before[kind]]
        added = [guard(f, passthrough) for f in funcs if f not in before[kind]]
        if added:
            registry.setdefault(blueprint, []).extend(added)


def install_login_limits(app, ctx, store) -> Limiter | None:
    """Rate-limit failed logins on `app` as USERADM_RATE_LIMIT_LOGIN says; None when it is empty."""
    rate = ctx.config["USERADM_RATE_LIMIT_LOGIN"].strip()
    if not rate:
        return None
    try:
        parse_many(rate)
    except ValueError as exc:
        raise ConfigError(f"USERADM_RATE_LIMIT_LOGIN: {exc}") from None
    storage_uri = ctx.config["USERADM_RATE_LIMIT_STORAGE_URL"] or DB_STORAGE_URI
    options = {"store": store, "clock": ctx.clock} if storage_uri == DB_STORAGE_URI else {}
    hooks_before = _hooks(app)
    limiter = Limiter(key_func=login_address_key, app=app, storage_uri=storage_uri, storage_options=options,
                      strategy="fixed-window", headers_enabled=True, key_prefix="useradm-login")
    _confine_to_login(app, hooks_before)

    # Only failed attempts count, so people who type their password right are never slowed
    # down; once the limit is reached every attempt (right or wrong) gets 429 until the window ends.
    def failed(response) -> bool:
        return response.status_code == 401

    view = app.view_functions[LOGIN_ENDPOINT]
    view = limiter.limit(rate, key_func=login_email_key, scope="email", deduct_when=failed,
                         exempt_when=lambda: login_email_key() == "")(view)
    view = limiter.limit(rate, key_func=login_address_key, scope="address", deduct_when=failed)(view)
    app.view_functions[LOGIN_ENDPOINT] = view
    return limiter
