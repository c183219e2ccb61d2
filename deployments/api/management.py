"""Management API of deployments (v1 and v2)."""

import json

from flask import Response, stream_with_context, url_for
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import current_identity, visible_device_groups, visible_release_tags
from common.pagination import Page, paging_headers
from deployments.schemas import (AbortSchema, DeploymentIdsSchema, DeploymentsQueryArgsSchema,
                                 DeploymentsV2QueryArgsSchema, DeviceDeploymentsQueryArgsSchema,
                                 DeviceHistoryQueryArgsSchema, NewDeploymentForGroupSchema, NewDeploymentSchema)
from deployments.api import deployment, devices_with_image, history, render
from deployments.store import DeploymentQuery

blp = Blueprint("deployments_management", __name__, url_prefix="/api/management",
                description="Deployments: management API.")

V1 = "/v1/deployments/deployments"


def _svc():
    return services().deployments


def _tenant() -> str:
    return current_identity().tenant


_PHASE_RULES = ("failure_threshold", "failure_action", "success_threshold")
_RULES = _PHASE_RULES + ("maintenance_window", "update_control_map")


def _create(body: dict, **target):
    phases = [{"batch_size": p.get("batch_size"),
               "start_ts": p["start_ts"].timestamp() if p.get("start_ts") else None,
               **{k: p.get(k) for k in _PHASE_RULES}}
              for p in body.get("phases") or []] or None
    dep = _svc().create_deployment(
        _tenant(), name=body["name"], artifact_name=body["artifact_name"], phases=phases,
        retries=body.get("retries", 0), force_installation=body.get("force_installation", False),
        visible_groups=visible_device_groups(), visible_tags=visible_release_tags(),
        **{k: body.get(k) for k in _RULES}, **target)
    location = url_for("deployments_management.Deployment", deployment_id=dep.id, _external=False)
    return Response(status=201, headers={"Location": location})


def _list(args: dict):
    page = Page(args["page"], args["per_page"])
    query = DeploymentQuery(status=args.get("status"), type=args.get("type"), search=args.get("search"),
                            ids=args.get("id") or [], names=args.get("name") or [],
                            created_before=args.get("created_before"), created_after=args.get("created_after"),
                            sort_desc=args.get("sort", "desc") == "desc", skip=page.skip, limit=page.limit)
    deps, total = _svc().find_deployments(_tenant(), query)
    return [deployment(d) for d in deps], 200, paging_headers(page, len(deps), total=total)


@blp.route(V1)
class Deployments(MethodView):
    @blp.arguments(DeploymentsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args):
        """List deployments (status, search, created_before/after, paging)."""
        return _list(args)

    @blp.arguments(NewDeploymentSchema)
    @blp.response(201, description="Created; Location names it.")
    def post(self, body):
        """Create a deployment to a device list or to all accepted devices (phases and retries optional)."""
        target = {"devices": body.get("devices"), "all_devices": body.get("all_devices", False)}
        if body.get("filter_id") is not None:
            target = {"filter_id": body["filter_id"], "max_devices": body.get("max_devices")}
        elif body.get("filter") is not None:
            target = {"filter_terms": body["filter"], "max_devices": body.get("max_devices")}
        return _create(body, **target)


@blp.route(V1 + "/group/<string:name>")
class GroupDeployment(MethodView):
    @blp.arguments(NewDeploymentForGroupSchema)
    @blp.response(201, description="Created; Location names it.")
    def post(self, body, name):
        """Create a deployment to the accepted devices of a group."""
        return _create(body, group=name)


@blp.route(V1 + "/statistics/list")
class StatisticsList(MethodView):
    @blp.arguments(DeploymentIdsSchema)
    @blp.response(200)
    def post(self, body):
        """Statistics of several deployments."""
        return [render.statistics_entry(d) for d in _svc().statistics_list(_tenant(), body["deployment_ids"])]


@blp.route(V1 + "/<string:deployment_id>")
class Deployment(MethodView):
    @blp.response(200)
    def get(self, deployment_id):
        """A deployment."""
        return deployment(_svc().get_deployment(_tenant(), deployment_id))


@blp.route(V1 + "/<string:deployment_id>/status")
class DeploymentStatus(MethodView):
    @blp.arguments(AbortSchema)
    @blp.response(204, description="Aborted.")
    def put(self, body, deployment_id):
        """Abort a deployment."""
        _svc().abort(_tenant(), deployment_id, current_identity().subject)
        return None


@blp.route(V1 + "/<string:deployment_id>/statistics")
class Statistics(MethodView):
    @blp.response(200)
    def get(self, deployment_id):
        """Device counts per status."""
        return render.statistics_with_pause(_svc().get_deployment(_tenant(), deployment_id))


@blp.route(V1 + "/<string:deployment_id>/statistics/phases")
class PhaseStatistics(MethodView):
    @blp.response(200)
    def get(self, deployment_id):
        """Per-phase breakdown of a phased deployment (not in Mender): each phase's batch size,
        start, planned and joined devices, and their devices by status (`[]` without phases)."""
        return [render.phase_statistics(phase, stats)
                for phase, stats in _svc().phase_statistics(_tenant(), deployment_id)]


@blp.route(V1 + "/<string:deployment_id>/devices")
class DeploymentDevices(MethodView):
    @blp.response(200)
    def get(self, deployment_id):
        """Every device of the deployment with its status (not paged; see devices/list). Streamed:
        the device deployments are read a batch at a time, so a deployment to a million devices
        costs the worker one batch of memory."""
        tenant = _tenant()
        batches = _svc().each_device_deployment(tenant, deployment_id)

        def body():
            first = True
            yield "["
            for batch in batches:
                for item in devices_with_image(tenant, batch):
                    yield ("" if first else ",") + json.dumps(item, separators=(",", ":"))
                    first = False
            yield "]"
        return Response(stream_with_context(body()), mimetype="application/json")


@blp.route(V1 + "/<string:deployment_id>/devices/list")
class DeploymentDevicesList(MethodView):
    @blp.arguments(DeviceDeploymentsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, deployment_id):
        """The deployment's devices with their statuses, paged."""
        page = Page(args["page"], args["per_page"])
        dds, total = _svc().device_deployments(_tenant(), deployment_id, args.get("status"), page.skip, page.limit)
        return devices_with_image(_tenant(), dds), 200, paging_headers(page, len(dds), total=total)


@blp.route(V1 + "/<string:deployment_id>/device_list")
class DeviceList(MethodView):
    @blp.response(200)
    def get(self, deployment_id):
        """The ids of the devices the deployment targets."""
        return _svc().device_ids(_tenant(), deployment_id)


@blp.route(V1 + "/<string:deployment_id>/devices/<string:device_id>/log")
class DeviceLog(MethodView):
    @blp.response(200, content_type="text/plain")
    def get(self, deployment_id, device_id):
        """A device's deployment log, as text."""
        return Response(render.log_text(_svc().device_log(_tenant(), deployment_id, device_id)),
                        mimetype="text/plain")


@blp.route(V1 + "/devices/<string:device_id>")
class DeviceDeployments(MethodView):
    @blp.arguments(DeviceHistoryQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, device_id):
        """The device's deployment history."""
        page = Page(args["page"], args["per_page"])
        pairs, total = _svc().device_history(_tenant(), device_id, args.get("status"), page.skip, page.limit)
        body = history(_tenant(), pairs)
        return body, 200, paging_headers(page, len(body), total=total)

    @blp.response(204, description="Aborted.")
    def delete(self, device_id):
        """Abort every active and pending deployment of the device."""
        _svc().abort_device(_tenant(), device_id)
        return None


@blp.route(V1 + "/devices/<string:device_id>/history")
class DeviceHistory(MethodView):
    @blp.response(204, description="History reset.")
    def delete(self, device_id):
        """Forget the device's finished deployments, making it eligible again."""
        _svc().reset_history(_tenant(), device_id)
        return None


@blp.route("/v2/deployments/deployments")
class DeploymentsV2(MethodView):
    @blp.arguments(DeploymentsV2QueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args):
        """List deployments (id and name filters, paging)."""
        return _list(args)

    @blp.arguments(NewDeploymentSchema)
    @blp.response(201, description="Created; Location names it.")
    def post(self, body):
        """Create a dynamic deployment to an inventory filter (saved `filter_id` or inline `filter`)."""
        if body.get("filter_id") is not None:
            target = {"filter_id": body["filter_id"]}
        elif body.get("filter") is not None:
            target = {"filter_terms": body["filter"]}
        else:
            target = {"devices": body.get("devices"), "all_devices": body.get("all_devices", False)}
        if "filter_id" in target or "filter_terms" in target:
            target["max_devices"] = body.get("max_devices")
        return _create(body, **target)
