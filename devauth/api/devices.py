"""Device API: the signed authentication request."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint, handler_view, read_body, require_json_type
from common.direct import Raw

blp = Blueprint("devauth_devices", __name__, url_prefix="/api/devices/v1/authentication",
                description="Device authentication: devices ask for a token.")
AUTH_REQUESTS = "/auth_requests"


def auth_request(context, req, identity):
    """POST: the signed request (a public path: `identity` is None). The signature is checked
    over the body's bytes exactly as received; the answer is the raw token."""
    require_json_type(req)
    raw = read_body(req)  # a chunked body is cut at the limit: reaching it is a 413, not a parse error
    token = context.services.devauth.submit_auth_request(raw, req.headers.get("X-MEN-Signature"))
    return 200, Raw(token.encode(), "application/jwt")


# the wave's re-authentications, without Flask's per-request work (common.direct); the Flask view
# below (documentation, and MENDER_DIRECT_ROUTES=false) calls the same handler
DIRECT_ROUTES = (("POST", blp.url_prefix + AUTH_REQUESTS, auth_request),)


@blp.route(AUTH_REQUESTS)
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
        return handler_view(auth_request, public=True)
