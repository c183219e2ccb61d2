"""Management API v2: devices, auth sets, tokens and limits of the caller's tenant."""

from __future__ import annotations

from flask import request, url_for
from flask.views import MethodView
from webargs import core

from common.api import Blueprint, request_json
from common.app import services
from common.auth import current_identity
from common.bulk_api import BULK_RESULT, SELECTION_BODY, SELECTION_PROPERTIES, render_bulk
from common.errors import Conflict, UnsupportedMediaType
from common.pagination import Page, page_from_args, paging_headers
from devauth import bulk
from devauth.api import render
from devauth.schemas import (DevauthBulkResultSchema, DevauthCountQueryArgsSchema, DevauthCountSchema, DevauthDeviceSchema,
                             DevauthDevicesQueryArgsSchema, DevauthLimitSchema, DevauthPreAuthSetSchema, DevauthSearchSchema, DevauthStatusSchema)
from devauth.service_devices import DeviceExists

blp = Blueprint("devauth_management", __name__, url_prefix="/api/management/v2/devauth",
                description="Device authentication: admission of devices by operators.")


def _tenant() -> str:
    return current_identity().tenant


def _device_page(statuses, ids, page: Page):
    devices, total = services().devauth.list_devices(_tenant(), statuses, ids, page.page, page.per_page)
    return [render.device(d) for d in devices], 200, paging_headers(page, len(devices), total)


@blp.route("/devices")
class Devices(MethodView):
    @blp.arguments(DevauthDevicesQueryArgsSchema, location="query")
    @blp.response(200, DevauthDeviceSchema(many=True))
    def get(self, args):
        """List devices, oldest first, optionally filtered by status and ids"""
        statuses = [args["status"]] if args.get("status") else None
        return _device_page(statuses, args.get("id"), Page(args["page"], args["per_page"]))

    @blp.doc(requestBody=SELECTION_BODY)
    @blp.response(200, description=BULK_RESULT)
    @blp.alt_response(400, description="Invalid selection, or more devices than INVENTORY_BULK_MAX_DEVICES.")
    def delete(self):
        """Decommission many devices in one request (ids, or an inventory filter and text)"""
        return render_bulk(services().devauth.decommission_selection(_tenant(), request_json()))

    @blp.arguments(DevauthPreAuthSetSchema)
    @blp.response(201, description="Device preauthorized; `Location` names it.")
    @blp.alt_response(409, schema=DevauthDeviceSchema, description="The identity exists: the body is that device.")
    def post(self, body):
        """Preauthorize a device (identity and key)"""
        try:
            device_id = services().devauth.preauthorize(_tenant(), body["identity_data"], body["pubkey"],
                                                        body["force"])
        except DeviceExists as exc:
            raise Conflict(exc.message, body=render.device(exc.device)) from None
        location = url_for("devauth_management.DeviceById", id=device_id)
        return None, 201, {"Location": location}


@blp.route("/devices/status")
class SelectionStatus(MethodView):
    @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["accepted", "rejected"]}, **SELECTION_PROPERTIES}}}}})
    @blp.response(200, description=BULK_RESULT)
    @blp.alt_response(400, description="Invalid status or selection, or more devices than INVENTORY_BULK_MAX_DEVICES.")
    def put(self):
        """Accept or reject many devices in one request (ids, or an inventory filter and text)"""
        body = request_json()
        status = body.get("status") if isinstance(body, dict) else None
        return render_bulk(services().devauth.set_status_of_selection(_tenant(), status, body))


@blp.route("/devices/search")
class DevicesSearch(MethodView):
    @blp.arguments(DevauthSearchSchema)
    @blp.response(200, DevauthDeviceSchema(many=True))
    def post(self, body):
        """Search devices by status(es) and id(s)"""
        return _device_page(body.get("status"), body.get("id"), page_from_args())


@blp.route("/devices/count")
class DevicesCount(MethodView):
    @blp.arguments(DevauthCountQueryArgsSchema, location="query")
    @blp.response(200, DevauthCountSchema)
    def get(self, args):
        """Count devices, optionally by status"""
        return {"count": services().devauth.count_devices(_tenant(), args.get("status"))}


@blp.route("/devices/<id>")
class DeviceById(MethodView):
    @blp.response(200, DevauthDeviceSchema)
    def get(self, id):
        """One device with its auth sets"""
        return render.device(services().devauth.get_device(_tenant(), id))

    @blp.response(204, description="Device decommissioned.")
    def delete(self, id):
        """Decommission a device: tokens revoked, inventory removed, deployments finished"""
        services().devauth.decommission(_tenant(), id)
        return None


@blp.route("/devices/<id>/auth/<aid>")
class AuthSet(MethodView):
    @blp.response(204, description="Auth set removed.")
    def delete(self, id, aid):
        """Remove an auth set"""
        services().devauth.delete_auth_set(_tenant(), id, aid)
        return None


@blp.route("/devices/<id>/auth/<aid>/status")
class AuthSetStatus(MethodView):
    @blp.response(200, DevauthStatusSchema)
    def get(self, id, aid):
        """The status of an auth set"""
        return {"status": services().devauth.get_auth_set_status(_tenant(), id, aid)}

    @blp.arguments(DevauthStatusSchema)
    @blp.response(204, description="Status changed.")
    @blp.alt_response(422, description="Accepting would exceed the accepted-device limit.")
    def put(self, body, id, aid):
        """Accept, reject or reset an auth set (Mender's transition table)"""
        services().devauth.set_auth_set_status(_tenant(), id, aid, body["status"])
        return None


@blp.route("/tokens/<id>")
class Token(MethodView):
    @blp.response(204, description="Token revoked.")
    def delete(self, id):
        """Revoke a device token by its jti"""
        services().devauth.revoke_token(_tenant(), id)
        return None


@blp.route("/limits/max_devices")
class MaxDevices(MethodView):
    @blp.response(200, DevauthLimitSchema)
    def get(self):
        """The tenant's accepted-device limit (-1: unlimited)"""
        return {"limit": services().devauth.max_devices(_tenant())}


@blp.route("/preauthorizations")
class Preauthorizations(MethodView):
    @blp.doc(requestBody={"required": True, "content": {
        "text/csv": {"schema": {"type": "string"}, "example": "mac,sn,pubkey\n02:00:00:00:00:01,SN1,\"-----BEGIN PUBLIC KEY-----\n...\""},
        "application/json": {"schema": {"type": "array", "items": {"type": "object", "properties": {
            "identity_data": {"type": "object"}, "pubkey": {"type": "string"}}}}}}})
    @blp.response(200, DevauthBulkResultSchema)
    @blp.alt_response(415, description="Neither text/csv nor application/json.")
    def post(self):
        """Bulk preauthorization from a CSV or JSON file (not in Mender): one result per row"""
        ct = request.mimetype or ""
        if ct not in ("text/csv", "application/csv") and not core.is_json(ct):
            raise UnsupportedMediaType("Content-Type must be text/csv or application/json")
        data = request.get_data(cache=False)
        rows = bulk.parse_rows(data, bulk.detect_format(data, content_type=ct))
        return render.bulk_summary(list(services().devauth.preauthorize_rows(_tenant(), rows)))
