"""Device API: a device uploads its own inventory (PUT replaces, PATCH merges; both 200)."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from inventory.api import caller, empty, json_body


def make_blueprint() -> Blueprint:
    blp = Blueprint("inventory_devices", __name__, url_prefix="/api/devices/v1/inventory",
                    description="Device inventory: attributes reported by devices.")

    @blp.route("/device/attributes")
    class DeviceAttributes(MethodView):
        def _update(self, replace: bool):
            tenant, device_id = caller()
            body = json_body()
            svc = services().inventory
            # the check-in time moves with devauth's token check, batched, like every device request's
            svc.update_device_attributes(tenant, device_id, body, replace=replace)
            return empty(200)

        @blp.response(200, description="Attributes replaced (the inventory scope now holds exactly these).")
        @blp.alt_response(400, description="Invalid attributes or a limit exceeded.")
        @blp.alt_response(413, description="Request body larger than MENDER_REQUEST_SIZE_LIMIT.")
        def put(self):
            return self._update(replace=True)

        @blp.response(200, description="Attributes merged into the inventory scope.")
        @blp.alt_response(400, description="Invalid attributes or a limit exceeded.")
        @blp.alt_response(413, description="Request body larger than MENDER_REQUEST_SIZE_LIMIT.")
        def patch(self):
            return self._update(replace=False)

    return blp
