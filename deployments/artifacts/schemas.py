"""Marshmallow schemas of the artifacts API (bodies validate with unknown=RAISE; query args ignore extras)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from common.pagination import PaginationQueryArgsSchema


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE


class ArtifactsV1QueryArgsSchema(_Query):
    name = fields.String(metadata={"description": "Artifact name; `foo*` matches by prefix."})
    description = fields.String()
    device_type = fields.String()


class ArtifactsListQueryArgsSchema(ArtifactsV1QueryArgsSchema, PaginationQueryArgsSchema):
    class Meta:
        unknown = EXCLUDE
    sort = fields.String(metadata={"description": "name:asc (default), name:desc, modified:asc, modified:desc"})


class ArtifactsV2QueryArgsSchema(PaginationQueryArgsSchema):
    class Meta:
        unknown = EXCLUDE
    name = fields.List(fields.String(), metadata={"description": "Names (repeat), or one prefix `foo*`."})
    description = fields.String()
    device_type = fields.String()


class ReleasesV1QueryArgsSchema(_Query):
    name = fields.String()
    description = fields.String()
    device_type = fields.String()
    update_type = fields.String()


class ReleasesListQueryArgsSchema(ReleasesV1QueryArgsSchema, PaginationQueryArgsSchema):
    class Meta:
        unknown = EXCLUDE
    sort = fields.String()


class ReleasesV2QueryArgsSchema(PaginationQueryArgsSchema):
    class Meta:
        unknown = EXCLUDE
    name = fields.String(metadata={"description": "Release name prefix."})
    tag = fields.List(fields.String(), metadata={"description": "Tags (repeat; any matches)."})
    update_type = fields.String()
    sort = fields.String()


class ReleaseDeleteQueryArgsSchema(_Query):
    name = fields.List(fields.String(), required=True)


class ArtifactUpdateSchema(Schema):
    description = fields.String(load_default="")


class ReleaseUpdateSchema(Schema):
    notes = fields.String(load_default="")


class DirectUploadMetadataSchema(Schema):
    size = fields.Integer()
    updates = fields.List(fields.Dict())


class ArtifactSchema(Schema):
    id = fields.String()
    name = fields.String()
    description = fields.String()
    device_types_compatible = fields.List(fields.String())
    info = fields.Dict()
    signed = fields.Boolean()
    updates = fields.List(fields.Dict())
    artifact_provides = fields.Dict()
    artifact_depends = fields.Dict()
    clears_artifact_provides = fields.List(fields.String())
    size = fields.Integer()
    modified = fields.String()


class LinkSchema(Schema):
    uri = fields.String()
    expire = fields.String()


class UploadLinkSchema(LinkSchema):
    id = fields.String()


class StorageLimitSchema(Schema):
    limit = fields.Integer()
    usage = fields.Integer()


class StorageLimitUpdateSchema(Schema):
    limit = fields.Integer(required=True, strict=True, validate=validate.Range(min=0),
                           metadata={"description": "Bytes; 0: unlimited."})
    usage = fields.Integer(metadata={"description": "Ignored (the usage is measured)."})
