"""Request schemas of the auditlogs APIs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.pagination import MAX_PER_PAGE
from auditlogs.service import MAX_EXPORT

_ID = validate.Length(min=1, max=256)
_TIME = validate.Range(min=0, max=2**40)


class FilterQueryArgsSchema(Schema):
    created_before = fields.Integer(validate=_TIME, metadata={"description": "Entries at or before this Unix time."})
    created_after = fields.Integer(validate=_TIME, metadata={"description": "Entries at or after this Unix time."})
    actor_id = fields.String(validate=_ID)
    actor_type = fields.String(validate=validate.OneOf(["user", "device", "system"]))
    actor_email = fields.String(validate=_ID)
    object_id = fields.String(validate=_ID)
    object_type = fields.String(validate=validate.Length(min=1, max=64))
    object_deployment_name = fields.String(validate=_ID)
    sort = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc"]),
                         metadata={"description": "By time: `desc` (newest first, the default) or `asc`."})


class LogsQueryArgsSchema(FilterQueryArgsSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**9))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class ExportQueryArgsSchema(FilterQueryArgsSchema):
    limit = fields.Integer(load_default=20_000, validate=validate.Range(min=1, max=MAX_EXPORT),
                           metadata={"description": f"Entries at most (default 20000, at most {MAX_EXPORT})."})
    format_separator = fields.String(load_default=".", validate=validate.Length(min=1, max=4),
                                     metadata={"description": "Separates nested field names in the CSV header."})
    ignore = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                         validate=validate.Length(max=32),
                         metadata={"description": "Columns to leave out (e.g. `actor.id`); repeatable."})


class ActorSchema(Schema):
    id = fields.String(required=True, validate=_ID)
    type = fields.String(required=True, validate=validate.OneOf(["user", "device", "system"]))
    email = fields.String(validate=_ID)
    identity_data = fields.String(validate=validate.Length(max=1024))


class ObjectSchema(Schema):
    id = fields.String(load_default="", validate=validate.Length(max=256))
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(validate=_ID)
    user = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    deployment = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    artifact = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    device = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))
    tenant = fields.Dict(keys=fields.String(validate=validate.Length(max=64)))


class AuditLogNewSchema(Schema):
    actor = fields.Nested(ActorSchema, required=True)
    time = fields.AwareDateTime(metadata={"description": "When it happened (default: now)."})
    action = fields.String(required=True, validate=validate.Length(min=1, max=64))
    object = fields.Nested(ObjectSchema, required=True)
    change = fields.String(load_default="", validate=validate.Length(max=4096))
