"""Internal API v1 (device create/delete, status sync, attribute patches, groups) and v2 (search)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

from flask import jsonify, request
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.errors import BadRequest
from inventory.api import empty, json_body, optional_json_body, render
from inventory.api.management_v2 import search_response


def _unmodified_since() -> float | None:
    raw = request.headers.get("If-Unmodified-Since")
    if not raw:
        return None
    try:
        return parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError, IndexError):
        raise BadRequest("If-Unmodified-Since: not an RFC 1123 date") from None


def make_blueprint() -> Blueprint:
    blp = Blueprint("inventory_internal", __name__, url_prefix="/api/internal/v1/inventory",
                    description="Device inventory: internal API.")

    @blp.route("/tenants")
    class Tenants(MethodView):
        @blp.response(201, description="Accepted (tenants need no setup here: every row carries its tenant).")
        @blp.alt_response(400, description="Malformed body.")
        def post(self):
            body = json_body()
            if not isinstance(body, dict) or not isinstance(body.get("tenant_id"), str):
                raise BadRequest("tenant_id: must be a string")
            return empty(201)

    @blp.route("/tenants/<tenant:tenant_id>/devices")
    class TenantDevices(MethodView):
        @blp.response(201, description="Created; Location names the device.")
        @blp.alt_response(400, description="Malformed body.")
        def post(self, tenant_id):
            device_id = services().inventory.create_device(tenant_id, json_body())
            response = empty(201)
            response.headers["Location"] = f"/api/0.1.0/devices/{device_id}"
            return response

    @blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>")
    class TenantDevice(MethodView):
        @blp.response(204, description="Removed.")
        @blp.alt_response(404, description="No such device.")
        def delete(self, tenant_id, device_id):
            svc = services().inventory
            svc.get_device(tenant_id, device_id)  # 404 when unknown
            svc.delete_device(tenant_id, device_id)
            return empty(204)

    @blp.route("/tenants/<tenant:tenant_id>/devices/status/<status>")
    class DevicesStatus(MethodView):
        @blp.response(200, description="Statuses written (devices with a newer revision are left alone).")
        @blp.alt_response(400, description="Malformed body or unknown status.")
        def post(self, tenant_id, status):
            body = json_body()
            if not isinstance(body, list) or not all(
                    isinstance(d, dict) and isinstance(d.get("id"), str) and d["id"]
                    and (d.get("revision") is None or (isinstance(d["revision"], int)
                                                       and not isinstance(d["revision"], bool)
                                                       and 0 <= d["revision"] < 2**63))
                    for d in body):
                raise BadRequest("body: must be an array of {id, revision} (revision: 0 to 2^63-1)")
            services().inventory.set_status(tenant_id, [d["id"] for d in body], status,
                                            revisions=[d.get("revision") for d in body])
            return empty(200)

    @blp.route("/tenants/<tenant:tenant_id>/device/<device_id>/attribute/scope/<scope>")
    class DeviceScopeAttributes(MethodView):
        @blp.response(200, description="Attributes upserted into the scope.")
        @blp.alt_response(400, description="Malformed body or unknown scope.")
        @blp.alt_response(412, description="Modified after If-Unmodified-Since.")
        def patch(self, tenant_id, device_id, scope):
            services().inventory.patch_scope(tenant_id, device_id, scope, json_body(), _unmodified_since())
            return empty(200)

    @blp.route("/tenants/<tenant:tenant_id>/device/<device_id>/attributes")
    class DeviceAttributes(MethodView):
        @blp.response(200, description="Attributes upserted, each into its own scope.")
        @blp.alt_response(400, description="Malformed body.")
        @blp.alt_response(412, description="Modified after If-Unmodified-Since.")
        def patch(self, tenant_id, device_id):
            services().inventory.patch_scope(tenant_id, device_id, None, json_body(), _unmodified_since())
            return empty(200)

    @blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>/groups")
    class DeviceGroups(MethodView):
        @blp.response(200, description="`{\"groups\": [...]}` (at most one).")
        @blp.alt_response(404, description="No such device.")
        def get(self, tenant_id, device_id):
            return jsonify({"groups": services().inventory.device_groups(tenant_id, device_id)})

    @blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>/reindex")
    class Reindex(MethodView):
        @blp.response(200, description="Nothing to do: attributes are indexed as they are written.")
        def post(self, tenant_id, device_id):
            return empty(200)

    return blp


def make_v2_blueprint() -> Blueprint:
    blp = Blueprint("inventory_internal_v2", __name__, url_prefix="/api/internal/v2/inventory",
                    description="Device inventory: internal search and statistics.")

    @blp.route("/tenants/<tenant:tenant_id>/filters/search")
    class TenantSearch(MethodView):
        @blp.response(200, description="As the management search, for any tenant.")
        @blp.alt_response(400, description="Malformed body.")
        def post(self, tenant_id):
            return search_response(tenant_id, optional_json_body())

    @blp.route("/tenants/<tenant:tenant_id>/statistics")
    class TenantStatistics(MethodView):
        @blp.response(200, description="Accepted and pending devices per tier.")
        def get(self, tenant_id):
            return jsonify(render.statistics(services().inventory.statistics(tenant_id)))

    return blp
