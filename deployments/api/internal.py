"""Internal API of deployments (no authentication: serve it only to your own network)."""

from flask import Response
from flask.views import MethodView

from common.api import Blueprint, request_json
from common.app import services
from common.errors import BadRequest
from common.pagination import Page, paging_headers
from deployments.api import deployment, history, render
from deployments.schemas import (ConfigurationDeploymentRequestSchema, DeploymentsQueryArgsSchema,
                                 DeviceDeploymentIdsQueryArgsSchema, DeviceHistoryQueryArgsSchema,
                                 LastDeviceDeploymentReqSchema)
from deployments.store import DeploymentQuery

blp = Blueprint("deployments_internal_api", __name__, url_prefix="/api/internal/v1/deployments",
                description="Deployments: internal API.")


@blp.route("/tenants")
class Tenants(MethodView):
    @blp.response(201, description="Nothing to provision: every record carries its organization's id.")
    @blp.alt_response(400, description="Malformed body.")
    def post(self):
        """Provision an organization (a no-op here; tenantadm creates organizations)"""
        body = request_json()
        if not isinstance(body, dict) or not isinstance(body.get("tenant_id"), str):
            raise BadRequest("tenant_id: required string")
        return None


@blp.route("/tenants/<tenant:tenant_id>/deployments")
class TenantDeployments(MethodView):
    @blp.arguments(DeploymentsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, tenant_id):
        """A tenant's deployments."""
        page = Page(args["page"], args["per_page"])
        query = DeploymentQuery(status=args.get("status"), type=args.get("type"), search=args.get("search"),
                                created_before=args.get("created_before"), created_after=args.get("created_after"),
                                sort_desc=args.get("sort", "desc") == "desc", skip=page.skip, limit=page.limit)
        deps, total = services().deployments.find_deployments(tenant_id, query)
        return [deployment(d) for d in deps], 200, paging_headers(page, len(deps), total=total)


@blp.route("/tenants/<tenant:tenant_id>/deployments/devices")
class DeviceDeploymentsByIds(MethodView):
    @blp.arguments(DeviceDeploymentIdsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, tenant_id):
        """Device deployments by id."""
        return history(tenant_id, services().deployments.device_deployments_by_ids(tenant_id, args.get("id") or []))


@blp.route("/tenants/<tenant:tenant_id>/deployments/devices/<string:device_id>")
class DeviceDeployments(MethodView):
    @blp.arguments(DeviceHistoryQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, tenant_id, device_id):
        """A device's deployment history."""
        page = Page(args["page"], args["per_page"])
        pairs, total = services().deployments.device_history(tenant_id, device_id, args.get("status"),
                                                             page.skip, page.limit)
        body = history(tenant_id, pairs)
        return body, 200, paging_headers(page, len(body), total=total)

    @blp.response(204, description="Removed.")
    def delete(self, tenant_id, device_id):
        """Remove a (decommissioned) device from every deployment."""
        services().deployments.decommission_device(tenant_id, device_id)
        return None


@blp.route("/tenants/<tenant:tenant_id>/devices/deployments/last")
class LastDeviceDeployments(MethodView):
    @blp.arguments(LastDeviceDeploymentReqSchema)
    @blp.response(200)
    def post(self, body, tenant_id):
        """The last device deployment of each device."""
        dds = services().deployments.last_device_deployments(tenant_id, body["device_ids"])
        return {"device_deployment_last_statuses": [render.last_status(dd) for dd in dds]}


@blp.route("/tenants/<tenant:tenant_id>/configuration/deployments/<string:deployment_id>/devices/<string:device_id>")
class ConfigurationDeployment(MethodView):
    @blp.arguments(ConfigurationDeploymentRequestSchema)
    @blp.response(201, description="The configuration deployment is made (`Location` names it).")
    @blp.alt_response(400, description="Invalid id, name, configuration or retries.")
    @blp.alt_response(409, description="A deployment with this id exists.")
    def post(self, body, tenant_id, deployment_id, device_id):
        """Deploy a configuration to one device (its artifact is generated when the device downloads it)"""
        dep = services().deployments.create_configuration_deployment(
            tenant_id, deployment_id, device_id, name=body["name"],
            configuration=body["configuration"], retries=body["retries"],
            update_control_map=body.get("update_control_map"))
        return Response(status=201, headers={"Location": f"/api/management/v1/deployments/deployments/{dep.id}"})
