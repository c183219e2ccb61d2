"""deviceconfig's request schemas (configurations themselves are raw JSON objects, checked by
`deviceconfig.model.check_configuration`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class NewConfigurationDeploymentSchema(Schema):
    retries = fields.Integer(load_default=0, validate=validate.Range(min=0),
                             metadata={"description": "How many times the device may retry after a failure."})
    update_control_map = fields.Dict(load_default=None, allow_none=True,
                                     metadata={"description": "Mender's update control map, applied to the configuration deployment."})


class NewConfigurationDeploymentResponseSchema(Schema):
    deployment_id = fields.String()


class NewTenantSchema(Schema):
    tenant_id = fields.String(required=True, validate=validate.Length(1, 64))


class NewDeviceSchema(Schema):
    device_id = fields.String(required=True, validate=validate.Length(1, 128))
