"""Request and response schemas of the useradm APIs."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.api import TenantIdField
from common.pagination import MAX_PER_PAGE


class LoginOptionsSchema(Schema):
    no_expiry = fields.Boolean(load_default=False, allow_none=True,
                               metadata={"description": "A token without `exp`."})
    # older Mender GUIs send the same option as `noExpiry`
    no_expiry_gui = fields.Boolean(data_key="noExpiry", load_default=False, allow_none=True,
                                   metadata={"description": "Alias of `no_expiry` (older GUIs)."})
    token2fa = fields.String(allow_none=True,
                             metadata={"description": "Accepted for compatibility; 2FA is not implemented."})


_ROLES = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=32),
                     metadata={"description": "Role names (built-in or the organization's custom roles)."})


class UserNewSchema(Schema):
    email = fields.String(required=True)
    password = fields.String(required=True)
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=32),
                        metadata={"description": "Role names; omitted: RBAC_ROLE_PERMIT_ALL (as Mender)."})


class UserNewInternalSchema(UserNewSchema):
    propagate = fields.Boolean(metadata={"description": "Deprecated; ignored."})


class UserUpdateSchema(Schema):
    email = fields.String()
    password = fields.String()
    current_password = fields.String()
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=32),
                        metadata={"description": "Replaces the user's roles (needs ManageUsers)."})


class OwnUserUpdateV2Schema(Schema):
    password = fields.String()
    current_password = fields.String()


class UserSchema(Schema):
    id = fields.String(required=True)
    email = fields.String(required=True)
    created_ts = fields.String()
    updated_ts = fields.String()
    login_ts = fields.String()
    roles = fields.List(fields.String())


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
    roles = fields.List(fields.String(validate=validate.Length(min=1, max=64)), validate=validate.Length(max=32),
                        metadata={"description": "The token acts with these of its user's roles only "
                                                 "(omitted: all of them, as they are at each request)."})


class PersonalAccessTokenSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    last_used = fields.String()
    expiration_date = fields.String(allow_none=True)
    created_ts = fields.String(required=True)
    roles = fields.List(fields.String(), metadata={"description": "Present when the token is narrower than its user."})


class TenantNewSchema(Schema):
    tenant_id = fields.String(required=True, validate=validate.Length(min=1, max=128))


class RevokeTokensQueryArgsSchema(Schema):
    tenant_id = TenantIdField(required=True, metadata={"description": "Organization id (`default`: the default one)."})
    user_id = fields.String(validate=validate.Length(min=1, max=128))


class RoleScopeSchema(Schema):
    type = fields.String(required=True, validate=validate.OneOf(["DeviceGroups", "ReleaseTags"]))
    value = fields.List(fields.String(validate=validate.Length(min=1, max=1024)), required=True,
                        validate=validate.Length(min=1, max=100))


class PermissionSetWithScopeSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    scope = fields.Nested(RoleScopeSchema, allow_none=True)


class RoleSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    description = fields.String(validate=validate.Length(max=1024))
    permission_sets_with_scope = fields.List(fields.Nested(PermissionSetWithScopeSchema),
                                             validate=validate.Length(max=32))
    # Mender's v1 shape (HTTP rules); only an empty list is accepted: permissions are the table's sets
    permissions = fields.List(fields.Dict(), validate=validate.Length(max=0),
                              metadata={"description": "Mender's legacy HTTP permissions: not supported "
                                                       "(must be empty); use permission_sets_with_scope."})


class RoleUpdateSchema(Schema):
    description = fields.String(validate=validate.Length(max=1024))
    permission_sets_with_scope = fields.List(fields.Nested(PermissionSetWithScopeSchema),
                                             validate=validate.Length(max=32))
    permissions = fields.List(fields.Dict(), validate=validate.Length(max=0))
    name = fields.String(validate=validate.Length(min=1, max=64),
                         metadata={"description": "Ignored (the path names the role)."})
