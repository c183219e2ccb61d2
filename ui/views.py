"""The UI's routes: the HTML shell at `/`, its static files, and the cookie session (log in / out).

The pages are plain ES modules that call the management API with the session cookie; nothing here
renders data, so every response can carry a strict Content-Security-Policy.
"""

from __future__ import annotations

import os
import secrets

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory

from common.api import request_json
from common.app import ctx, services
from common.auth import CSRF_COOKIE, SESSION_COOKIE, check_csrf
from common.errors import BadRequest, Unauthorized
from ui.assets import IMMUTABLE, Assets
from useradm.ratelimit import login_address_key

STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
ASSETS = Assets(STATIC_DIR)

CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                           "form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_CREDENTIAL_LENGTH = 1024

blp = Blueprint("ui", __name__, static_folder=None)


@blp.after_request
def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/ui/session"):
        response.headers["Cache-Control"] = "no-store"
    return response


def _page(name: str, policy: str) -> Response:
    """An HTML page with its static URLs content-addressed (ui/assets.py), revalidated on every
    load; its policy allows its import map (the one inline script) by hash."""
    page = ASSETS.page(name)
    response = Response(page.html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = policy.replace("script-src 'self'",
                                                                 f"script-src 'self' {page.script_hash}", 1)
    response.set_etag(page.etag)
    return response.make_conditional(request)


@blp.route("/")
def index():
    return _page("index.html", CONTENT_SECURITY_POLICY)


# The remote terminal is a page of its own, framed by the device page: xterm.js writes <style>
# elements (its renderer's sizes and colours), which the app's policy forbids. This page alone
# allows inline styles (never scripts), may be framed by this origin only, and holds nothing but
# the terminal, whose output xterm.js draws as text.
TERMINAL_CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                                    "frame-ancestors 'self'; form-action 'none'")


@blp.route("/ui/terminal")
def terminal():
    response = _page("terminal.html", TERMINAL_CONTENT_SECURITY_POLICY)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@blp.route("/ui/static/<path:filename>")
def static(filename: str):
    """A static file; under its current content hash (`?v=`, as the pages name them) it is kept
    by the browser for a year, otherwise revalidated on every use."""
    if ASSETS.is_current(filename, request.args.get("v")):
        response = send_from_directory(STATIC_DIR, filename, max_age=31536000)
        response.headers["Cache-Control"] = IMMUTABLE
        return response
    return send_from_directory(STATIC_DIR, filename, max_age=0)


def _credentials() -> tuple[str, str]:
    body = request_json()
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    unknown = sorted(set(body) - {"email", "password"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field")
    email, password = body.get("email"), body.get("password")
    for name, value in (("email", email), ("password", password)):
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{name}: must be a non-empty string")
        if len(value) > MAX_CREDENTIAL_LENGTH:
            raise BadRequest(f"{name}: longer than {MAX_CREDENTIAL_LENGTH} characters")
    return email, password


def _set_session_cookies(response: Response, token: str, csrf: str) -> None:
    secure = request.is_secure
    max_age = int(ctx().config["USERADM_JWT_EXP_TIMEOUT"])
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", secure=secure,
                        httponly=True, samesite="Strict")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure,
                        httponly=False, samesite="Strict")


def _clear_session_cookies(response: Response) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=request.is_secure, samesite="Strict",
                               httponly=name == SESSION_COOKIE)


@blp.route("/ui/session", methods=["POST"])
def login():
    """Log in with `{"email", "password"}` (JSON only, so a cross-site form cannot post it):
    sets the HttpOnly session cookie and the csrf cookie. 401 on bad credentials."""
    email, password = _credentials()
    limits = current_app.extensions.get("ui_login_limits")
    address = login_address_key()
    if limits:
        limits.check(email, address)
    try:
        token = services().useradm.login(email, password)
    except Unauthorized:
        if limits:
            limits.failed(email, address)
        raise
    csrf = secrets.token_urlsafe(32)
    response = jsonify({"csrf": csrf})
    _set_session_cookies(response, token, csrf)
    return response


@blp.route("/ui/session", methods=["DELETE"])
def logout():
    """Revoke the session's token (when it is still valid) and clear both cookies."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        check_csrf()
        authenticator = ctx().authenticators.get("management")
        try:
            identity = authenticator(token) if authenticator else None
        except Unauthorized:
            identity = None  # expired or already revoked: clearing the cookies is all that is left
        if identity is not None:
            services().useradm.logout(identity)
    response = Response(status=204)
    _clear_session_cookies(response)
    return response

