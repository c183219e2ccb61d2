"""Settings (tenant-wide and per user, with ETag/If-Match) and personal access tokens."""

from __future__ import annotations

from flask import Response, jsonify, request
from flask.views import MethodView

from common.api import Blueprint, request_json
from common.app import services
from common.auth import current_identity
from useradm.api import render
from useradm.schemas import PersonalAccessTokenRequestSchema, PersonalAccessTokenSchema

blp = Blueprint("useradm_settings", __name__, url_prefix="/api/management/v1/useradm",
                description="Settings and personal access tokens.")


def _if_match() -> str | None:
    """The If-Match header without quotes or the weak prefix; None when absent."""
    value = request.headers.get("If-Match")
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _settings_response(user_id: str) -> Response:
    data, etag = services().useradm.get_settings(current_identity().tenant, user_id)
    response = jsonify(data)
    if etag:
        response.set_etag(etag)
    return response


def _save(user_id: str) -> Response:
    body = request_json()
    etag = services().useradm.put_settings(current_identity().tenant, body, user_id=user_id, if_match=_if_match())
    response = Response(status=201)
    response.set_etag(etag)
    return response


@blp.route("/settings")
class Settings(MethodView):
    @blp.response(200, description="The tenant's settings ({} when never set); ETag.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def get(self):
        return _settings_response("")

    @blp.response(201, description="Saved; ETag is the new version.")
    @blp.alt_response(400, description="Not a JSON object, or larger than 64 KiB.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(412, description="If-Match is not the current ETag.")
    def post(self):
        return _save("")


@blp.route("/settings/me")
class MySettings(MethodView):
    @blp.response(200, description="The caller's own settings ({} when never set); ETag.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def get(self):
        return _settings_response(current_identity().subject)

    @blp.response(201, description="Saved; ETag is the new version.")
    @blp.alt_response(400, description="Not a JSON object, or larger than 64 KiB.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(412, description="If-Match is not the current ETag.")
    def post(self):
        return _save(current_identity().subject)


@blp.route("/settings/tokens")
class PersonalAccessTokens(MethodView):
    @blp.response(200, PersonalAccessTokenSchema(many=True), description="The caller's tokens.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def get(self):
        return jsonify([render.personal_token(t) for t in services().useradm.list_personal_tokens(current_identity())])

    @blp.arguments(PersonalAccessTokenRequestSchema)
    @blp.response(200, description="The new token (raw JWT, application/jwt); shown only once.")
    @blp.alt_response(400, description="Invalid body, expiry beyond the maximum, or a role its user does not hold.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(409, description="The caller has a token with that name.")
    @blp.alt_response(422, description="The caller has the maximum number of tokens.")
    def post(self, body):
        token = services().useradm.create_personal_token(current_identity(), body["name"], body["expires_in"],
                                                         roles=body.get("roles"))
        return Response(token, status=200, content_type="application/jwt")


@blp.route("/settings/tokens/<string:id>")
class PersonalAccessTokenById(MethodView):
    @blp.response(204, description="Revoked (idempotent).")
    @blp.alt_response(401, description="Missing or invalid token.")
    def delete(self, id):
        services().useradm.delete_personal_token(current_identity(), id)
        return Response(status=204)
