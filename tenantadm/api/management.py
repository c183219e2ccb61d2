"""Management API of tenantadm: the caller's organization (v1 `user/tenant`), creating
organizations (v1 and v2 `tenants`: signup, or a server administrator), approving and removing
organizations (v2 `tenants/{id}`, `tenants/{id}/status`). Hosted Mender's commerce (billing,
trials, cancellation, plan upgrades) is not part of it.

Server administrators are the administrators (RBAC_ROLE_PERMIT_ALL) of the default organization
(docs/tenants.md); creating an organization needs one unless TENANTADM_SIGNUP opens signup.
"""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError
from webargs import core

from common import audit, permissions
from common.api import Blueprint, format_validation_messages, request_json
from common.app import ctx, services
from common.auth import Identity, bearer_token, check_csrf, current_identity
from common.errors import BadRequest, Forbidden
from common.tenancy import DEFAULT_TENANT, tenant_to_api
from tenantadm.api.render import render_tenant
from tenantadm.model import ACTIVE
from tenantadm.service import SIGNUP_CLOSED
from tenantadm.schemas import SignupSchema, TenantStatusSchema, TenantSchema, TenantShortInfoSchema

blp = Blueprint("tenantadm_management", __name__, url_prefix="/api/management/v1/tenantadm",
                description="Organizations: the caller's, and signup (management API v1).")
blp_v2 = Blueprint("tenantadm_management_v2", __name__, url_prefix="/api/management/v2/tenantadm",
                   description="Organizations: signup, approval and removal (management API v2).")

# reachable without a token (signup); a token, when sent, is verified by the view itself
SIGNUP_PATHS = ("/api/management/v1/tenantadm/tenants", "/api/management/v2/tenantadm/tenants")

_SIGNUP_DOC = {"requestBody": {"required": True, "content": {
    media: {"schema": SignupSchema} for media in ("application/json", "application/x-www-form-urlencoded")}}}


def is_server_admin(identity: Identity | None) -> bool:
    """Whether the caller administers the server: a user of the default organization acting as its
    administrator (SuperUser: RBAC_ROLE_PERMIT_ALL); its other users are no server administrators."""
    if identity is None or not identity.is_user or identity.tenant != DEFAULT_TENANT:
        return False
    grants = services().useradm.grants_for(identity)
    return permissions.decide(grants, permissions.need(permissions.SUPER_USER)).allowed


def require_server_admin() -> None:
    if not is_server_admin(current_identity()):
        raise Forbidden("only the server's administrators (administrators of the default organization) may do this")


def _optional_identity() -> Identity | None:
    """The user behind a token sent to a public path (Unauthorized when it is invalid)."""
    token = bearer_token()
    if not token:
        return None
    scheme = request.headers.get("Authorization", "").partition(" ")[0]
    if scheme.lower() != "bearer":
        check_csrf()  # the session cookie came by itself: the request must prove it read the csrf cookie
    return ctx().authenticators["management"](token)


def _signup_body() -> dict:
    if request.mimetype == "application/x-www-form-urlencoded":
        raw = {k: v for k, v in request.form.items()}
    elif core.is_json(request.mimetype) or not request.get_data(cache=True).strip():
        raw = request_json()
    else:
        raise BadRequest("Content-Type must be application/json or application/x-www-form-urlencoded")
    if not isinstance(raw, dict):
        raise BadRequest("the body must be an object")
    try:
        return SignupSchema().load(raw)
    except ValidationError as exc:
        raise BadRequest(format_validation_messages(exc.messages)) from None


def _create() -> object:
    """Create an organization: a server administrator's (active at once), or a signup."""
    body = _signup_body()
    caller = _optional_identity()
    svc = services().tenantadm
    if caller is not None and is_server_admin(caller):
        tenant = svc.create_tenant(body["organization"], admin_email=body["email"], admin_password=body["password"],
                                   status=ACTIVE)
    elif caller is not None and svc.signup_mode == SIGNUP_CLOSED:
        raise Forbidden("only the server's administrators (administrators of the default organization) create organizations")
    else:
        tenant = svc.signup(body["organization"], body["email"], body["password"])
    # the entry names the new organization (v1 answers 202 with nothing to read it from)
    audit.emit(audit.AuditEvent(action="create", object_type="organization", object_id=tenant_to_api(tenant.id),
                                object_name=tenant.name))
    return tenant


@blp.route("/user/tenant")
class UserTenant(MethodView):
    @blp.response(200, TenantSchema, description="The caller's organization, with its tenant token.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def get(self):
        """The caller's organization"""
        return render_tenant(services().tenantadm.get_tenant(current_identity().tenant))


@blp.route("/user/tenant/tenant_token")
class UserTenantToken(MethodView):
    @blp.response(200, TenantSchema, description="The caller's organization with its new tenant token.")
    @blp.alt_response(401, description="Missing or invalid token.")
    def post(self):
        """Rotate the caller's organization's tenant token (this server's addition): devices whose
        key is already accepted keep authenticating with the old token, which admits no new device"""
        return render_tenant(services().tenantadm.rotate_token(current_identity().tenant))


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.doc(**_SIGNUP_DOC)
    @blp.response(202, description="The organization and its first user are created.")
    @blp.alt_response(400, description="Malformed body.")
    @blp.alt_response(401, description="Signup is closed (TENANTADM_SIGNUP) and no administrator's token was sent.")
    @blp.alt_response(403, description="The token is not a server administrator's and signup is closed.")
    @blp.alt_response(409, description="The email is taken.")
    def post(self):
        """Create an organization with its first user"""
        _create()
        return Response(status=202)


@blp_v2.route("/tenants")
class TenantsV2(MethodView):
    @blp_v2.doc(**_SIGNUP_DOC)
    @blp_v2.response(200, TenantShortInfoSchema, description="The new organization's id.")
    @blp_v2.alt_response(400, description="Malformed body.")
    @blp_v2.alt_response(401, description="Signup is closed (TENANTADM_SIGNUP) and no administrator's token was sent.")
    @blp_v2.alt_response(403, description="The token is not a server administrator's and signup is closed.")
    @blp_v2.alt_response(409, description="The email is taken.")
    def post(self):
        """Create an organization with its first user"""
        tenant = _create()
        return {"id": render_tenant(tenant)["id"]}


@blp_v2.route("/tenants/<tenant:tenant_id>")
class TenantV2(MethodView):
    @blp_v2.response(204, description="Removed with all its data.")
    @blp_v2.alt_response(403, description="Not a server administrator.")
    @blp_v2.alt_response(404, description="No such organization.")
    @blp_v2.alt_response(405, description="Only an inactive or suspended organization can be removed.")
    def delete(self, tenant_id):
        """Remove an inactive (or suspended) organization with everything it has (server administrators)"""
        require_server_admin()
        services().tenantadm.delete_tenant(tenant_id)
        return None


@blp_v2.route("/tenants/<tenant:tenant_id>/status")
class TenantStatusV2(MethodView):
    @blp_v2.arguments(TenantStatusSchema)
    @blp_v2.response(202, description="The organization is active.")
    @blp_v2.alt_response(400, description="Malformed body; the only valid status is `active`.")
    @blp_v2.alt_response(403, description="Not a server administrator.")
    @blp_v2.alt_response(404, description="No such organization.")
    @blp_v2.alt_response(409, description="The organization is suspended (reactivate it with the CLI or the internal API).")
    def put(self, body, tenant_id):
        """Activate an organization awaiting approval (server administrators)"""
        require_server_admin()
        services().tenantadm.activate(tenant_id, body["status"])
        return Response(status=202)
