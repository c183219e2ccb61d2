"""Internal API: health, tenants, device provisioning and decommissioning, Mender client commands."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from common.api import Blueprint, no_content
from common.app import ctx, services
from common.health import add_health_routes
from deviceconnect import protocol as p
from deviceconnect.schemas import ProvisionDeviceSchema

blp = Blueprint("deviceconnect_internal", __name__, url_prefix="/api/internal/v1/deviceconnect",
                description="Remote access to devices: internal API.")
add_health_routes(blp, lambda: ctx().checks_for("deviceconnect"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])

INTERNAL_USER = "internal"  # the user id put in the messages of an internal command


@blp.route("/tenants/<tenant:tenant_id>")
class Tenant(MethodView):
    @blp.response(204, description="The tenant's connection states, sessions and recordings are gone.")
    def delete(self, tenant_id):
        """Delete every record of a tenant"""
        services().deviceconnect.delete_tenant(tenant_id)
        return no_content()


@blp.route("/tenants/<tenant:tenant_id>/devices")
class TenantDevices(MethodView):
    @blp.arguments(ProvisionDeviceSchema)
    @blp.response(201, description="The device is known (state `unknown` until it connects).")
    def post(self, body, tenant_id):
        """Provision a device"""
        services().deviceconnect.provision_device(tenant_id, body["device_id"])
        return Response(status=201)


@blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>")
class TenantDevice(MethodView):
    @blp.response(202, description="The device is forgotten and its connection closed.")
    def delete(self, tenant_id, device_id):
        """Decommission a device: forget it and close its connection"""
        services().deviceconnect.delete_device(tenant_id, device_id)
        return Response(status=202)


def _command(tenant_id: str, device_id: str, command: str):
    services().deviceconnect.send_client_command(tenant_id, INTERNAL_USER, device_id, command)
    return Response(status=202)


@blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>/check-update")
class TenantCheckUpdate(MethodView):
    @blp.response(202, description="The device was asked to check for an update.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    def post(self, tenant_id, device_id):
        """Make the Mender client on the device check for an update now"""
        return _command(tenant_id, device_id, p.CHECK_UPDATE)


@blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>/send-inventory")
class TenantSendInventory(MethodView):
    @blp.response(202, description="The device was asked to send its inventory.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    def post(self, tenant_id, device_id):
        """Make the Mender client on the device send its inventory now"""
        return _command(tenant_id, device_id, p.SEND_INVENTORY)
