"""Internal API (Mender's iot-manager internal v1): health, and the device lifecycle calls other
services make (deviceauth's workflows in Mender; in-process calls here, served for gateways and
tools that speak Mender's API)."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint, no_content
from iotmanager.api import empty
from common.app import ctx, services
from common.errors import BadRequest
from common.health import add_health_routes
from iotmanager.schemas import IotManagerBulkDeviceSchema, IotManagerNewDeviceSchema
from iotmanager.service import MAX_BULK_DEVICES

blp = Blueprint("iotmanager_internal", __name__, url_prefix="/api/internal/v1/iot-manager",
                description="Outbound events (webhooks): internal API.")
add_health_routes(blp, lambda: ctx().checks_for("iotmanager"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])


@blp.route("/tenants/<tenant:tenant_id>")
class Tenant(MethodView):
    @blp.response(204, description="Every integration, event and delivery of the organization removed.")
    def delete(self, tenant_id):
        """Delete an organization's data"""
        services().iotmanager.delete_tenant(tenant_id)
        return no_content()


@blp.route("/tenants/<tenant:tenant_id>/devices")
class TenantDevices(MethodView):
    @blp.arguments(IotManagerNewDeviceSchema)
    @blp.response(202, description="Accepted: a device-provisioned event is recorded for delivery.")
    def post(self, body, tenant_id):
        """A device was provisioned (accepted for the first time)"""
        device_id = body.get("id") or body.get("device_id")
        if not device_id:
            raise BadRequest("missing device ID")
        services().iotmanager.provision_device(tenant_id, {**body, "id": device_id})
        return empty(202)


@blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>")
class TenantDevice(MethodView):
    @blp.response(202, description="Accepted: a device-decommissioned event is recorded for delivery.")
    def delete(self, tenant_id, device_id):
        """A device was decommissioned"""
        services().iotmanager.decommission_device(tenant_id, device_id)
        return empty(202)


@blp.route("/tenants/<tenant:tenant_id>/bulk/devices/status/<status>")
class TenantDevicesStatus(MethodView):
    @blp.arguments(IotManagerBulkDeviceSchema(many=True))
    @blp.response(202, description="Accepted: a device-status-changed event per device is recorded.")
    def put(self, body, tenant_id, status):
        """Devices changed status (at most 100 per request)"""
        if len(body) > MAX_BULK_DEVICES:
            raise BadRequest(f"too many bulk items: max {MAX_BULK_DEVICES} items per request")
        services().iotmanager.set_device_statuses(tenant_id, status, [d["id"] for d in body])
        return empty(202)
