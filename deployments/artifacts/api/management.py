"""Management API v1: artifacts (upload, list, get, edit, delete, download link, direct upload, generate)."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView
from marshmallow import ValidationError

from common.api import Blueprint, format_validation_messages, request_json
from common.app import services
from common.errors import BadRequest
from common.pagination import Page, paging_headers
from deployments.artifacts.api import (base_url, caller_tenant, conflict_answered, multipart_reader, parse_sort,
                                       render, string_filter)
from deployments.artifacts.schemas import (ArtifactSchema, ArtifactsListQueryArgsSchema, ArtifactsV1QueryArgsSchema,
                                           ArtifactUpdateSchema, DirectUploadMetadataSchema, LinkSchema,
                                           StorageLimitSchema, UploadLinkSchema)
from deployments.artifacts.service import parse_artifact_id

blp = Blueprint("deployments_artifacts", __name__, url_prefix="/api/management/v1/deployments",
                description="Artifacts: upload, listing and storage (management API v1).")

ARTIFACT_LOCATION = "/api/management/v1/deployments/artifacts/{id}"
UPLOAD_FIELDS = ("size", "description", "artifact_id")


def upload_from_request(tenant: str, allow_artifact_id: bool = True):
    """Read the multipart upload (fields, then `artifact` last) and hand the file on as it arrives."""
    reader = multipart_reader()
    fields: dict[str, str] = {}
    while True:
        part = reader.next_part()
        if part is None:
            raise BadRequest("artifact: missing (it must be the last part of the request)")
        if part.name == "artifact":
            break
        value = reader.value()
        if part.name in UPLOAD_FIELDS:
            fields[part.name] = value
    size = None
    if fields.get("size", "").strip():
        try:
            size = int(fields["size"])
        except ValueError:
            raise BadRequest("size: must be an integer") from None
    artifact_id = parse_artifact_id(fields.get("artifact_id")) if allow_artifact_id else None

    def chunks():
        yield from reader.chunks()
        reader.finish()

    with conflict_answered():
        record = services().artifacts.upload(tenant, chunks(), description=fields.get("description", ""),
                                             artifact_id=artifact_id, declared_size=size)
    return Response(status=201, headers={"Location": ARTIFACT_LOCATION.format(id=record.id)})


@blp.route("/artifacts")
class Artifacts(MethodView):
    @blp.arguments(ArtifactsV1QueryArgsSchema, location="query")
    @blp.response(200, ArtifactSchema(many=True))
    def get(self, args):
        """List all artifacts (deprecated in Mender, kept for mender-cli)."""
        items, _ = services().artifacts.list(
            caller_tenant(), name=string_filter(args.get("name")),
            description=string_filter(args.get("description")), device_type=string_filter(args.get("device_type")))
        return [render.artifact(a) for a in items]

    @blp.response(201, description="Artifact uploaded; `Location` names it.")
    @blp.alt_response(400, description="Not a valid artifact, or a malformed request.")
    @blp.alt_response(409, description="An artifact with the same name and depends exists.")
    @blp.alt_response(413, description="Larger than DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE.")
    def post(self):
        """Upload an artifact: multipart `size`, `description`, optional `artifact_id`, then `artifact`."""
        return upload_from_request(caller_tenant())


@blp.route("/artifacts/list")
class ArtifactsList(MethodView):
    @blp.arguments(ArtifactsListQueryArgsSchema, location="query")
    @blp.response(200, ArtifactSchema(many=True))
    def get(self, args):
        """A page of artifacts, with `X-Total-Count` and `Link`."""
        page = Page(args["page"], args["per_page"])
        items, total = services().artifacts.list(
            caller_tenant(), name=string_filter(args.get("name")),
            description=string_filter(args.get("description")), device_type=string_filter(args.get("device_type")),
            sort=parse_sort(args.get("sort"), ("name", "modified")), skip=page.skip, limit=page.limit)
        return [render.artifact(a) for a in items], paging_headers(page, len(items), total)


@blp.route("/artifacts/directupload")
class DirectUpload(MethodView):
    @blp.response(200, UploadLinkSchema)
    def post(self):
        """A link to PUT an artifact to the storage directly, then call `…/complete`."""
        return render.direct_upload(services().artifacts.request_direct_upload(caller_tenant(),
                                                                                base_url()))


@blp.route("/artifacts/directupload/<upload_id>/complete")
class DirectUploadComplete(MethodView):
    @blp.response(202, description="The uploaded artifact is parsed and registered.")
    @blp.alt_response(400, description="Nothing uploaded yet, or not a valid artifact.")
    @blp.alt_response(404, description="No pending direct upload with this id.")
    def post(self, upload_id):
        """Parse the directly uploaded file and register it (synchronously)."""
        if request.get_data(cache=True).strip():
            try:  # validated only: the server always parses the uploaded file itself
                DirectUploadMetadataSchema().load(_json_object())
            except ValidationError as exc:
                raise BadRequest(format_validation_messages(exc.messages)) from None
        with conflict_answered():
            services().artifacts.complete_direct_upload(caller_tenant(), upload_id)
        return Response(status=202)


def _json_object() -> dict:
    body = request_json()
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


@blp.route("/artifacts/generate")
class GenerateArtifact(MethodView):
    @blp.response(201, description="The artifact was generated; `Location` names it.")
    def post(self):
        """Build a single-file artifact from an uploaded file: multipart `name`, `description`,
        `device_types_compatible` (repeat or comma-separated), `type`=single_file, `args` (JSON with
        `dest_dir`), then `file`."""
        tenant = caller_tenant()
        reader = multipart_reader()
        fields: dict[str, list[str]] = {}
        while True:
            part = reader.next_part()
            if part is None:
                raise BadRequest("file: missing (it must be the last part of the request)")
            if part.name == "file":
                filename = part.filename
                break
            fields.setdefault(part.name, []).append(reader.value())

        def chunks():
            yield from reader.chunks()
            reader.finish()

        device_types = [t.strip() for v in fields.get("device_types_compatible", []) for t in v.split(",") if t.strip()]
        with conflict_answered():
            record = services().artifacts.generate(
                tenant, name=(fields.get("name") or [""])[0], description=(fields.get("description") or [""])[0],
                device_types=device_types, update_type=(fields.get("type") or [""])[0],
                args=(fields.get("args") or [""])[0], filename=filename, chunks=chunks())
        return Response(status=201, headers={"Location": ARTIFACT_LOCATION.format(id=record.id)})


@blp.route("/artifacts/<artifact_id>")
class ArtifactById(MethodView):
    @blp.response(200, ArtifactSchema)
    def get(self, artifact_id):
        """One artifact."""
        return render.artifact(services().artifacts.get(caller_tenant(), artifact_id))

    @blp.arguments(ArtifactUpdateSchema)
    @blp.response(204)
    @blp.alt_response(422, description="The artifact is used by an active deployment.")
    def put(self, body, artifact_id):
        """Edit the description."""
        services().artifacts.edit(caller_tenant(), artifact_id, body["description"])

    @blp.response(204)
    @blp.alt_response(409, description="The artifact is used by an active deployment.")
    def delete(self, artifact_id):
        """Delete the artifact and its file."""
        services().artifacts.delete(caller_tenant(), artifact_id)


@blp.route("/artifacts/<artifact_id>/download")
class ArtifactDownload(MethodView):
    @blp.response(200, LinkSchema)
    def get(self, artifact_id):
        """An expiring link to download the artifact file."""
        return render.link(services().artifacts.download_link(caller_tenant(), artifact_id, base_url()))


@blp.route("/limits/storage")
class StorageLimit(MethodView):
    @blp.response(200, StorageLimitSchema)
    def get(self):
        """The organization's storage limit (0: unlimited) and usage, in bytes."""
        artifacts, tenant = services().artifacts, caller_tenant()
        return render.storage_usage(artifacts.storage_limit(tenant), artifacts.storage_usage(tenant))
