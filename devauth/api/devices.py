"""Device API: the signed authentication request."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from webargs import core

from common.api import Blueprint
from common.app import services
from common.errors import UnsupportedMediaType

blp = Blueprint("devauth_devices", __name__, url_prefix="/api/devices/v1/authentication",
                description="Device authentication: devices ask for a token.")


@blp.route("/auth_requests")
class AuthRequests(MethodView):
    @blp.doc(summary="Submit an authentication request",
             parameters=[{"name": "X-MEN-Signature", "in": "header", "required": True,
                          "schema": {"type": "string"},
                          "description": "Base64 signature of the raw body with the device key."}],
             requestBody={"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["id_data", "pubkey"],
                 "properties": {"id_data": {"type": "string"}, "pubkey": {"type": "string"},
                                "tenant_token": {"type": "string"}}}}}},
             responses={"200": {"description": "A new device JWT (raw, application/jwt).",
                                "content": {"application/jwt": {"schema": {"type": "string"}}}},
                        "400": {"description": "Malformed request."},
                        "401": {"description": "Bad signature, or the device is not accepted."},
                        "413": {"description": "Body too large."},
                        "415": {"description": "Body is not JSON."}})
    def post(self):
        if not core.is_json(request.mimetype):
            raise UnsupportedMediaType("Content-Type must be application/json")
        raw = request.get_data(cache=True)
        token = services().devauth.submit_auth_request(raw, request.headers.get("X-MEN-Signature"))
        return Response(token, status=200, mimetype="application/jwt")
