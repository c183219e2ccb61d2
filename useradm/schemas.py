"""Request and response schemas of the useradm APIs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.pagination import MAX_PER_PAGE


class LoginOptionsSchema(Schema):
    no_expiry = fields.Boolean(load_default=False, allow_none=True,
                               metadata={"description": "A token without `exp`."})
    # older Mender GUIs send the same option as `noExpiry`
    no_expiry_gui = fields.Boolean(data_key="noExpiry", load_default=False, allow_none=True,
                                   metadata={"description": "Alias of `no_expiry` (older GUIs)."})
    token2fa = fields.String(allow_none=True,
                             metadata={"description": "Accepted for compatibility; 2FA is not implemented."})


class UserNewSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True)


class UserNewInternalSchema(UserNewSchema):
    propagate = fields.Boolean(metadata={"description": "Deprecated; ignored."})


class UserUpdateSchema(Schema):
    email = fields.String()
    password = fields.String()
    current_password = fields.String()


class OwnUserUpdateV2Schema(Schema):
    password = fields.String()
    current_password = fields.String()


class UserSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    created_ts = fields.String()
    updated_ts = fields.String()
    login_ts = fields.String()


class UsersQueryArgsSchema(Schema):
    id = fields.List(fields.String(validate=validate.Length(max=128)), validate=validate.Length(max=500))
    email = fields.List(fields.String(validate=validate.Length(max=254)), validate=validate.Length(max=500))
    created_after = fields.Integer(validate=validate.Range(min=0, max=2**40))
    created_before = fields.Integer(validate=validate.Range(min=0, max=2**40))
    updated_after = fields.Integer(validate=validate.Range(min=0, max=2**40))
    updated_before = fields.Integer(validate=validate.Range(min=0, max=2**40))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10**9))
    per_page = fields.Integer(load_default=MAX_PER_PAGE, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": f"Default and maximum {MAX_PER_PAGE}."})


class PersonalAccessTokenRequestSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=256))
    expires_in = fields.Integer(load_default=0, strict=True,
                                metadata={"description": "Seconds; 0 or omitted: never expires."})


class PersonalAccessTokenSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    last_used = fields.String()
    expiration_date = fields.String(allow_none=True)
    created_ts = fields.String(required=True)


class TenantNewSchema(Schema):
    tenant_id = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RevokeTokensQueryArgsSchema(Schema):
    tenant_id = fields.String(required=True, validate=validate.Length(max=128))
    user_id = fields.String(validate=validate.Length(min=1, max=128))
