"""Internal API of tenantadm (no authentication: serve it only to your own network). Paths and
statuses as Mender's; `POST /tenants`, `DELETE /tenants/{id}`, `…/tenant_token` and `…/limits`
are this server's additions."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from common.api import Blueprint
from common.app import ctx, services
from common.auth import bearer_token
from common.errors import BadRequest, Unprocessable
from common.health import add_health_routes
from common.pagination import Page, paging_headers
from common.tenancy import tenant_from_api, tenant_to_api
from tenantadm.api.render import render_limits, render_tenant, render_user
from tenantadm.schemas import (LimitsSchema, LimitsUpdateSchema, TenantStatusSchema, TenantadmTenantNewSchema, TenantSchema,
                               TenantsQueryArgsSchema, TenantUpdateSchema, TenantadmUserNewSchema, TenantadmUsersQueryArgsSchema,
                               TenantadmUserSchema, TenantadmUserUpdateSchema)

blp = Blueprint("tenantadm_internal", __name__, url_prefix="/api/internal/v1/tenantadm",
                description="Organizations (tenant administration): internal API.")
add_health_routes(blp, lambda: ctx().checks_for("tenantadm"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])

TENANT_LOCATION = "/api/internal/v1/tenantadm/tenants/{id}"


@blp.route("/tenants/verify")
class Verify(MethodView):
    @blp.response(200, TenantSchema, description="The token is an active organization's current tenant token.")
    @blp.alt_response(400, description="No token in the Authorization header.")
    @blp.alt_response(401, description="Not a tenant token of this server, rotated, or of an organization "
                                       "that is not active.")
    def post(self):
        """Verify a tenant token (`Authorization: Bearer <tenant token>`)"""
        token = bearer_token()
        if not token:
            raise BadRequest("missing or malformed Authorization header")
        return render_tenant(services().tenantadm.verify_token(token), with_token=False)


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.arguments(TenantsQueryArgsSchema, location="query")
    @blp.response(200, TenantSchema(many=True), description="A page of organizations, oldest first (Link).")
    @blp.alt_response(400, description="Invalid query argument.")
    def get(self, args):
        """List organizations, by a user's email (`username`) or an id or part of a name (`q`)"""
        page = Page(args["page"], args["per_page"])
        tenants, total = services().tenantadm.list_tenants(q=args.get("q"), username=args.get("username"),
                                                           skip=page.skip, limit=page.limit)
        return [render_tenant(t) for t in tenants], paging_headers(page, len(tenants), total)

    @blp.arguments(TenantadmTenantNewSchema)
    @blp.response(201, TenantSchema, description="Created; `Location` names it.")
    @blp.alt_response(400, description="Invalid body.")
    @blp.alt_response(409, description="The first user's email is taken.")
    @blp.alt_response(422, description="The first user's password breaks the rules.")
    def post(self, body):
        """Create an organization, optionally with its first user and limits"""
        if ("email" in body) != ("password" in body):
            raise BadRequest("email and password: give both or neither")
        tenant = services().tenantadm.create_tenant(
            body["name"], admin_email=body.get("email"), admin_password=body.get("password"),
            max_devices=body.get("max_devices"), max_users=body.get("max_users"),
            storage_limit=body.get("storage_limit"))
        return render_tenant(tenant), 201, {"Location": TENANT_LOCATION.format(id=tenant_to_api(tenant.id))}


@blp.route("/tenants/<tenant:tenant_id>")
class TenantById(MethodView):
    @blp.response(200, TenantSchema)
    @blp.alt_response(404, description="No such organization.")
    def get(self, tenant_id):
        """An organization"""
        return render_tenant(services().tenantadm.get_tenant(tenant_id))

    @blp.arguments(TenantUpdateSchema)
    @blp.response(204, description="Updated.")
    @blp.alt_response(400, description="Invalid body.")
    @blp.alt_response(404, description="No such organization.")
    def put(self, body, tenant_id):
        """Update an organization (its name)"""
        svc = services().tenantadm
        if "name" in body:
            svc.rename(tenant_id, body["name"])
        else:
            svc.get_tenant(tenant_id)
        return None

    @blp.response(204, description="Removed with all its data.")
    @blp.alt_response(404, description="No such organization.")
    @blp.alt_response(405, description="The organization is active (suspend it first), or the default one.")
    def delete(self, tenant_id):
        """Remove a suspended or inactive organization with everything it has"""
        services().tenantadm.delete_tenant(tenant_id)
        return None


@blp.route("/tenants/<tenant:tenant_id>/status")
class TenantStatus(MethodView):
    @blp.arguments(TenantStatusSchema)
    @blp.response(200, description="The organization was (un)suspended.")
    @blp.alt_response(400, description="Invalid body or status, or the default organization.")
    @blp.alt_response(404, description="No such organization.")
    def put(self, body, tenant_id):
        """Suspend (`suspended`) or reactivate (`active`) an organization"""
        services().tenantadm.set_status(tenant_id, body["status"])
        return Response(status=200)


@blp.route("/tenants/<tenant:tenant_id>/tenant_token")
class TenantToken(MethodView):
    @blp.response(200, TenantSchema, description="The organization with its new tenant token.")
    @blp.alt_response(404, description="No such organization.")
    def post(self, tenant_id):
        """Rotate the organization's tenant token (devices already accepted keep working)"""
        return render_tenant(services().tenantadm.rotate_token(tenant_id))


@blp.route("/tenants/<tenant:tenant_id>/limits")
class TenantLimits(MethodView):
    @blp.response(200, LimitsSchema, description="Limits and usage of devices, users and storage.")
    @blp.alt_response(404, description="No such organization.")
    def get(self, tenant_id):
        """An organization's limits and usage"""
        svc = services().tenantadm
        svc.get_tenant(tenant_id)
        return render_limits(svc.limits(tenant_id))

    @blp.arguments(LimitsUpdateSchema)
    @blp.response(204, description="The given limits are set.")
    @blp.alt_response(400, description="Invalid body.")
    @blp.alt_response(404, description="No such organization.")
    def put(self, body, tenant_id):
        """Set an organization's limits (accepted devices, users, artifact storage bytes)"""
        svc = services().tenantadm
        svc.get_tenant(tenant_id)
        svc.set_limits(tenant_id, max_devices=body.get("max_devices"), max_users=body.get("max_users"),
                       storage_limit=body.get("storage_limit"))
        return None


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(TenantadmUsersQueryArgsSchema, location="query")
    @blp.response(200, TenantadmUserSchema(many=True), description="A page of users (Link).")
    @blp.alt_response(400, description="Invalid query argument.")
    def get(self, args):
        """Users of every organization, by email (`name`), organization (`tenant_id`) or `id`"""
        page = Page(args["page"], args["per_page"])
        if args.get("login"):
            return [], paging_headers(page, 0, 0)
        tenant = tenant_from_api(args["tenant_id"]) if args.get("tenant_id") else None
        users, total = services().useradm.list_users(
            tenant, ids=[args["id"]] if args.get("id") else (), emails=[args["name"]] if args.get("name") else (),
            skip=page.skip, limit=page.limit)
        return [render_user(u) for u in users], paging_headers(page, len(users), total)

    @blp.arguments(TenantadmUserNewSchema)
    @blp.response(201, description="Created (without a password: `flask useradm set-password` gives one); "
                                   "`Location` names it.")
    @blp.alt_response(400, description="Invalid body.")
    @blp.alt_response(404, description="No such organization.")
    @blp.alt_response(422, description="The email or id is taken.")
    def post(self, body):
        """Create a user of an organization"""
        tenant = tenant_from_api(body["tenant_id"])
        services().tenantadm.get_tenant(tenant)
        if services().useradm.list_users(None, ids=[body["id"]], limit=1)[1]:
            raise Unprocessable("user name or id is duplicated")
        services().useradm.create_user(body["name"], None, tenant, user_id=body["id"])
        return Response(status=201, headers={"Location": f"/api/internal/v1/tenantadm/tenants/"
                                                         f"{tenant_to_api(tenant)}/users/{body['id']}"})


@blp.route("/tenants/<tenant:tenant_id>/users/<string:user_id>")
class TenantUser(MethodView):
    @blp.arguments(TenantadmUserUpdateSchema)
    @blp.response(204, description="Updated.")
    @blp.alt_response(400, description="Invalid body.")
    @blp.alt_response(404, description="No such organization or user.")
    @blp.alt_response(422, description="The email is taken.")
    def put(self, body, tenant_id, user_id):
        """Change a user's email"""
        services().tenantadm.get_tenant(tenant_id)
        services().useradm.set_email(tenant_id, user_id, body["name"])
        return None

    @blp.response(204, description="Removed (idempotent), with the user's tokens.")
    def delete(self, tenant_id, user_id):
        """Remove a user"""
        services().useradm.delete_user(tenant_id, user_id)
        return None

