"""Request and response schemas of the tenantadm APIs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.pagination import PaginationQueryArgsSchema

PLANS = ("os", "professional", "enterprise")


class TenantSchema(Schema):
    id = fields.String(required=True, metadata={"description": "Organization id (`default`: the default one)."})
    name = fields.String(required=True)
    status = fields.String(validate=validate.OneOf(("active", "suspended", "inactive")))
    tenant_token = fields.String(metadata={"description": "The organization's current tenant token."})


class TenantShortInfoSchema(Schema):
    id = fields.String(required=True)


class TenantsQueryArgsSchema(PaginationQueryArgsSchema):
    username = fields.String(validate=validate.Length(max=254),
                             metadata={"description": "The organization of the user with this email."})
    q = fields.String(validate=validate.Length(max=256),
                      metadata={"description": "An organization id, or part of a name (any case)."})


class TenantadmTenantNewSchema(Schema):
    """Internal API (an extension of Mender's): create an organization, optionally with its first
    user and limits."""

    name = fields.String(required=True)
    email = fields.String(metadata={"description": "The first user's email (needs `password`)."})
    password = fields.String()
    max_devices = fields.Integer(strict=True, validate=validate.Range(min=-1))
    max_users = fields.Integer(strict=True, validate=validate.Range(min=-1))
    storage_limit = fields.Integer(strict=True, validate=validate.Range(min=0))


class TenantUpdateSchema(Schema):
    name = fields.String(metadata={"description": "Name of the organization. (Plans, trials and API "
                                                  "limits are hosted Mender's commerce: not supported.)"})


class TenantStatusSchema(Schema):
    status = fields.String(required=True)


class LimitsUpdateSchema(Schema):
    max_devices = fields.Integer(strict=True, validate=validate.Range(min=-1),
                                 metadata={"description": "Accepted devices (-1: unlimited)."})
    max_users = fields.Integer(strict=True, validate=validate.Range(min=-1),
                               metadata={"description": "Users (-1: unlimited)."})
    storage_limit = fields.Integer(strict=True, validate=validate.Range(min=0),
                                   metadata={"description": "Artifact storage in bytes (0: unlimited)."})


class LimitUsageSchema(Schema):
    limit = fields.Integer(required=True)
    usage = fields.Integer(required=True)


class LimitsSchema(Schema):
    devices = fields.Nested(LimitUsageSchema)
    users = fields.Nested(LimitUsageSchema)
    storage = fields.Nested(LimitUsageSchema)


class SignupSchema(Schema):
    """`POST …/tenantadm/tenants` (v1 and v2), JSON or form-encoded. reCAPTCHA, plans and payment
    are hosted Mender's: accepted for compatibility and ignored."""

    organization = fields.String(required=True)
    email = fields.String(required=True)
    password = fields.String(required=True)
    recaptcha = fields.String(data_key="g-recaptcha-response", metadata={"description": "Ignored."})
    name = fields.String(validate=validate.Length(max=256), metadata={"description": "Customer name; ignored."})
    token = fields.String(metadata={"description": "Payment token; ignored."})
    plan = fields.String(validate=validate.OneOf(PLANS), metadata={"description": "Ignored."})


class TenantadmUserSchema(Schema):
    id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "The user's email."})


class TenantadmUserNewSchema(Schema):
    name = fields.String(required=True, metadata={"description": "The user's email."})
    id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    tenant_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    login = fields.Dict(metadata={"description": "Alternative login schemes: not supported, ignored."})


class TenantadmUserUpdateSchema(Schema):
    name = fields.String(required=True, metadata={"description": "The new email."})


class TenantadmUsersQueryArgsSchema(PaginationQueryArgsSchema):
    name = fields.String(validate=validate.Length(max=254), metadata={"description": "Email."})
    tenant_id = fields.String(validate=validate.Length(max=64))
    id = fields.String(validate=validate.Length(max=128))
    login = fields.List(fields.String(validate=validate.Length(max=256)), validate=validate.Length(max=20),
                        metadata={"description": "Alternative login schemes: none exist, so nothing matches."})
