"""deviceconnect's request and response schemas."""

from __future__ import annotations

from marshmallow import Schema, fields

from common.clock import rfc3339


class ConnectionStateSchema(Schema):
    device_id = fields.String()
    status = fields.String()
    updated_ts = fields.Function(lambda s: rfc3339(s.updated_ts))
    created_ts = fields.Function(lambda s: rfc3339(s.created_ts))


class ProvisionDeviceSchema(Schema):
    device_id = fields.String(required=True, validate=lambda v: 0 < len(v) <= 128)


class DownloadQueryArgsSchema(Schema):
    path = fields.String(required=True, validate=lambda v: 0 < len(v) <= 4096)
