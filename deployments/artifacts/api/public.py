"""Signed links of the filesystem storage: artifact downloads (Range supported) and direct uploads.
No token: the HMAC signature in the query authorizes the request."""

from __future__ import annotations

from flask import Response, request, send_file
from flask.views import MethodView
from werkzeug.http import parse_range_header

from common.api import Blueprint
from common.app import services
from common.errors import NotFound
from deployments.artifacts.strings import content_disposition

blp = Blueprint("deployments_artifacts_download", __name__, url_prefix="/api/devices/v1/deployments/download",
                description="Signed artifact links (filesystem storage).")

ARTIFACT_MIMETYPE = "application/vnd.mender-artifact"


def _verified(method: str) -> tuple[str, str | None]:
    """(tenant, object) a valid signed link names."""
    artifacts = services().artifacts
    if artifacts.storage.kind != "filesystem":
        raise NotFound("not found")
    return artifacts.signer().verify(method, request.path, request.args)


@blp.route("/artifacts/<artifact_id>")
class Download(MethodView):
    @blp.response(200, description="The artifact file (206 for a Range request).")
    @blp.alt_response(403, description="The link expired or was tampered with.")
    def get(self, artifact_id):
        """Download an artifact through a signed link."""
        tenant, obj = _verified("GET")
        artifact, path = services().artifacts.file_for_download(tenant, artifact_id, obj)
        _ignore_unservable_range(request.environ)
        try:
            # the ETag names the object: a Range resume never splices two uploads under one id
            response = send_file(path, mimetype=ARTIFACT_MIMETYPE, conditional=True, etag=artifact.storage_key,
                                 max_age=0)
        except FileNotFoundError:
            raise NotFound("artifact file not found") from None
        # built here, not by send_file: a stored name may hold anything (names from before the
        # printable rule), and a header must still come out of it
        response.headers["Content-Disposition"] = content_disposition(f"{artifact.name}.mender")
        return response


def _ignore_unservable_range(environ: dict) -> None:
    """Drop a `Range` that is not one byte range: several ranges (`bytes=0-1,5-9`), another unit or
    a malformed value. werkzeug answers those 416, which RFC 9110 keeps for a set that cannot be
    satisfied; a server may ignore Range (14.2), so the whole file goes out (200) as for the
    configuration artifacts, rather than multipart/byteranges no Mender client asks for."""
    value = environ.get("HTTP_RANGE")
    if value is not None:
        parsed = parse_range_header(value)
        if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
            del environ["HTTP_RANGE"]


@blp.route("/uploads/<upload_id>")
class DirectUploadTarget(MethodView):
    @blp.response(200, description="Stored; now call …/directupload/{id}/complete.")
    @blp.alt_response(403, description="The link expired or was tampered with.")
    def put(self, upload_id):
        """The body is the artifact file (direct upload through a signed link)."""
        tenant, _ = _verified("PUT")
        services().artifacts.receive_direct_upload(tenant, upload_id, iter(lambda: request.stream.read(1 << 20), b""))
        return Response(status=200)
