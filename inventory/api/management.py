"""Management API v1: devices, tags, groups."""

from __future__ import annotations

from flask import jsonify, request
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import visible_device_groups
from common.pagination import page_from_args
from inventory.api import caller, empty, json_body, paged, query_items, render
from inventory.query import parse_v1_list


def make_blueprint() -> Blueprint:
    blp = Blueprint("inventory_management", __name__, url_prefix="/api/management/v1/inventory",
                    description="Device inventory: devices, tags and groups.")

    @blp.route("/devices")
    class Devices(MethodView):
        @blp.response(200, description="A page of devices; query: page, per_page, sort, has_group, group "
                                       "and `[scope/]name=[eq:]value` attribute filters.")
        @blp.alt_response(400, description="Invalid paging, sort or filter.")
        def get(self):
            tenant, _ = caller()
            page = page_from_args()
            query = parse_v1_list(query_items(), page.page, page.per_page)
            devices, total = services().inventory.search(tenant, query, visible_device_groups())
            return paged([render.device(d) for d in devices], page, total)

    @blp.route("/devices/<device_id>/tags")
    class DeviceTags(MethodView):
        def _update(self, device_id: str, replace: bool):
            tenant, _ = caller()
            services().inventory.update_tags(tenant, device_id, json_body(), replace,
                                             request.headers.get("If-Match"))
            return empty(200)

        @blp.response(200, description="Tags replaced.")
        @blp.alt_response(400, description="Invalid tags or more than INVENTORY_LIMIT_TAGS.")
        @blp.alt_response(404, description="No such device.")
        @blp.alt_response(412, description="If-Match does not match the device's ETag.")
        def put(self, device_id):
            return self._update(device_id, True)

        @blp.response(200, description="Tags merged.")
        @blp.alt_response(400, description="Invalid tags or more than INVENTORY_LIMIT_TAGS.")
        @blp.alt_response(404, description="No such device.")
        @blp.alt_response(412, description="If-Match does not match the device's ETag.")
        def patch(self, device_id):
            return self._update(device_id, False)

    @blp.route("/devices/<device_id>/group/<name>")
    class DeviceGroupByName(MethodView):
        @blp.response(204, description="The device left the group.")
        @blp.alt_response(404, description="No such device, or it is not in this group.")
        def delete(self, device_id, name):
            tenant, _ = caller()
            services().inventory.remove_from_group(tenant, device_id, name)
            return empty(204)

    @blp.route("/devices/<device_id>/group")
    class DeviceGroup(MethodView):
        @blp.response(200, description="`{\"group\": name}`, null when the device has no group.")
        @blp.alt_response(404, description="No such device.")
        def get(self, device_id):
            tenant, _ = caller()
            return jsonify({"group": services().inventory.get_device_group(tenant, device_id)})

        @blp.response(204, description="The device is in the group (moved from any other).")
        @blp.alt_response(400, description="Invalid group name.")
        @blp.alt_response(404, description="No such device.")
        def put(self, device_id):
            tenant, _ = caller()
            body = json_body()
            if not isinstance(body, dict) or set(body) != {"group"}:
                from common.errors import BadRequest
                raise BadRequest("body: must be {\"group\": name}")
            services().inventory.assign_group(tenant, device_id, body["group"])
            return empty(204)

    @blp.route("/devices/<device_id>")
    class DeviceById(MethodView):
        @blp.response(200, description="The device; header ETag: its tags ETag.")
        @blp.alt_response(404, description="No such device.")
        def get(self, device_id):
            tenant, _ = caller()
            device = services().inventory.get_device(tenant, device_id)
            response = jsonify(render.device(device))
            if device.tags_etag:
                response.headers["ETag"] = device.tags_etag
            return response

        @blp.response(204, description="The device's inventory is removed (idempotent).")
        def delete(self, device_id):
            tenant, _ = caller()
            services().inventory.delete_device(tenant, device_id)
            return empty(204)

    @blp.route("/groups")
    class Groups(MethodView):
        @blp.response(200, description="Group names; query `status` limits them to groups of devices "
                                       "with that status.")
        def get(self):
            tenant, _ = caller()
            return jsonify(services().inventory.groups(tenant, request.args.get("status"), visible_device_groups()))

    @blp.route("/groups/<name>")
    class GroupByName(MethodView):
        @blp.response(200, description="`{\"updated_count\"}`: the devices taken out of the group.")
        @blp.alt_response(400, description="Invalid group name.")
        @blp.alt_response(404, description="No device is in this group.")
        def delete(self, name):
            tenant, _ = caller()
            return jsonify(render.group_change(services().inventory.delete_group(tenant, name)))

    @blp.route("/groups/<name>/devices")
    class GroupDevices(MethodView):
        @blp.response(200, description="A page of device ids in the group.")
        @blp.alt_response(400, description="Invalid paging or group name.")
        @blp.alt_response(404, description="No device is in this group.")
        def get(self, name):
            tenant, _ = caller()
            page = page_from_args()
            ids, total = services().inventory.group_devices(tenant, name, page.page, page.per_page)
            return paged(ids, page, total)

        @blp.response(200, description="`{\"updated_count\", \"matched_count\"}`.")
        @blp.alt_response(400, description="Invalid group name or body.")
        def patch(self, name):
            tenant, _ = caller()
            matched, changed = services().inventory.add_devices_to_group(tenant, name, json_body())
            return jsonify(render.group_change(changed, matched))

        @blp.response(200, description="`{\"updated_count\"}`.")
        @blp.alt_response(400, description="Invalid group name or body.")
        def delete(self, name):
            tenant, _ = caller()
            return jsonify(render.group_change(services().inventory.remove_devices_from_group(tenant, name,
                                                                                              json_body())))

    return blp
