"""Device API: next deployment, status reports, logs, configuration artifacts."""

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError

from common.api import Blueprint, format_validation_messages, json_response, no_content, request_json
from common.app import services
from common.auth import current_identity
from common.errors import BadRequest
from common.http import error_response
from deployments.api import base_url, render
from deployments.artifacts.strings import content_disposition
from deployments.schemas import DeploymentLogSchema, DeviceStatusSchema, NextQueryArgsSchema, provides_from

blp = Blueprint("deployments_devices", __name__, url_prefix="/api/devices",
                description="Deployments: device API.")


def _next(provides: dict, with_control_map: bool = False):
    # the fleet's hottest path: the response is built here (flask-smorest passes a Response
    # through untouched), not by the response decorators, which only document it
    identity = current_identity()
    instructions = services().deployments.next_deployment(identity.tenant, identity.subject, provides, base_url())
    if instructions is None:
        return no_content()
    return json_response(render.instructions(instructions, with_control_map))


def _provides(nested: bool) -> dict:
    try:
        return provides_from(request_json(), nested=nested)
    except ValidationError as exc:
        raise BadRequest(format_validation_messages(exc.messages)) from None


@blp.route("/v2/deployments/device/deployments/next")
class NextV2(MethodView):
    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def post(self):
        """Get the next deployment (body: device_provides and update_control_map)."""
        return _next(_provides(nested=True), with_control_map=True)


@blp.route("/v1/deployments/device/deployments/next")
class Next(MethodView):
    @blp.arguments(NextQueryArgsSchema, location="query")
    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def get(self, args):
        """Get the next deployment (query: artifact_name, device_type)."""
        return _next({"artifact_name": args["artifact_name"], "device_type": args["device_type"]})

    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def post(self):
        """Get the next deployment (body: a flat map of the device's provides)."""
        return _next(_provides(nested=False))


@blp.route("/v1/deployments/device/deployments/<string:deployment_id>/status")
class Status(MethodView):
    @blp.arguments(DeviceStatusSchema)
    @blp.response(204, description="Status recorded.")
    def put(self, body, deployment_id):
        """Report the status of the device's deployment (409 once it is aborted)."""
        identity = current_identity()
        services().deployments.report_status(identity.tenant, identity.subject, deployment_id,
                                             body["status"], body.get("substate"))
        return no_content()


@blp.route("/v2/deployments/device/deployments/<string:deployment_id>/update_control_map")
class UpdateControlMap(MethodView):
    @blp.response(200, description="{\"id\", \"update_control_map\": {\"id\", \"priority\", \"states\"}}")
    def get(self, deployment_id):
        """The update control map in force for this device's deployment (404 without one)."""
        identity = current_identity()
        control_map = services().deployments.update_control_map(identity.tenant, identity.subject, deployment_id)
        return json_response({"id": deployment_id, "update_control_map": control_map})


@blp.route("/v1/deployments/device/deployments/<string:deployment_id>/log")
class Log(MethodView):
    @blp.arguments(DeploymentLogSchema)
    @blp.response(204, description="Log stored.")
    def put(self, body, deployment_id):
        """Upload the deployment log."""
        identity = current_identity()
        services().deployments.upload_log(identity.tenant, identity.subject, deployment_id, body["messages"])
        return None


ARTIFACT_MIMETYPE = "application/vnd.mender-artifact"


@blp.route("/v1/deployments/download/configuration/<deployment_id>/<path:device_type>/<device_id>")
class ConfigurationDownload(MethodView):
    @blp.response(200, description="The generated mender-configure artifact (206 for a Range request).")
    @blp.alt_response(400, description="The link's parameters are missing or malformed.")
    @blp.alt_response(403, description="The link expired or was tampered with.")
    @blp.alt_response(404, description="No such configuration deployment for this device.")
    @blp.alt_response(416, description="The range is outside the artifact.")
    def get(self, deployment_id, device_type, device_id):
        """Download a configuration deployment's artifact through the signed link of the device's poll"""
        tenant = services().artifacts.verify_server_link("GET", request.path, request.args)
        dep, artifact = services().deployments.configuration_artifact(tenant, deployment_id, device_type, device_id)
        return _ranged(artifact, f"{dep.artifact_name}.mender")


def _ranged(artifact, filename: str) -> Response:
    """The artifact's bytes, or the one byte range asked for (`Range: bytes=…`, honoured unless an
    `If-Range` names other bytes): a resumed download gets the rest of the same bytes."""
    headers = {"ETag": f'"{artifact.etag}"', "Accept-Ranges": "bytes", "Cache-Control": "no-store",
               "Content-Disposition": content_disposition(filename)}
    start, end, status = 0, artifact.size, 200
    ranges, if_range = request.range, request.if_range
    same_bytes = if_range.etag == artifact.etag if (if_range.etag or if_range.date) else True
    if ranges is not None and ranges.units == "bytes" and len(ranges.ranges) == 1 and same_bytes:
        span = ranges.range_for_length(artifact.size)
        if span is None:  # the JSON error, still naming the size (RFC 9110 15.5.17)
            return error_response(416, "requested range not satisfiable",
                                  headers={"Content-Range": f"bytes */{artifact.size}", "ETag": headers["ETag"]})
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{artifact.size}"
    headers["Content-Length"] = str(end - start)
    return Response(artifact.chunks(start, end), status=status, headers=headers, mimetype=ARTIFACT_MIMETYPE,
                    direct_passthrough=True)
