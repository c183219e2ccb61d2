"""What the audit log records for each management operation that changes something, when the
service did not report richer events itself: the object's type, where its id is, the action.

Every POST/PUT/PATCH/DELETE management route is named here, either with what to record or as
`READ_ONLY` (a search sent as POST); tests/auditlogs walks the URL map to keep it so.
"""

from __future__ import annotations

from typing import NamedTuple

SELF = "<caller>"        # the object is the calling user
LOCATION = "<location>"  # the new object's id is the last segment of the response's Location
BODY_ID = "<body:id>"    # the new object's id is the response's JSON `id`
TENANT = "<tenant>"      # the object is the caller's organization (its id as the APIs show it)
EMITTED = "<emitted>"    # the service reports one event per object itself (a bulk operation, a
                         # login); a request that changed nothing reports none and writes nothing


class Recorded(NamedTuple):
    object_type: str
    id_from: str   # a path parameter, SELF, LOCATION, BODY_ID, TENANT or EMITTED: every entry names its object
    action: str
    fields: tuple[str, ...] = ()  # JSON body fields summarized in `change` (small values only)
    name_from: str = ""           # the JSON body field (or path parameter) naming the object


# body fields that are never written, only said to have changed
SECRET_FIELDS = frozenset({"password", "current_password", "token", "pubkey", "key", "secret"})


READ_ONLY = None

MUTATIONS: dict[str, Recorded | None] = {
    # useradm
    "POST /api/management/v1/useradm/auth/login": Recorded("user", EMITTED, "login"),
    "POST /api/management/v1/useradm/auth/logout": Recorded("user", SELF, "logout"),
    "PUT /api/management/v1/useradm/users/me": Recorded("user", SELF, "update", ("email", "password")),
    "PUT /api/management/v2/useradm/users/me": Recorded("user", SELF, "update", ("password",)),
    "POST /api/management/v1/useradm/settings/me": Recorded("user_settings", SELF, "update"),
    "POST /api/management/v1/useradm/settings": Recorded("settings", TENANT, "update"),
    "POST /api/management/v1/useradm/settings/tokens": Recorded("user_access_token", EMITTED, "create",
                                                                  ("expires_in", "roles"), "name"),
    "DELETE /api/management/v1/useradm/settings/tokens/{id}": Recorded("user_access_token", "id", "delete"),
    "POST /api/management/v1/useradm/users": Recorded("user", LOCATION, "create", ("roles",), "email"),
    "PUT /api/management/v1/useradm/users/{id}": Recorded("user", "id", "update", ("email", "password", "roles")),
    "DELETE /api/management/v1/useradm/users/{id}": Recorded("user", "id", "delete"),
    "POST /api/management/v1/useradm/roles": Recorded("role", LOCATION, "create", ("permission_sets_with_scope",), "name"),
    "POST /api/management/v2/useradm/roles": Recorded("role", LOCATION, "create", ("permission_sets_with_scope",), "name"),
    "PUT /api/management/v1/useradm/roles/{id}": Recorded("role", "id", "update", ("permission_sets_with_scope",), "id"),
    "PUT /api/management/v2/useradm/roles/{id}": Recorded("role", "id", "update", ("permission_sets_with_scope",), "id"),
    "DELETE /api/management/v1/useradm/roles/{id}": Recorded("role", "id", "delete", (), "id"),
    "DELETE /api/management/v2/useradm/roles/{id}": Recorded("role", "id", "delete", (), "id"),
    # devauth
    "POST /api/management/v2/devauth/devices": Recorded("device", LOCATION, "preauthorize"),
    "POST /api/management/v2/devauth/preauthorizations": Recorded("device", EMITTED, "preauthorize"),
    "POST /api/management/v2/devauth/devices/search": READ_ONLY,
    "PUT /api/management/v2/devauth/devices/{id}/auth/{aid}/status": Recorded("device", "id", "update_status",
                                                                               ("status",)),
    "DELETE /api/management/v2/devauth/devices/{id}/auth/{aid}": Recorded("device", "id", "delete_auth_set"),
    "DELETE /api/management/v2/devauth/devices/{id}": Recorded("device", "id", "decommission"),
    "DELETE /api/management/v2/devauth/tokens/{id}": Recorded("device_token", "id", "revoke"),
    "PUT /api/management/v2/devauth/devices/status": Recorded("device", EMITTED, "update_status"),
    "DELETE /api/management/v2/devauth/devices": Recorded("device", EMITTED, "decommission"),
    # inventory
    "DELETE /api/management/v1/inventory/devices/{device_id}": Recorded("device", "device_id", "delete_inventory"),
    "PUT /api/management/v1/inventory/devices/{device_id}/tags": Recorded("device", "device_id", "set_tags"),
    "PATCH /api/management/v1/inventory/devices/{device_id}/tags": Recorded("device", "device_id", "update_tags"),
    "PUT /api/management/v1/inventory/devices/{device_id}/group": Recorded("device", "device_id", "set_group",
                                                                          ("group",)),
    "DELETE /api/management/v1/inventory/devices/{device_id}/group/{name}":
        Recorded("device", "device_id", "remove_group"),
    "PATCH /api/management/v1/inventory/groups/{name}/devices": Recorded("group", "name", "add_devices"),
    "DELETE /api/management/v1/inventory/groups/{name}/devices": Recorded("group", "name", "remove_devices"),
    "DELETE /api/management/v1/inventory/groups/{name}": Recorded("group", "name", "delete"),
    "POST /api/management/v2/inventory/filters": Recorded("filter", LOCATION, "create"),
    "DELETE /api/management/v2/inventory/filters/{filter_id}": Recorded("filter", "filter_id", "delete"),
    "PATCH /api/management/v2/inventory/devices/tags": Recorded("device", EMITTED, "update_tags"),
    "PATCH /api/management/v2/inventory/groups/{name}/devices": Recorded("group", "name", "add_devices"),
    "DELETE /api/management/v2/inventory/groups/{name}/devices": Recorded("group", "name", "remove_devices"),
    "POST /api/management/v2/inventory/filters/search": READ_ONLY,
    "POST /api/management/v2alpha1/inventory/identities/search": READ_ONLY,
    # deployments
    "POST /api/management/v1/deployments/deployments": Recorded("deployment", LOCATION, "create",
                                                                ("artifact_name", "devices", "all_devices"), "name"),
    "POST /api/management/v2/deployments/deployments": Recorded("deployment", LOCATION, "create",
                                                                ("artifact_name", "devices", "all_devices"), "name"),
    "POST /api/management/v1/deployments/deployments/group/{name}": Recorded("deployment", LOCATION, "create",
                                                                             ("artifact_name",), "name"),
    "PUT /api/management/v1/deployments/deployments/{deployment_id}/status":
        Recorded("deployment", "deployment_id", "abort", ("status",)),
    "DELETE /api/management/v1/deployments/deployments/devices/{device_id}":
        Recorded("device", "device_id", "abort_deployments"),
    "DELETE /api/management/v1/deployments/deployments/devices/{device_id}/history":
        Recorded("device", "device_id", "delete_deployment_history"),
    "POST /api/management/v1/deployments/deployments/statistics/list": READ_ONLY,
    "POST /api/management/v2/deployments/deployments/{deployment_id}/pause":
        Recorded("deployment", "deployment_id", "pause"),
    "POST /api/management/v2/deployments/deployments/{deployment_id}/resume":
        Recorded("deployment", "deployment_id", "resume"),
    "POST /api/management/v2/deployments/deployments/{deployment_id}/continue":
        Recorded("deployment", "deployment_id", "continue"),
    "PATCH /api/management/v1/deployments/deployments/{deployment_id}":
        Recorded("deployment", "deployment_id", "update_control_map"),
    "PATCH /api/management/v1/deployments/deployments/{deployment_id}/devices/{device_id}":
        Recorded("device", "device_id", "update_control_map"),
    # artifacts and releases
    "POST /api/management/v1/deployments/artifacts": Recorded("artifact", LOCATION, "upload"),
    "POST /api/management/v1/deployments/artifacts/directupload": Recorded("artifact", BODY_ID, "start_upload"),
    "POST /api/management/v1/deployments/artifacts/directupload/{upload_id}/complete":
        Recorded("artifact", "upload_id", "upload"),
    "POST /api/management/v1/deployments/artifacts/generate": Recorded("artifact", LOCATION, "generate"),
    "PUT /api/management/v1/deployments/artifacts/{artifact_id}": Recorded("artifact", "artifact_id", "update"),
    "DELETE /api/management/v1/deployments/artifacts/{artifact_id}": Recorded("artifact", "artifact_id", "delete"),
    "PATCH /api/management/v2/deployments/deployments/releases/{release_name}":
        Recorded("release", "release_name", "update", ("notes",), "release_name"),
    "PUT /api/management/v2/deployments/deployments/releases/{release_name}/tags":
        Recorded("release", "release_name", "set_tags", (), "release_name"),
    "DELETE /api/management/v2/deployments/deployments/releases": Recorded("release", EMITTED, "delete"),
    # deviceconfig (configuration values may be secrets: never summarized)
    "PUT /api/management/v1/deviceconfig/configurations/device/{device_id}":
        Recorded("device", "device_id", "set_configuration"),
    "POST /api/management/v1/deviceconfig/configurations/device/{device_id}/deploy":
        Recorded("device", "device_id", "deploy_configuration"),
    # tenantadm (the tenant token never summarized)
    "POST /api/management/v1/tenantadm/user/tenant/tenant_token": Recorded("organization", TENANT, "rotate_tenant_token"),
    "POST /api/management/v1/tenantadm/tenants": Recorded("organization", EMITTED, "create", (), "organization"),
    "POST /api/management/v2/tenantadm/tenants": Recorded("organization", EMITTED, "create", (), "organization"),
    "DELETE /api/management/v2/tenantadm/tenants/{tenant_id}": Recorded("organization", "tenant_id", "delete"),
    "PUT /api/management/v2/tenantadm/tenants/{tenant_id}/status": Recorded("organization", "tenant_id", "update_status",
                                                                     ("status",)),
    # iot-manager (credentials never summarized)
    "POST /api/management/v1/iot-manager/integrations": Recorded("integration", LOCATION, "create", ("provider",)),
    "DELETE /api/management/v1/iot-manager/integrations/{integration_id}":
        Recorded("integration", "integration_id", "delete"),
    "PUT /api/management/v1/iot-manager/integrations/{integration_id}/credentials":
        Recorded("integration", "integration_id", "set_credentials"),
    "PUT /api/management/v1/iot-manager/devices/{device_id}/state/{integration_id}":
        Recorded("device", "device_id", "set_integration_state"),
    "DELETE /api/management/v1/iot-manager/devices/{device_id}": Recorded("device", "device_id", "delete_integration_state"),
    # deviceconnect (its hooks report richer events: the file's path, the session)
    "POST /api/management/v1/deviceconnect/devices/{id}/check-update": Recorded("device", "id", "check_update"),
    "POST /api/management/v1/deviceconnect/devices/{id}/send-inventory": Recorded("device", "id", "send_inventory"),
    "PUT /api/management/v1/deviceconnect/devices/{id}/upload": Recorded("device", "id", "upload_file"),
}
