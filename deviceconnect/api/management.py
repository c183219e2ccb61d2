"""Management API: a device's connection state, Mender client commands, file transfer."""

from __future__ import annotations

import os

from flask import Response, request
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import current_identity
from common.errors import BadRequest
from deviceconnect import filetransfer as ft
from deviceconnect import protocol as p
from deviceconnect import service as s
from deviceconnect.schemas import ConnectionStateSchema, DownloadQueryArgsSchema

blp = Blueprint("deviceconnect_management", __name__, url_prefix="/api/management/v1/deviceconnect",
                description="Remote access to devices: connection state, terminal, port forwarding, file transfer.")

_MAX_ID = 128


def _device_id(device_id: str) -> str:
    if not device_id or len(device_id) > _MAX_ID:
        raise BadRequest("invalid device id")
    return device_id


@blp.route("/devices/<id>")
class Device(MethodView):
    @blp.response(200, ConnectionStateSchema)
    @blp.alt_response(404, description="No such device.")
    def get(self, id):
        """The device's connection state: `connected`, `disconnected`, or `unknown` (never connected)"""
        return services().deviceconnect.get_device(current_identity().tenant, _device_id(id))


def _client_command(device_id: str, command: str):
    identity = current_identity()
    services().deviceconnect.send_client_command(identity.tenant, identity.subject, _device_id(device_id), command)
    return Response(status=202)


@blp.route("/devices/<id>/check-update")
class CheckUpdate(MethodView):
    @blp.response(202, description="The device was asked to check for an update.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    def post(self, id):
        """Make the Mender client on the device check for an update now"""
        return _client_command(id, p.CHECK_UPDATE)


@blp.route("/devices/<id>/send-inventory")
class SendInventory(MethodView):
    @blp.response(202, description="The device was asked to send its inventory.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    def post(self, id):
        """Make the Mender client on the device send its inventory now"""
        return _client_command(id, p.SEND_INVENTORY)


def _channel(device_id: str):
    identity = current_identity()
    service = services().deviceconnect
    service.connected_device(identity.tenant, device_id)
    timeout = service.config["DEVICECONNECT_FILE_TRANSFER_TIMEOUT_SECONDS"]
    return identity, service, ft.Channel(service.relay, identity.tenant, device_id, identity.subject, timeout)


@blp.route("/devices/<id>/download")
class Download(MethodView):
    @blp.arguments(DownloadQueryArgsSchema, location="query")
    @blp.response(200, description="The file, streamed (`X-MEN-File-Path`, `-UID`, `-GID`, `-Mode`, `-Size`).")
    @blp.alt_response(400, description="Not a regular file, or the device refused.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    @blp.alt_response(413, description="Larger than DEVICECONNECT_FILE_TRANSFER_MAX_SIZE.")
    def get(self, args, id):
        """Download a file from the device"""
        identity, service, channel = _channel(_device_id(id))
        path = args["path"]
        service.hooks(s.DOWNLOAD_FILE, identity.tenant, identity.subject, id, path=path)
        limit = service.config["DEVICECONNECT_FILE_TRANSFER_MAX_SIZE"]
        channel.__enter__()
        try:
            channel.handshake()
            info = channel.stat(path)
            if not ft.is_regular(info.mode):
                raise BadRequest("path is not a regular file")
            if info.size is not None and info.size > limit:
                raise ft.TooLarge(f"the file is larger than the transfer limit ({limit} bytes)")
            chunks = channel.download(path, limit)
            first = next(chunks, b"")  # errors opening the file are still a 4xx here
        except BaseException:
            channel.__exit__(None, None, None)
            raise

        def body():
            try:
                if first:
                    yield first
                yield from chunks
            finally:
                channel.__exit__(None, None, None)

        headers = {"Content-Disposition": f'attachment; filename="{_quoted(os.path.basename(info.path))}"',
                   "X-MEN-File-Path": _header_safe(info.path)}
        for name, value in (("UID", info.uid), ("GID", info.gid), ("Size", info.size)):
            if value is not None:
                headers[f"X-MEN-File-{name}"] = str(value)
        headers["X-MEN-File-Mode"] = format(info.mode, "o")
        return Response(body(), status=200, mimetype="application/octet-stream", headers=headers,
                        direct_passthrough=True)


def _header_safe(value: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in value)


def _quoted(name: str) -> str:
    return _header_safe(name).replace("\\", "_").replace('"', "_")


@blp.route("/devices/<id>/upload")
class Upload(MethodView):
    @blp.response(201, description="The file is on the device.")
    @blp.alt_response(400, description="Malformed form, or the device refused.")
    @blp.alt_response(404, description="No such device.")
    @blp.alt_response(409, description="The device is not connected.")
    @blp.alt_response(413, description="Larger than DEVICECONNECT_FILE_TRANSFER_MAX_SIZE.")
    def put(self, id):
        """Upload a file to the device: multipart `path`, optional `uid`, `gid`, `mode` (octal), then `file`"""
        from deployments.artifacts.multipart import MultipartReader
        if request.mimetype != "multipart/form-data":
            raise BadRequest("Content-Type must be multipart/form-data")
        identity, service, channel = _channel(_device_id(id))
        reader = MultipartReader(request.stream, request.mimetype_params.get("boundary", ""))
        fields: dict[str, str] = {}
        part = reader.next_part()
        while part is not None and part.name != "file":
            if part.name in ("path", "uid", "gid", "mode"):
                fields[part.name] = reader.value()
            part = reader.next_part()
        if part is None:
            raise BadRequest("file: missing (the file must come after the other fields)")
        upload = _upload_request(fields, part.filename)
        service.hooks(s.UPLOAD_FILE, identity.tenant, identity.subject, id, path=upload["path"])
        limit = service.config["DEVICECONNECT_FILE_TRANSFER_MAX_SIZE"]
        with channel:
            channel.handshake()
            channel.upload(upload, reader.chunks(), limit)
        return Response(status=201)


def _upload_request(fields: dict[str, str], filename: str | None) -> dict:
    """The `put_file` body for mender-connect (Go's wsft.UploadRequest)."""
    path = fields.get("path", "")
    if not path or len(path) > 4096:
        raise BadRequest("path: required")
    out: dict = {"path": path}
    if filename:
        out["src_path"] = filename[:4096]
    for name in ("uid", "gid"):
        if name in fields:
            try:
                value = int(fields[name])
            except ValueError:
                raise BadRequest(f"{name}: must be an integer") from None
            if not 0 <= value < 2 ** 32:
                raise BadRequest(f"{name}: out of range")
            out[name] = value
    if "mode" in fields:
        try:
            mode = int(fields["mode"], 8)
        except ValueError:
            raise BadRequest("mode: must be an octal number") from None
        if not 0 <= mode < 2 ** 32:
            raise BadRequest("mode: out of range")
        out["mode"] = mode
    return out
