"""Request and query schemas of the deployments API."""

import re
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate

from common.pagination import PaginationQueryArgsSchema
from common.text import validate_printable
from deployments import model as m

_name = fields.String(required=True, validate=[validate.Length(min=1, max=m.MAX_NAME_LENGTH), validate_printable])


_percent = validate.Range(min=1, max=100)
_failure_action = validate.OneOf(m.FAILURE_ACTIONS)


class PhaseSchema(Schema):
    batch_size = fields.Integer(validate=validate.Range(min=1, max=100))
    start_ts = fields.AwareDateTime(format="iso", default_timezone=None)
    failure_threshold = fields.Integer(validate=_percent, metadata={"description": "percent of the phase's devices"})
    failure_action = fields.String(validate=_failure_action)
    success_threshold = fields.Integer(validate=_percent)


class MaintenanceWindowSchema(Schema):
    start = fields.String(required=True, metadata={"description": "HH:MM, local time"})
    end = fields.String(required=True, metadata={"description": "HH:MM, local time; before start spans midnight"})
    timezone = fields.String(load_default="UTC", validate=validate.Length(min=1, max=64),
                             metadata={"description": "IANA time zone, e.g. Europe/Oslo"})


class RolloutFieldsMixin(Schema):
    """The rollout-safety fields of both create bodies (extensions of Mender's)."""

    failure_threshold = fields.Integer(validate=_percent,
                                       metadata={"description": "percent of a phase's devices failed"})
    failure_action = fields.String(validate=_failure_action, metadata={"description": "pause (default) or abort"})
    success_threshold = fields.Integer(validate=_percent,
                                       metadata={"description": "percent of a phase succeeded before the next opens"})
    maintenance_window = fields.Nested(MaintenanceWindowSchema)
    update_control_map = fields.Dict(metadata={"description": "Mender's update control map"})


class FilterTermSchema(Schema):
    scope = fields.String(required=True)
    attribute = fields.String(required=True)
    type = fields.String(required=True)
    value = fields.Raw()


class NewDeploymentSchema(RolloutFieldsMixin):
    name = _name
    artifact_name = fields.String(required=True, validate=validate.Length(min=1, max=m.MAX_NAME_LENGTH))
    devices = fields.List(fields.String(validate=validate.Length(min=1, max=128)))
    all_devices = fields.Boolean()
    force_installation = fields.Boolean()
    phases = fields.List(fields.Nested(PhaseSchema), validate=validate.Length(min=1, max=100))
    retries = fields.Integer(validate=validate.Range(min=0, max=100))
    max_devices = fields.Integer(validate=validate.Range(min=0, max=m.MAX_DEVICES_LIMIT))
    # dynamic deployments (v2): a saved filter or inline predicates
    filter_id = fields.String(validate=validate.Length(min=1, max=128))
    filter = fields.List(fields.Nested(FilterTermSchema), validate=validate.Length(min=1, max=100))


class ConfigurationDeploymentRequestSchema(Schema):
    name = _name
    configuration = fields.Raw(required=True, metadata={
        "description": "The configuration: a JSON object of string values, or a string holding one."})
    retries = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100))
    update_control_map = fields.Dict(metadata={"description": "Mender's update control map"})


class NewDeploymentForGroupSchema(RolloutFieldsMixin):
    name = _name
    artifact_name = fields.String(required=True, validate=validate.Length(min=1, max=m.MAX_NAME_LENGTH))
    force_installation = fields.Boolean()
    phases = fields.List(fields.Nested(PhaseSchema), validate=validate.Length(min=1, max=100))
    retries = fields.Integer(validate=validate.Range(min=0, max=100))


class UpdateControlMapPatchSchema(Schema):
    update_control_map = fields.Dict(required=True)


class DeploymentsQueryArgsSchema(PaginationQueryArgsSchema):
    status = fields.String(validate=validate.OneOf(m.DEPLOYMENT_STATUSES))
    type = fields.String(validate=validate.OneOf(["software", "configuration"]))
    search = fields.String(validate=validate.Length(max=m.MAX_NAME_LENGTH))
    created_before = fields.Integer(validate=validate.Range(min=0, max=m.MAX_TIMESTAMP))
    created_after = fields.Integer(validate=validate.Range(min=0, max=m.MAX_TIMESTAMP))
    sort = fields.String(validate=validate.OneOf(["asc", "desc"]))


class DeploymentsV2QueryArgsSchema(DeploymentsQueryArgsSchema):
    id = fields.List(fields.String(validate=validate.Length(max=128)))
    name = fields.List(fields.String(validate=validate.Length(max=m.MAX_NAME_LENGTH)))
    id_attribute = fields.String()
    id_scope = fields.String(validate=validate.OneOf(["identity", "inventory"]))


_device_status_filter = fields.String(validate=validate.OneOf(list(m.DEVICE_STATUSES) + list(m.STATUS_GROUPS)))


class DeviceDeploymentsQueryArgsSchema(PaginationQueryArgsSchema):
    status = _device_status_filter


class DeviceHistoryQueryArgsSchema(Schema):
    status = _device_status_filter
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**9))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=20))


class AbortSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["aborted"]))


class DeploymentIdsSchema(Schema):
    deployment_ids = fields.List(fields.String(validate=validate.Length(min=1, max=128)), required=True,
                                 validate=validate.Length(min=1, max=m.MAX_STATISTICS_LIST_IDS))


class DeviceStatusSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(m.REPORTABLE))
    substate = fields.String(validate=validate.Length(max=1024))


# RFC 3339's date-time (the spec's `format: date-time`), as Go's time.Time reads it from JSON
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")


def validate_date_time(text: str) -> None:
    """A marshmallow validator: an RFC 3339 date-time (`2026-01-01T10:00:00.123456789Z`)."""
    if not _RFC3339.fullmatch(text):
        raise ValidationError("must be an RFC 3339 date-time (e.g. 2026-01-01T10:00:00Z)")
    try:  # the values: month 13 or February 30 match the pattern
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError("must be an RFC 3339 date-time (e.g. 2026-01-01T10:00:00Z)") from None


class LogMessageSchema(Schema):
    """One line of a deployment log (the spec's DeploymentLogMessagesInner, Mender's LogMessage: all three
    required and not empty). The level is one word (`info`, `error`…); the message any text, which
    the operator's text rendering escapes (`common.text.escape_controls`)."""
    timestamp = fields.String(required=True, validate=[validate.Length(max=64), validate_date_time])
    level = fields.String(required=True, validate=[validate.Length(min=1, max=32), validate.Regexp(
        r"\A[^\s:]+\Z", error="must be one word of printable characters"), validate_printable])
    message = fields.String(required=True, validate=validate.Length(min=1, max=m.MAX_LOG_MESSAGE_LENGTH))


class DeploymentLogSchema(Schema):
    messages = fields.List(fields.Nested(LogMessageSchema), required=True,
                           validate=validate.Length(min=1, max=m.MAX_LOG_MESSAGES))


class NextQueryArgsSchema(Schema):
    artifact_name = fields.String(required=True, validate=validate.Length(min=1, max=m.MAX_NAME_LENGTH))
    device_type = fields.String(required=True, validate=validate.Length(min=1, max=m.MAX_NAME_LENGTH))


class LastDeviceDeploymentReqSchema(Schema):
    device_ids = fields.List(fields.String(validate=validate.Length(max=128)), required=True,
                             validate=validate.Length(max=1000))


class DeviceDeploymentIdsQueryArgsSchema(Schema):
    id = fields.List(fields.String(validate=validate.Length(max=128)), validate=validate.Length(max=500))


def _shown(key: str) -> str:
    """A key as an error message names it: a device's key may be as long as its body."""
    return key if len(key) <= 64 else key[:64] + "\u2026"


def provides_from(body, *, nested: bool) -> dict:
    """The device's provides from a `next` body: v2 `{"device_provides": {...}}` or v1's flat map.
    Values must be strings (numbers are tolerated and turned into strings)."""
    if not isinstance(body, dict):
        raise ValidationError("body must be a JSON object")
    provides = body.get("device_provides") if nested else body
    if nested:
        unknown = set(body) - {"device_provides", "update_control_map"}
        if unknown:
            raise ValidationError(f"unknown field(s): {', '.join(_shown(k) for k in sorted(unknown)[:10])}")
    if not isinstance(provides, dict):
        raise ValidationError("device_provides: must be an object")
    if len(provides) > 1000:
        raise ValidationError("device_provides: at most 1000 entries")
    out = {}
    for key, value in provides.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValidationError(f"device_provides.{_shown(key)}: must be a string")
        if len(key) > 1024 or len(str(value)) > 4096:
            raise ValidationError(f"device_provides.{_shown(key)}: too long")
        out[key] = str(value)
    return out


class InsightsQueryArgsSchema(Schema):
    attribute = fields.List(fields.String(validate=validate.Length(min=1, max=1024)),
                            validate=validate.Length(max=50),
                            metadata={"description": "inventory attributes to break down (default: all)"})
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    error_limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
