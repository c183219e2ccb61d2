"""Request and response schemas of the iot-manager APIs (Mender's iot-manager management and internal v1)."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates

from common.pagination import PaginationQueryArgsSchema
from iotmanager.model import DELIVERY_STATES, DEVICE_STATUSES, EVENT_TYPES, PROVIDERS

CREDENTIAL_TYPES = ("aws", "sas", "http")


def _no_control(value: str) -> None:
    if any(not c.isprintable() and c not in "\t\n" for c in value):
        raise ValidationError("must not contain control characters")


class IotManagerHTTPSchema(Schema):
    url = fields.String(required=True, metadata={"description": "Where events are posted (http or https)."})
    secret = fields.String(metadata={"description": "Hexadecimal HMAC-SHA256 key (up to 64 digits). Responses "
                                                    "show `<omitted>` when one is set."})


class IotManagerCredentialsSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(CREDENTIAL_TYPES))
    http = fields.Nested(IotManagerHTTPSchema)
    aws = fields.Dict(metadata={"description": "AWS IoT Core (not supported by this server)."})
    connection_string = fields.String(metadata={"description": "Azure IoT Hub (not supported by this server)."})


class IotManagerIntegrationSchema(Schema):
    id = fields.String(metadata={"format": "uuid", "description": "Given by the server (ignored on creation)."})
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    credentials = fields.Nested(IotManagerCredentialsSchema, required=True)
    description = fields.String(validate=validate.Length(max=1024))

    @validates("description")
    def _description(self, value: str, **_) -> None:
        _no_control(value)


class IotManagerAttemptSchema(Schema):
    time = fields.String(metadata={"format": "date-time"})
    duration_ms = fields.Integer()
    success = fields.Boolean()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    response = fields.String(allow_none=True, metadata={"description": "The start of the response body."})


class IotManagerDeliveryStatusSchema(Schema):
    integration_id = fields.String(required=True)
    success = fields.Boolean(required=True)
    status_code = fields.Integer(metadata={"description": "Of the last attempt."})
    error = fields.String(metadata={"description": "Of the last attempt, or why it was given up."})
    state = fields.String(validate=validate.OneOf(DELIVERY_STATES),
                          metadata={"description": "pending (retries to come), delivered or failed (given up)."})
    attempt_count = fields.Integer()
    next_attempt = fields.String(metadata={"format": "date-time", "description": "While pending."})
    attempts = fields.List(fields.Nested(IotManagerAttemptSchema))


class IotManagerEventSchema(Schema):
    id = fields.String(metadata={"format": "uuid"})
    type = fields.String(validate=validate.OneOf(EVENT_TYPES))
    delivery_statuses = fields.List(fields.Nested(IotManagerDeliveryStatusSchema))
    time = fields.String(metadata={"format": "date-time"})
    data = fields.Dict()


class IotManagerEventsQueryArgsSchema(PaginationQueryArgsSchema):
    integration_id = fields.UUID(metadata={"description": "Only the events sent to this integration."})


class IotManagerDeviceStateSchema(Schema):
    desired = fields.Dict()
    reported = fields.Dict()


class IotManagerNewDeviceSchema(Schema):
    """Mender's NewDeviceInternalProvision (`device_id` accepted for `id`, as Mender; other fields
    of deviceauth's event, such as `revision`, are ignored)."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(validate=validate.Length(min=1, max=128))
    device_id = fields.String(validate=validate.Length(min=1, max=128))
    status = fields.String(validate=validate.OneOf(DEVICE_STATUSES))
    auth_sets = fields.List(fields.Dict(), validate=validate.Length(max=100))
    created_ts = fields.String(metadata={"format": "date-time"})


class IotManagerBulkDeviceSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # deviceauth sends whole device events; only the id matters

    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
