"""Request and response schemas of the devauth APIs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.api import TenantIdField
from common.pagination import PaginationQueryArgsSchema
from devauth.model import AUTH_SET_STATUSES, DEVICE_STATUSES


class DevauthAuthSetSchema(Schema):
    id = fields.String()
    device_id = fields.String()
    identity_data = fields.Dict()
    pubkey = fields.String()
    ts = fields.String(metadata={"format": "date-time"})
    status = fields.String(validate=validate.OneOf(AUTH_SET_STATUSES))


class DevauthDeviceSchema(Schema):
    id = fields.String()
    identity_data = fields.Dict()
    status = fields.String(validate=validate.OneOf(DEVICE_STATUSES))
    decommissioning = fields.Boolean()
    created_ts = fields.String(metadata={"format": "date-time"})
    updated_ts = fields.String(metadata={"format": "date-time"})
    check_in_time = fields.String(metadata={"format": "date-time"})
    auth_sets = fields.List(fields.Nested(DevauthAuthSetSchema))


class DevauthDevicesQueryArgsSchema(PaginationQueryArgsSchema):
    status = fields.String(validate=validate.OneOf(DEVICE_STATUSES))
    id = fields.List(fields.String(validate=validate.Length(min=1, max=128)))


class DevauthCountQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(DEVICE_STATUSES))


class DevauthPreAuthSetSchema(Schema):
    identity_data = fields.Raw(required=True, metadata={"type": "object"})
    pubkey = fields.String(required=True)
    force = fields.Boolean(load_default=False)


class DevauthStatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(AUTH_SET_STATUSES))


class DevauthCountSchema(Schema):
    count = fields.Integer()


class DevauthLimitSchema(Schema):
    limit = fields.Integer(required=True, strict=True, validate=validate.Range(min=-1))


class StringOrList(fields.Field):
    """A string or a list of strings (Mender's search filters accept both)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.make_error("invalid")

        return value

    default_error_messages = {"invalid": "must be a string or an array of strings"}


class DevauthSearchSchema(Schema):
    status = StringOrList(metadata={"type": "array", "items": {"type": "string", "enum": list(DEVICE_STATUSES)}})
    id = StringOrList(metadata={"type": "array", "items": {"type": "string"}})


class DevauthTokensDeleteQueryArgsSchema(Schema):
    tenant_id = TenantIdField(required=True, metadata={"description": "Organization id (`default`: the default one)."})
    device_id = fields.String()


class DevauthInternalDevicesQueryArgsSchema(DevauthDevicesQueryArgsSchema):
    pass


class DevauthBulkRowResultSchema(Schema):
    row = fields.Integer(metadata={"description": "Row number in the file, from 1 (CSV: after the header)."})
    status = fields.String(validate=validate.OneOf(["created", "conflict", "invalid"]))
    device_id = fields.String(metadata={"description": "The new device, or the existing one on conflict."})
    reason = fields.String()


class DevauthBulkResultSchema(Schema):
    created = fields.Integer()
    conflict = fields.Integer()
    invalid = fields.Integer()
    results = fields.List(fields.Nested(DevauthBulkRowResultSchema))
