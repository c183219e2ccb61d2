"""Internal API: health, tenants, device provisioning and decommissioning, deployments."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from common.api import Blueprint, no_content
from common.app import ctx, services
from common.health import add_health_routes
from deviceconfig.api.management import device_id_of
from deviceconfig.schemas import (NewConfigurationDeploymentResponseSchema, NewConfigurationDeploymentSchema,
                                  NewTenantSchema, NewDeviceSchema)

blp = Blueprint("deviceconfig_internal", __name__, url_prefix="/api/internal/v1/deviceconfig",
                description="Device configuration: internal API.")
add_health_routes(blp, lambda: ctx().checks_for("deviceconfig"), lambda: ctx().config["MENDER_HEALTH_TIMEOUT_SECONDS"])


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.arguments(NewTenantSchema)
    @blp.response(201, description="Nothing to set up: every record carries its tenant.")
    def post(self, body):
        """Provision a tenant"""
        return Response(status=201)


@blp.route("/tenants/<tenant:tenant_id>")
class Tenant(MethodView):
    @blp.response(204, description="The tenant's configurations are gone.")
    def delete(self, tenant_id):
        """Delete every configuration of a tenant"""
        services().deviceconfig.delete_tenant(tenant_id)
        return no_content()


@blp.route("/tenants/<tenant:tenant_id>/devices")
class TenantDevices(MethodView):
    @blp.arguments(NewDeviceSchema)
    @blp.response(201, description="The device has a record (idempotent).")
    def post(self, body, tenant_id):
        """Provision a device"""
        services().deviceconfig.provision_device(tenant_id, body["device_id"])
        return Response(status=201)


@blp.route("/tenants/<tenant:tenant_id>/devices/<device_id>")
class TenantDevice(MethodView):
    @blp.response(204, description="The device's configuration is gone (idempotent).")
    def delete(self, tenant_id, device_id):
        """Decommission a device"""
        services().deviceconfig.delete_device(tenant_id, device_id_of(device_id))
        return no_content()


@blp.route("/tenants/<tenant:tenant_id>/configurations/device/<device_id>/deploy")
class TenantDeployConfiguration(MethodView):
    @blp.arguments(NewConfigurationDeploymentSchema)
    @blp.response(200, NewConfigurationDeploymentResponseSchema)
    @blp.alt_response(404, description="No configuration record for this device.")
    def post(self, body, tenant_id, device_id):
        """Deploy the device's configuration"""
        deployment_id = services().deviceconfig.deploy(tenant_id, device_id_of(device_id),
                                                       retries=body["retries"],
                                                       update_control_map=body.get("update_control_map"))
        return {"deployment_id": deployment_id}
