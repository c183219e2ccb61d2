"""Users: /api/management/v1/useradm/users… and PUT /api/management/v2/useradm/users/me."""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import current_identity
from common.pagination import Page, paging_headers
from useradm.api import render
from useradm.schemas import (OwnUserUpdateV2Schema, UserNewSchema, UserSchema, UsersQueryArgsSchema,
                             UserUpdateSchema)

blp = Blueprint("useradm_users", __name__, url_prefix="/api/management/v1/useradm",
                description="Users of the caller's tenant.")
blp_v2 = Blueprint("useradm_users_v2", __name__, url_prefix="/api/management/v2/useradm",
                   description="Users of the caller's tenant (v2).")

USERS_PATH = "/api/management/v1/useradm/users"


def list_users_response(tenant: str, args: dict) -> Response:
    """The users of `tenant` matching the query arguments, with paging headers."""
    page = Page(args["page"], args["per_page"])
    users, total = services().useradm.list_users(
        tenant, ids=args.get("id") or (), emails=args.get("email") or (),
        created_after=args.get("created_after"), created_before=args.get("created_before"),
        updated_after=args.get("updated_after"), updated_before=args.get("updated_before"),
        skip=page.skip, limit=page.limit)
    response = jsonify([render.user(u) for u in users])
    response.headers.update(paging_headers(page, len(users), total))
    return response


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(UsersQueryArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True), description="The tenant's users, oldest first "
                  "(Link and X-Total-Count headers; `per_page` defaults to 500).")
    @blp.alt_response(400, description="Invalid query argument.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def get(self, args):
        return list_users_response(current_identity().tenant, args)

    @blp.arguments(UserNewSchema)
    @blp.response(201, description="Created; Location names the new user.")
    @blp.alt_response(400, description="Invalid body or email.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(403, description="The caller's roles do not allow it (only an administrator makes administrators).")
    @blp.alt_response(422, description="Email taken, or password too short or too long.")
    def post(self, body):
        caller = current_identity()
        user = services().useradm.create_user(body["email"], body["password"], tenant=caller.tenant,
                                              roles=body.get("roles"), caller=caller)
        return Response(status=201, headers={"Location": f"{USERS_PATH}/{user.id}"})


def _update(user_id: str, body: dict) -> Response:
    services().useradm.update_user(current_identity(), user_id, email=body.get("email"),
                                   password=body.get("password"), current_password=body.get("current_password"),
                                   roles=body.get("roles"))
    return Response(status=204)


@blp.route("/users/me")
class Me(MethodView):
    @blp.response(200, UserSchema, description="The caller.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(404, description="The caller no longer exists.")
    def get(self):
        caller = current_identity()
        return jsonify(render.user(services().useradm.get_user(caller.tenant, caller.subject)))

    @blp.arguments(UserUpdateSchema)
    @blp.response(204, description="Updated. A password change revokes the caller's other tokens.")
    @blp.alt_response(400, description="Invalid body or email.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(404, description="The caller no longer exists.")
    @blp.alt_response(422, description="Email taken, password rules, current password missing or wrong.")
    def put(self, body):
        return _update(current_identity().subject, body)


@blp.route("/users/<string:id>")
class UserById(MethodView):
    @blp.response(200, UserSchema, description="The user.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(404, description="No such user in the caller's tenant.")
    def get(self, id):
        return jsonify(render.user(services().useradm.get_user(current_identity().tenant, id)))

    @blp.arguments(UserUpdateSchema)
    @blp.response(204, description="Updated.")
    @blp.alt_response(400, description="Invalid body or email.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(404, description="No such user in the caller's tenant.")
    @blp.alt_response(403, description="Only an administrator grants or takes RBAC_ROLE_PERMIT_ALL.")
    @blp.alt_response(409, description="It would leave the organization without a user holding RBAC_ROLE_PERMIT_ALL.")
    @blp.alt_response(422, description="Email taken, password rules, or another user's password.")
    def put(self, body, id):
        return _update(id, body)

    @blp.response(204, description="Deleted (idempotent); the user's tokens are revoked.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(403, description="The caller's roles do not allow it (only an administrator removes one).")
    @blp.alt_response(409, description="The organization's last user holding RBAC_ROLE_PERMIT_ALL.")
    def delete(self, id):
        caller = current_identity()
        services().useradm.delete_user(caller.tenant, id, caller=caller)
        return Response(status=204)


@blp_v2.route("/users/me")
class MeV2(MethodView):
    @blp_v2.arguments(OwnUserUpdateV2Schema)
    @blp_v2.response(204, description="Password updated; the caller's other tokens are revoked.")
    @blp_v2.alt_response(400, description="Invalid body.")
    @blp_v2.alt_response(401, description="Missing or invalid token.")
    @blp_v2.alt_response(404, description="The caller no longer exists.")
    @blp_v2.alt_response(422, description="Password rules, current password missing or wrong.")
    def put(self, body):
        return _update(current_identity().subject, body)
