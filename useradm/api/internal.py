"""Internal API: token verification for gateways, tenant users, bulk token revocation."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from common.api import Blueprint
from common.app import ctx, services
from common.auth import bearer_token
from common.health import add_health_routes
from common.errors import BadRequest, Forbidden, Unauthorized
from useradm.api.users import list_users_response
from useradm.schemas import (RevokeTokensQueryArgsSchema, TenantNewSchema, UserNewInternalSchema,
                             UsersQueryArgsSchema)
from useradm.tokens import TokenExpired

blp = Blueprint("useradm_internal", __name__, url_prefix="/api/internal/v1/useradm",
                description="Users, login and tokens: internal API.")

# module-level blueprints are shared by every app built in a process: the checks are looked up
# in the current app's context at request time
add_health_routes(blp, lambda: ctx().checks_for("useradm"),
                  lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])

VERIFY_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def forwarded_request() -> tuple[str, str]:
    """(method, uri) of the request the gateway asks about: X-Forwarded-Method/-Uri (Traefik), or
    X-Original-Method/-URI (nginx). BadRequest when missing or malformed."""
    method = request.headers.get("X-Forwarded-Method") or request.headers.get("X-Original-Method")
    uri = request.headers.get("X-Forwarded-Uri") or request.headers.get("X-Original-URI")
    if not method or method.upper() not in VERIFY_METHODS:
        raise BadRequest("X-Forwarded-Method: missing or not an HTTP method")
    if not uri or not uri.startswith("/") or len(uri) > 8192:
        raise BadRequest("X-Forwarded-Uri: missing or not an absolute path")
    path = uri.split("?", 1)[0]
    if len([part for part in path.split("/") if part]) < 4:
        raise BadRequest("X-Forwarded-Uri: must have at least 4 path components")
    return method.upper(), uri


@blp.route("/auth/verify")
class Verify(MethodView):
    @blp.response(200, description="The token is a valid, unrevoked user token.")
    @blp.alt_response(400, description="X-Forwarded-Uri or X-Forwarded-Method missing or malformed.")
    @blp.alt_response(401, description="Missing, invalid or revoked token.")
    @blp.alt_response(403, description="The token has expired.")
    def post(self):
        token = bearer_token()
        if not token:
            raise Unauthorized("missing or malformed Authorization header")
        forwarded_request()
        try:
            services().useradm.authenticate(token)
        except TokenExpired:
            raise Forbidden("token expired") from None
        return Response(status=200)


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.arguments(TenantNewSchema)
    @blp.response(201, description="Accepted. Tenants need no setup here: every record carries its tenant id.")
    @blp.alt_response(400, description="Invalid body.")
    def post(self, body):
        return Response(status=201)


@blp.route("/tenants/<tenant:tenant_id>/users")
class TenantUsers(MethodView):
    @blp.arguments(UsersQueryArgsSchema, location="query")
    @blp.response(200, description="The tenant's users.")
    @blp.alt_response(400, description="Invalid query argument.")
    def get(self, args, tenant_id):
        return list_users_response(tenant_id, args)

    @blp.arguments(UserNewInternalSchema)
    @blp.response(201, description="Created.")
    @blp.alt_response(400, description="Invalid body or email.")
    @blp.alt_response(404, description="No such organization (tenantadm creates them).")
    @blp.alt_response(422, description="Email taken, or password rules, or the organization's user limit.")
    def post(self, body, tenant_id):
        services().useradm.create_user(body["email"], body["password"], tenant=tenant_id)
        return Response(status=201)


@blp.route("/tenants/<tenant:tenant_id>/users/<string:user_id>")
class TenantUserById(MethodView):
    @blp.response(204, description="Deleted (idempotent), with the user's tokens.")
    def delete(self, tenant_id, user_id):
        services().useradm.delete_user(tenant_id, user_id)
        return Response(status=204)


@blp.route("/tokens")
class Tokens(MethodView):
    @blp.arguments(RevokeTokensQueryArgsSchema, location="query")
    @blp.response(204, description="The tokens of the tenant's users (or of one user) are revoked.")
    @blp.alt_response(400, description="tenant_id missing.")
    def delete(self, args):
        services().useradm.revoke_tokens(args["tenant_id"], args.get("user_id"))
        return Response(status=204)
