"""Internal API: health, and POST/GET /api/internal/v1/auditlogs/tenants/{tenant_id}/logs."""

from __future__ import annotations

from flask import jsonify
from flask.views import MethodView

from common.api import Blueprint
from common.app import ctx, services
from common.audit import Actor
from common.health import add_health_routes
from auditlogs.api.management import list_response
from auditlogs.api.render import render_entry
from auditlogs.schemas import AuditLogNewSchema, LogsQueryArgsSchema

blp = Blueprint("auditlogs_internal", __name__, url_prefix="/api/internal/v1/auditlogs",
                description="The audit log: internal API.")
add_health_routes(blp, lambda: ctx().checks_for("auditlogs"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])


@blp.route("/health/alive")
class AliveMender(MethodView):
    @blp.response(204, description="The service is up (Mender's path for `alive`).")
    def get(self):
        return None


@blp.route("/tenants/<tenant:tenant_id>/logs")
class TenantLogs(MethodView):
    @blp.arguments(LogsQueryArgsSchema, location="query")
    @blp.response(200, description="A page of the organization's entries (`default`: the default organization).")
    @blp.alt_response(400, description="Invalid query argument.")
    def get(self, args, tenant_id):
        """List an organization's audit log entries"""
        return list_response(tenant_id, args)

    @blp.arguments(AuditLogNewSchema)
    @blp.response(201, description="The entry is appended.")
    @blp.alt_response(400, description="Invalid body.")
    def post(self, body, tenant_id):
        """Append an entry to an organization's audit log"""
        a, o = body["actor"], body["object"]
        extra = {}
        for key in ("user", "deployment", "artifact", "device", "tenant"):
            if isinstance(o.get(key), dict):
                extra.update({k: v for k, v in o[key].items() if isinstance(v, (str, int, float, bool))})
        name = o.get("name")
        if name is None and o["type"] == "user":
            name = (o.get("user") or {}).get("email")
        if name is None and o["type"] == "deployment":
            name = (o.get("deployment") or {}).get("name")
        time = body.get("time")
        entry = services().auditlogs.create(
            tenant_id, actor=Actor(a["type"], a["id"], a.get("email")), action=body["action"],
            object_type=o["type"], object_id=o.get("id", ""), object_name=name, extra=extra,
            change=body["change"], time=time.timestamp() if time is not None else None)
        response = jsonify(render_entry(entry))
        response.status_code = 201
        return response
