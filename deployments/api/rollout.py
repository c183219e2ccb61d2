"""Management API of rollout control: pause, resume, continue to the next phase, the deployment's
history, failure insight, and Mender's update control map changes (PATCH)."""

from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import current_identity
from common.pagination import Page, PaginationQueryArgsSchema, paging_headers
from deployments.api import render
from deployments.schemas import InsightsQueryArgsSchema, UpdateControlMapPatchSchema

blp = Blueprint("deployments_rollout", __name__, url_prefix="/api/management",
                description="Deployments: rollout control (pause, resume, continue, history, update control maps).")

V1 = "/v1/deployments/deployments"
V2 = "/v2/deployments/deployments"


def _svc():
    return services().deployments


def _who() -> tuple[str, str]:
    identity = current_identity()
    return identity.tenant, identity.subject


@blp.route(V2 + "/<string:deployment_id>/pause")
class Pause(MethodView):
    @blp.response(204, description="Paused: no new device starts it; devices already installing finish.")
    def post(self, deployment_id):
        """Pause a deployment (409 when finished or already paused)."""
        tenant, actor = _who()
        _svc().pause(tenant, deployment_id, actor)


@blp.route(V2 + "/<string:deployment_id>/resume")
class Resume(MethodView):
    @blp.response(204, description="Resumed.")
    def post(self, deployment_id):
        """Resume a paused deployment (409 when finished or not paused)."""
        tenant, actor = _who()
        _svc().resume(tenant, deployment_id, actor)


@blp.route(V2 + "/<string:deployment_id>/continue")
class Continue(MethodView):
    @blp.response(200, description="The phase opened: {\"phase\": index}.")
    def post(self, deployment_id):
        """Open the next phase now, before its start time or success threshold (409 without one)."""
        tenant, actor = _who()
        return {"phase": _svc().continue_phase(tenant, deployment_id, actor)}


@blp.route(V2 + "/<string:deployment_id>/history")
class History(MethodView):
    @blp.arguments(PaginationQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, deployment_id):
        """The deployment's history: automatic decisions and operators' actions, oldest first."""
        page = Page(args["page"], args["per_page"])
        events, total = _svc().events(current_identity().tenant, deployment_id, page.skip, page.limit)
        return [render.event(e) for e in events], 200, paging_headers(page, len(events), total=total)


@blp.route(V2 + "/<string:deployment_id>/insights")
class Insights(MethodView):
    @blp.arguments(InsightsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args, deployment_id):
        """Why devices failed: attribute values ranked by how strongly they separate failed from
        succeeded devices, and the failed devices' most common error lines."""
        result = _svc().insights(current_identity().tenant, deployment_id, args.get("attribute"), args["limit"],
                                 args["error_limit"])
        return render.insights(result)


@blp.route(V1 + "/<string:deployment_id>")
class DeploymentControlMap(MethodView):
    @blp.arguments(UpdateControlMapPatchSchema)
    @blp.response(204, description="The map is replaced; devices read it at their next check.")
    def patch(self, body, deployment_id):
        """Replace the update control map of a deployment (409 when it was created without one)."""
        tenant, actor = _who()
        _svc().set_control_map(tenant, deployment_id, body["update_control_map"], actor)


@blp.route(V1 + "/<string:deployment_id>/devices/<string:device_id>")
class DeviceControlMap(MethodView):
    @blp.arguments(UpdateControlMapPatchSchema)
    @blp.response(204, description="The device's map is replaced.")
    def patch(self, body, deployment_id, device_id):
        """Set the update control map of one device of a deployment (404 when the device has no
        unfinished part in it; 409 when the deployment has no map)."""
        tenant, actor = _who()
        _svc().set_control_map(tenant, deployment_id, body["update_control_map"], actor, device_id=device_id)
