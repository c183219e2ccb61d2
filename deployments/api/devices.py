"""Device API: next deployment, status reports, logs, configuration artifacts."""

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError

from common.api import (Blueprint, format_validation_messages, handler_view, json_response, read_body,
                        request_json, require_json_type)
from common.app import services
from common.auth import current_identity
from common.direct import Raw
from common.errors import BadRequest
from common.http import error_response
from common.jsonbody import parse_json_bytes
from deployments import model as m
from deployments.api import base_url, render
from deployments.artifacts.strings import content_disposition
from deployments.schemas import DeploymentLogSchema, DeviceStatusSchema, NextQueryArgsSchema, provides_from

blp = Blueprint("deployments_devices", __name__, url_prefix="/api/devices",
                description="Deployments: device API.")


# The poll is the fleet's hottest request: each handler below takes any werkzeug request and the
# caller, and returns (status, JSON body or None); the direct routes (common.direct) call it without
# Flask, the Flask views below (documentation, and MENDER_DIRECT_ROUTES=false) call it too.
NEXT_V2 = "/v2/deployments/device/deployments/next"
NEXT_V1 = "/v1/deployments/device/deployments/next"


def _next(context, req, identity, provides: dict, with_control_map: bool = False):
    # the link's host is read from the request only when there is a link to make (not for a 204)
    instructions = context.services.deployments.next_deployment(identity.tenant, identity.subject, provides,
                                                                lambda: base_url(req, context.config))
    if instructions is None:
        return 204, None
    return 200, Raw(render.instructions_json(instructions, with_control_map), "application/json")


def _provides(req, nested: bool) -> dict:
    try:
        return provides_from(request_json(req), nested=nested)
    except ValidationError as exc:
        raise BadRequest(format_validation_messages(exc.messages)) from None


_NEXT_QUERY = NextQueryArgsSchema()


def next_v2(context, req, identity):
    """POST v2: body `{"device_provides": {...}, "update_control_map": bool}`."""
    return _next(context, req, identity, _provides(req, nested=True), with_control_map=True)


def next_v1_post(context, req, identity):
    """POST v1: a flat map of the device's provides."""
    return _next(context, req, identity, _provides(req, nested=False))


def next_v1_get(context, req, identity):
    """GET v1: `?artifact_name=…&device_type=…` (other query parameters are ignored; the first of
    repeated ones counts, as webargs reads them)."""
    args = req.args
    try:
        query = _NEXT_QUERY.load({k: args[k] for k in ("artifact_name", "device_type") if k in args})
    except ValidationError as exc:
        raise BadRequest(format_validation_messages(exc.messages)) from None
    return _next(context, req, identity, {"artifact_name": query["artifact_name"],
                                          "device_type": query["device_type"]})


STATUS = "/v1/deployments/device/deployments/<string:deployment_id>/status"
_STATUS_SCHEMA = DeviceStatusSchema()
_STATUS_FIELDS = frozenset(("status", "substate"))
_REPORTABLE = frozenset(m.REPORTABLE)
_MAX_SUBSTATE = 1024  # DeviceStatusSchema's


def status_body(req) -> dict:
    """The status report's body, read as webargs reads it for DeviceStatusSchema (the Flask
    view's declaration, kept for the document): an empty body is `{}`, a body that is not
    declared as JSON 415, malformed JSON 400, unknown fields 400. What a device sends (an object
    with a reportable `status` and at most a short `substate`) is accepted here; anything else
    goes through the schema itself, so every error message is the schema's."""
    raw = read_body(req)
    if not raw.strip():
        data = {}
    else:
        require_json_type(req)
        data = parse_json_bytes(raw)
    if type(data) is dict and data.keys() <= _STATUS_FIELDS:
        status, substate = data.get("status"), data.get("substate", "")
        if type(status) is str and status in _REPORTABLE and type(substate) is str and len(substate) <= _MAX_SUBSTATE:
            return data
    try:
        return _STATUS_SCHEMA.load(data)
    except ValidationError as exc:  # as webargs names the location, and flask-smorest answers it
        raise BadRequest(format_validation_messages({"json": exc.messages})) from None


def report_status(context, req, identity, deployment_id: str, body: dict | None = None):
    """PUT v1 …/{id}/status: `{"status", "substate"}`; 204 (409 once the deployment is aborted).
    `body`: the body as the Flask view's webargs parsed it (the direct route parses it here)."""
    if body is None:
        body = status_body(req)
    context.services.deployments.report_status(identity.tenant, identity.subject, deployment_id,
                                               body["status"], body.get("substate"))
    return 204, None


# (method, path, handler), the paths with the blueprint's prefix
DIRECT_ROUTES = tuple((method, blp.url_prefix + rule, handler) for method, rule, handler in (
    ("POST", NEXT_V2, next_v2), ("POST", NEXT_V1, next_v1_post), ("GET", NEXT_V1, next_v1_get),
    ("PUT", STATUS, report_status)))


@blp.route(NEXT_V2)
class NextV2(MethodView):
    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def post(self):
        """Get the next deployment (body: device_provides and update_control_map)."""
        return handler_view(next_v2)


@blp.route(NEXT_V1)
class Next(MethodView):
    @blp.arguments(NextQueryArgsSchema, location="query")
    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def get(self, args):
        """Get the next deployment (query: artifact_name, device_type)."""
        return handler_view(next_v1_get)

    @blp.response(200, description="Deployment instructions.")
    @blp.alt_response(204, description="No update for the device.")
    def post(self):
        """Get the next deployment (body: a flat map of the device's provides)."""
        return handler_view(next_v1_post)


@blp.route(STATUS)
class Status(MethodView):
    # webargs parses the body here (the document's declaration, and the reference the direct
    # route's answers are compared with in tests/common/test_direct.py); the handler takes it as parsed
    @blp.arguments(DeviceStatusSchema)
    @blp.response(204, description="Status recorded.")
    def put(self, body, deployment_id):
        """Report the status of the device's deployment (409 once it is aborted)."""
        return handler_view(report_status, deployment_id=deployment_id, body=body)


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
