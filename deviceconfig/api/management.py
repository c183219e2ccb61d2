"""Management API: a device's desired and reported configuration, configuration deployments."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint, json_response, no_content, request_json
from common.app import services
from common.auth import current_identity
from common.errors import BadRequest
from deviceconfig.api.render import device_configuration
from deviceconfig.schemas import NewConfigurationDeploymentResponseSchema, NewConfigurationDeploymentSchema

blp = Blueprint("deviceconfig_management", __name__, url_prefix="/api/management/v1/deviceconfig",
                description="Device configuration: desired and reported key/value configuration, deployments.")

MAX_ID = 128


def device_id_of(value: str) -> str:
    if not value or len(value) > MAX_ID:
        raise BadRequest("invalid device id")
    return value


@blp.route("/configurations/device/<device_id>")
class DeviceConfiguration(MethodView):
    @blp.response(200, description="The desired (`configured`) and reported configuration.")
    @blp.alt_response(404, description="No configuration record for this device.")
    def get(self, device_id):
        """Get the device's configuration"""
        record = services().deviceconfig.get_device(current_identity().tenant, device_id_of(device_id))
        return json_response(device_configuration(record))

    @blp.response(204, description="The desired configuration is replaced (deploy it to send it to the device).")
    @blp.alt_response(400, description="Not an object of string values, or over the limits.")
    @blp.alt_response(404, description="No such device.")
    def put(self, device_id):
        """Set the device's configuration (a JSON object of string values)"""
        services().deviceconfig.set_configuration(current_identity().tenant, device_id_of(device_id), request_json())
        return no_content()


@blp.route("/configurations/device/<device_id>/deploy")
class DeployConfiguration(MethodView):
    @blp.arguments(NewConfigurationDeploymentSchema)
    @blp.response(200, NewConfigurationDeploymentResponseSchema)
    @blp.alt_response(404, description="No configuration record for this device.")
    def post(self, body, device_id):
        """Deploy the device's configuration"""
        deployment_id = services().deviceconfig.deploy(current_identity().tenant, device_id_of(device_id),
                                                       retries=body["retries"],
                                                       update_control_map=body.get("update_control_map"))
        return {"deployment_id": deployment_id}
