"""The one authentication layer: every /api/management/ route needs a user token, every
/api/devices/ route a device token, except the few public paths listed here; and every
management route is decided by the permission table (`common.permissions`) before its view runs.

Verification itself belongs to useradm and devauth, which register an authenticator
(`token -> Identity`, raising Unauthorized/Forbidden) with the app context; the caller's roles
come from useradm too (`common.authz.Authorizer.grants_of`).
"""

from __future__ import annotations

import hmac
from flask import g, request

from common.errors import Forbidden, Unauthorized
from common.identity import Identity
from common.permissions import ALLOW_ALL, Access, route_key

MANAGEMENT = "management"
DEVICES = "devices"

# Paths reachable without a token. Signed download links authorize themselves.
PUBLIC_PATHS = {
    "/api/devices/v1/authentication/auth_requests",
    "/api/management/v1/useradm/auth/login",
    # organization signup (TENANTADM_SIGNUP); the view verifies a token when one is sent
    "/api/management/v1/tenantadm/tenants",
    "/api/management/v2/tenantadm/tenants",
}
PUBLIC_PREFIXES = (
    "/api/devices/v1/deployments/download/",
)

# The web UI's session: an HttpOnly cookie with the user token, and a readable cookie whose value
# the UI's script repeats in a header on every state-changing request (double-submit CSRF check).
SESSION_COOKIE = "JWT"
CSRF_COOKIE = "csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token(req=None) -> str | None:
    """The token in `Authorization: Bearer …` (or the UI's `JWT` cookie), or None."""
    req = req or request
    header = req.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return req.cookies.get(SESSION_COOKIE) or None


def _from_header(req) -> bool:
    scheme, _, value = req.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(value.strip())


def check_csrf(req=None) -> None:
    """Double-submit check for a state-changing request authenticated by the session cookie:
    the `X-CSRF-Token` header must equal the `csrf` cookie. Raises Forbidden."""
    req = req or request
    if req.method in SAFE_METHODS:
        return
    cookie = req.cookies.get(CSRF_COOKIE, "")
    header = req.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise Forbidden("missing or invalid CSRF token")


def realm_of(path: str) -> str | None:
    """Which authentication a path needs: MANAGEMENT, DEVICES or None (public / internal)."""
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    if path.startswith("/api/management/"):
        return MANAGEMENT
    if path.startswith("/api/devices/"):
        return DEVICES
    return None


def authenticate_request(authenticators: dict, authorizer=None) -> None:
    """before_request hook: set `g.identity` or raise Unauthorized; for a management route, set
    `g.access` (the permission table's decision) or raise Forbidden."""
    state = g._get_current_object()
    state.identity = None
    state.access = None
    req = request._get_current_object()
    if req.url_rule is None:  # 404/405: let routing answer
        return
    realm = realm_of(req.path)
    if realm is None:
        return
    state.identity = identity = authenticate_token(authenticators, realm, req)
    if realm == MANAGEMENT and authorizer is not None:
        state.access = authorize_request(authorizer, identity, req)


def authenticate_token(authenticators: dict, realm: str, req) -> Identity:
    """The caller of a request to a route of `realm` (any werkzeug request: Flask's, or the
    direct routes' of common.direct): its bearer token (or the UI's session cookie, which must
    then pass the CSRF check) verified by the realm's authenticator. Raises Unauthorized."""
    token = bearer_token(req)
    if not token:
        raise Unauthorized("missing or malformed Authorization header",
                           headers={"WWW-Authenticate": 'Bearer realm="ManagementJWT"' if realm == MANAGEMENT
                                    else 'Bearer realm="DeviceJWT"'})
    if not _from_header(req):  # the browser sent the cookie by itself: a cross-site request could
        check_csrf(req)         # have made it, so it must prove it read the csrf cookie
    authenticator = authenticators.get(realm)
    if authenticator is None:
        raise Unauthorized("unauthorized")
    return authenticator(token)


# methods decided as another: HEAD is a GET; OPTIONS (Flask's automatic answer, naming the
# allowed methods) is open to any user
_AS_METHOD = {"HEAD": "GET"}


def authorize_request(authorizer, identity: Identity, req) -> Access:
    """The permission table's decision for this request (Forbidden when it says no)."""
    if req.method == "OPTIONS":
        return ALLOW_ALL
    method = _AS_METHOD.get(req.method, req.method)
    return authorizer.authorize(identity, method, _key(method, req.url_rule.rule), req.view_args or {})


_KEYS: dict[tuple[str, str], str] = {}


def _key(method: str, rule: str) -> str:
    key = _KEYS.get((method, rule))
    if key is None:
        key = _KEYS[(method, rule)] = route_key(method, rule)
    return key


def current_access() -> Access:
    """The permission table's decision for this management request: `device_groups` and
    `release_tags` are what the caller may see (None: everything)."""
    access = getattr(g, "access", None)
    if access is None:
        raise Unauthorized("unauthorized")
    return access


def visible_device_groups() -> frozenset[str] | None:
    """The device groups this management request may see (None: every device; also for requests
    the permission table does not decide, the internal API)."""
    access = getattr(g, "access", None)
    return access.device_groups if access is not None else None


def visible_release_tags() -> frozenset[str] | None:
    """The release tags this management request may see (None: every release)."""
    access = getattr(g, "access", None)
    return access.release_tags if access is not None else None


def current_identity() -> Identity:
    """The authenticated caller of this request; Unauthorized when there is none."""
    identity = getattr(g, "identity", None)
    if identity is None:
        raise Unauthorized("unauthorized")
    return identity
