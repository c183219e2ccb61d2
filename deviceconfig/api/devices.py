"""Device API: the configuration the device should have, and the one it reports having applied."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint, json_response, no_content, request_json
from common.app import services
from common.auth import current_identity

blp = Blueprint("deviceconfig_devices", __name__, url_prefix="/api/devices/v1/deviceconfig",
                description="Device configuration: device API.")


@blp.route("/configuration")
class Configuration(MethodView):
    @blp.response(200, description="The device's desired configuration (a JSON object of string values).")
    @blp.alt_response(404, description="No configuration record for this device.")
    def get(self):
        """Get the device's desired configuration"""
        identity = current_identity()
        return json_response(services().deviceconfig.get_device(identity.tenant, identity.subject).configured)

    @blp.response(204, description="The reported configuration is replaced.")
    @blp.alt_response(400, description="Not an object of string values, or over the limits.")
    def put(self):
        """Report the configuration the device applied"""
        identity = current_identity()
        services().deviceconfig.report_configuration(identity.tenant, identity.subject, request_json())
        return no_content()
