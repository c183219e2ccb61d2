"""Management API (Mender's iot-manager management v1): integrations, their credentials, the events log."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from common.api import Blueprint, no_content
from common.app import services
from common.auth import current_identity
from common.errors import BadRequest
from common.pagination import Page, PaginationQueryArgsSchema, paging_headers
from iotmanager.api import empty
from iotmanager.api.render import render_event, render_integration
from iotmanager.schemas import (IotManagerCredentialsSchema, IotManagerDeviceStateSchema, IotManagerEventSchema,
                                IotManagerEventsQueryArgsSchema, IotManagerIntegrationSchema)

PREFIX = "/api/management/v1/iot-manager"

blp = Blueprint("iotmanager_management", __name__, url_prefix=PREFIX,
                description="Outbound events (webhooks): integrations and the events log.")


def _integration_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest("integration ID must be a valid UUID") from None


@blp.route("/integrations")
class Integrations(MethodView):
    @blp.arguments(PaginationQueryArgsSchema, location="query")
    @blp.response(200, IotManagerIntegrationSchema(many=True))
    def get(self, args):
        """The organization's integrations, oldest first (secrets shown as `<omitted>`)"""
        page = Page(args["page"], args["per_page"])
        items = services().iotmanager.list_integrations(current_identity().tenant, page.page, page.per_page)
        return [render_integration(i) for i in items], 200, paging_headers(page, len(items))

    @blp.arguments(IotManagerIntegrationSchema)
    @blp.response(201, description="Registered; `Location` names it.")
    @blp.alt_response(409, description="The organization has as many integrations as allowed.")
    def post(self, body):
        """Register a webhook"""
        integration = services().iotmanager.create_integration(
            current_identity().tenant, body["provider"], body["credentials"], body.get("description", ""))
        return empty(201, {"Location": f"{PREFIX}/integrations/{integration.id}"})


@blp.route("/integrations/<integration_id>")
class IntegrationById(MethodView):
    @blp.response(200, IotManagerIntegrationSchema)
    def get(self, integration_id):
        """One integration"""
        return render_integration(services().iotmanager.get_integration(
            current_identity().tenant, _integration_id(integration_id)))

    @blp.response(204, description="Removed; its undelivered events are given up.")
    def delete(self, integration_id):
        """Remove an integration"""
        services().iotmanager.delete_integration(current_identity().tenant, _integration_id(integration_id))
        return no_content()


@blp.route("/integrations/<integration_id>/credentials")
class IntegrationCredentials(MethodView):
    @blp.arguments(IotManagerCredentialsSchema)
    @blp.response(204, description="Replaced.")
    def put(self, body, integration_id):
        """Replace an integration's URL and secret"""
        services().iotmanager.set_credentials(current_identity().tenant, _integration_id(integration_id), body)
        return no_content()


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(IotManagerEventsQueryArgsSchema, location="query")
    @blp.response(200, IotManagerEventSchema(many=True))
    def get(self, args):
        """Recorded events, newest first, with each delivery's outcome and attempts"""
        page = Page(args["page"], args["per_page"])
        integration = args.get("integration_id")
        events = services().iotmanager.list_events(current_identity().tenant, str(integration) if integration else None,
                                                   page.page, page.per_page)
        return [render_event(e) for e in events], 200, paging_headers(page, len(events))


@blp.route("/devices/<device_id>")
class DeviceIntegrations(MethodView):
    @blp.response(204, description="Never: no integration of this server registers devices.")
    @blp.alt_response(404, description="The device has no integration that keeps device state.")
    def delete(self, device_id):
        """Unregister a device from its IoT Hub / IoT Core integrations (none here: 404)"""
        services().iotmanager.device_state(current_identity().tenant, device_id)


@blp.route("/devices/<device_id>/state")
class DeviceStates(MethodView):
    @blp.response(200, IotManagerDeviceStateSchema)
    @blp.alt_response(404, description="The device has no integration that keeps device state.")
    def get(self, device_id):
        """A device's desired and reported states per integration (none here: 404)"""
        services().iotmanager.device_state(current_identity().tenant, device_id)


@blp.route("/devices/<device_id>/state/<integration_id>")
class DeviceState(MethodView):
    @blp.response(200, IotManagerDeviceStateSchema)
    @blp.alt_response(404, description="The device has no integration that keeps device state.")
    def get(self, device_id, integration_id):
        """A device's state in one integration (none here: 404)"""
        services().iotmanager.device_state(current_identity().tenant, device_id)

    @blp.arguments(IotManagerDeviceStateSchema)
    @blp.response(200, IotManagerDeviceStateSchema)
    @blp.alt_response(404, description="The device has no integration that keeps device state.")
    def put(self, body, device_id, integration_id):
        """Replace a device's desired state in one integration (none here: 404)"""
        services().iotmanager.device_state(current_identity().tenant, device_id)
