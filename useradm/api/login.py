"""Login and logout: POST /api/management/v1/useradm/auth/login and …/logout."""

from __future__ import annotations

import binascii

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError
from webargs.core import is_json

from common.api import Blueprint, format_validation_messages
from common.jsonbody import parse_json_bytes
from common.app import services
from common.auth import current_identity
from common.errors import BadRequest, Unauthorized, UnsupportedMediaType
from useradm.schemas import LoginOptionsSchema

blp = Blueprint("useradm_login", __name__, url_prefix="/api/management/v1/useradm",
                description="Log in (HTTP Basic) and out.")

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="Mender"'}
MAX_AUTHORIZATION_HEADER = 4096


def basic_credentials() -> tuple[str, str]:
    """(email, password) from `Authorization: Basic …`; Unauthorized when missing or malformed
    (bad base64, not UTF-8, no colon, oversized)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        raise Unauthorized("missing or malformed Basic Authorization header", headers=_BASIC_CHALLENGE)
    if len(value) > MAX_AUTHORIZATION_HEADER:
        raise Unauthorized("invalid credentials", headers=_BASIC_CHALLENGE)
    try:
        raw = binascii.a2b_base64(value.strip().encode("ascii"), strict_mode=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeError):
        raise Unauthorized("malformed Basic credentials", headers=_BASIC_CHALLENGE) from None
    email, colon, password = text.partition(":")
    if not colon or not email:
        raise Unauthorized("malformed Basic credentials", headers=_BASIC_CHALLENGE)
    return email, password


def login_options() -> dict:
    """The optional JSON body (`no_expiry`); BadRequest when present and invalid."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {"no_expiry": False}
    if not is_json(request.mimetype):
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = parse_json_bytes(raw)
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    try:
        options = LoginOptionsSchema().load(body)
    except ValidationError as exc:
        raise BadRequest(format_validation_messages(exc.messages)) from None
    return {"no_expiry": bool(options["no_expiry"] or options["no_expiry_gui"])}


@blp.route("/auth/login")
class Login(MethodView):
    @blp.doc(security=[{"Login": []}])
    @blp.response(200, description="The JWT, as the raw body (application/jwt).")
    @blp.alt_response(400, description="Malformed login options.")
    @blp.alt_response(401, description="Missing or invalid credentials.")
    @blp.alt_response(429, description="Too many login attempts; see Retry-After.")
    def post(self):
        email, password = basic_credentials()
        options = login_options()
        token = services().useradm.login(email, password, no_expiry=options["no_expiry"])
        return Response(token, status=200, content_type="application/jwt")


@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.response(202, description="The token is revoked.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def post(self):
        services().useradm.logout(current_identity())
        return Response(status=202)
