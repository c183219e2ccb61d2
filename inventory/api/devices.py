"""Device API: a device uploads its own inventory (PUT replaces, PATCH merges; both 200)."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint, handler_view
from common.direct import Raw
from inventory.api import json_body

PREFIX = "/api/devices/v1/inventory"
ATTRIBUTES = "/device/attributes"
# Mender answers an upload 200 with no body; the Flask view always sent Flask's default type with it
_EMPTY_200 = Raw(b"", "text/html; charset=utf-8")


# An upload is one of the wave's device requests: the handlers below take any werkzeug request and
# the caller and return (status, body); the direct routes (common.direct) call them without Flask,
# the Flask views (documentation, and MENDER_DIRECT_ROUTES=false) call them too.
def _update(context, req, identity, replace: bool):
    body = json_body(req)
    # the check-in time moves with devauth's token check, batched, like every device request's
    context.services.inventory.device_upload(identity.tenant, identity.subject, body, replace=replace)
    return 200, _EMPTY_200


def replace_attributes(context, req, identity):
    """PUT: the inventory scope now holds exactly these attributes."""
    return _update(context, req, identity, replace=True)


def merge_attributes(context, req, identity):
    """PATCH: the attributes are merged into the inventory scope."""
    return _update(context, req, identity, replace=False)


DIRECT_ROUTES = (("PUT", PREFIX + ATTRIBUTES, replace_attributes), ("PATCH", PREFIX + ATTRIBUTES, merge_attributes))


def make_blueprint() -> Blueprint:
    blp = Blueprint("inventory_devices", __name__, url_prefix=PREFIX,
                    description="Device inventory: attributes reported by devices.")

    @blp.route(ATTRIBUTES)
    class DeviceAttributes(MethodView):
        @blp.response(200, description="Attributes replaced (the inventory scope now holds exactly these).")
        @blp.alt_response(400, description="Invalid attributes or a limit exceeded.")
        @blp.alt_response(413, description="Request body larger than MENDER_REQUEST_SIZE_LIMIT.")
        def put(self):
            return handler_view(replace_attributes)

        @blp.response(200, description="Attributes merged into the inventory scope.")
        @blp.alt_response(400, description="Invalid attributes or a limit exceeded.")
        @blp.alt_response(413, description="Request body larger than MENDER_REQUEST_SIZE_LIMIT.")
        def patch(self):
            return handler_view(merge_attributes)

    return blp
