"""Internal API: health, token verification for a gateway, token revocation, tenant limits."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint
from common.app import ctx, services
from common.auth import bearer_token
from common.errors import BadRequest, NotFound, Unauthorized
from common.health import add_health_routes
from common.pagination import Page, paging_headers
from devauth.api import render
from devauth.schemas import (DevauthCountQueryArgsSchema, DevauthCountSchema, DevauthDeviceSchema, DevauthInternalDevicesQueryArgsSchema,
                             DevauthLimitSchema, DevauthStatusSchema, DevauthTokensDeleteQueryArgsSchema)

blp = Blueprint("devauth_internal", __name__, url_prefix="/api/internal/v1/devauth",
                description="Device authentication and admission: internal API.")
add_health_routes(blp, lambda: ctx().checks_for("devauth"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])


@blp.route("/tokens/verify")
class TokensVerify(MethodView):
    def _verify(self):
        token = bearer_token()
        if not token:
            raise Unauthorized("missing or malformed Authorization header")
        services().devauth.verify_token(token)
        return "", 200

    @blp.response(200, description="The token is valid.")
    @blp.alt_response(401, description="Invalid or revoked.")
    @blp.alt_response(403, description="Expired.")
    def post(self):
        """Verify a device token (for a gateway): 200 valid, 401 invalid or revoked, 403 expired"""
        return self._verify()

    @blp.response(200, description="The token is valid.")
    def get(self):
        """As POST (Mender's gateway uses both)"""
        return self._verify()


@blp.route("/tokens")
class Tokens(MethodView):
    @blp.arguments(DevauthTokensDeleteQueryArgsSchema, location="query")
    @blp.response(204, description="Tokens deleted.")
    def delete(self, args):
        """Revoke the tokens of one device, or of every device of a tenant"""
        services().devauth.revoke_tokens(args["tenant_id"], args.get("device_id") or None)
        return None


@blp.route("/tenant/<tenant:tenant_id>/limits/max_devices")
class TenantMaxDevices(MethodView):
    @blp.response(200, DevauthLimitSchema)
    def get(self, tenant_id):
        """A tenant's accepted-device limit"""
        return {"limit": services().devauth.max_devices(tenant_id)}

    @blp.arguments(DevauthLimitSchema)
    @blp.response(204, description="Limit set.")
    def put(self, body, tenant_id):
        """Set a tenant's accepted-device limit (-1: unlimited)"""
        services().devauth.set_max_devices(tenant_id, body["limit"])
        return None

    @blp.response(204, description="Limit removed (the configured default applies).")
    def delete(self, tenant_id):
        """Remove a tenant's limit"""
        services().devauth.clear_max_devices(tenant_id)
        return None


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.response(201, description="Nothing to provision: tenants share the database.")
    def post(self):
        """Provision a tenant (a no-op here: every tenant lives in the same collections)"""
        from common.api import request_json
        body = request_json()
        if not isinstance(body, dict) or not isinstance(body.get("tenant_id"), str):
            raise BadRequest("tenant_id: required string")
        return None


@blp.route("/tenants/<tenant:tid>/devices")
class TenantDevices(MethodView):
    @blp.arguments(DevauthInternalDevicesQueryArgsSchema, location="query")
    @blp.response(200, DevauthDeviceSchema(many=True))
    def get(self, args, tid):
        """A tenant's devices, oldest first"""
        page = Page(args["page"], args["per_page"])
        statuses = [args["status"]] if args.get("status") else None
        devices, total = services().devauth.list_devices(tid, statuses, args.get("id"), page.page, page.per_page)
        return [render.device(d) for d in devices], 200, paging_headers(page, len(devices), total)


@blp.route("/tenants/<tenant:tid>/devices/count")
class TenantDevicesCount(MethodView):
    @blp.arguments(DevauthCountQueryArgsSchema, location="query")
    @blp.response(200, DevauthCountSchema)
    def get(self, args, tid):
        """Count a tenant's devices"""
        return {"count": services().devauth.count_devices(tid, args.get("status"))}


@blp.route("/tenants/<tenant:tid>/devices/<did>/status")
class TenantDeviceStatus(MethodView):
    @blp.response(200, DevauthStatusSchema)
    def get(self, tid, did):
        """A device's aggregate status"""
        return {"status": services().devauth.device_status_of(tid, did)}


@blp.route("/tenants/<tenant:tid>/devices/<did>")
class TenantDevice(MethodView):
    @blp.response(201, description="Device deleted (decommissioned); also when it did not exist.")
    def delete(self, tid, did):
        """Decommission a device of a tenant (idempotent; 201 as Mender's spec says)"""
        try:
            services().devauth.decommission(tid, did)
        except NotFound:
            pass  # already gone: deleting is idempotent
        return None


