"""The permission table: which permission set each management operation needs, how a role
narrowed to device groups or release tags applies to it, and which permission sets each
built-in role holds. Plain data and pure functions (no Flask): the authentication layer
(`common.auth`) decides every management request with `decide`, the websocket handlers too,
services read the sets and roles, and `flask --app wsgi rbac-table` renders it all into
docs/rbac.md.

Reading the table: an operation is allowed when the caller's roles hold each permission set it
names (directly, or through a set that includes it: ManageDevices includes ReadDevices, SuperUser
includes everything). A role may narrow a device set to device groups or a release set to release
tags; the operation's scope column says what such a narrowed grant allows there:

- `all`       only a grant over all devices (or all releases) allows it;
- `any`       any grant allows it, narrowed or not (no device or release data is involved);
- `listed`    the service lists, searches and counts only the visible devices (releases);
- `device:X`  the device named by path parameter X must be in a visible group (404 otherwise);
- `group:X`   the group named by path parameter X must be visible (404 otherwise);
- `release:X` / `artifact:X` the release (the artifact's release) X must carry a visible tag;
- `target`    the service checks the deployment's target (devices, group, filter) and its
              release against the visible groups and tags (403 otherwise).

Grants are combined per permission set, never across sets: a role that may manage group A and
another that may read group B let the user read A and B but manage only A.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ---------------------------------------------------------------------------- permission sets
BASIC = "Basic"
SUPER_USER = "SuperUser"
READ_DEVICES = "ReadDevices"
MANAGE_DEVICES = "ManageDevices"
DEPLOY_TO_DEVICES = "DeployToDevices"
CONNECT_TO_DEVICES = "ConnectToDevices"
CONFIGURE_DEVICES = "ConfigureDevices"
READ_RELEASES = "ReadReleases"
MANAGE_RELEASES = "ManageReleases"
UPLOAD_ARTIFACTS = "UploadArtifacts"
READ_USERS = "ReadUsers"
MANAGE_USERS = "ManageUsers"
READ_AUDIT_LOGS = "ReadAuditLogs"
PUBLIC = "public"  # not a permission set: the operation takes no token (login)

# scope types (Mender's names)
DEVICE_GROUPS = "DeviceGroups"
RELEASE_TAGS = "ReleaseTags"


@dataclass(frozen=True, slots=True)
class PermissionSet:
    name: str
    description: str
    scope_types: tuple[str, ...] = ()   # how a role may narrow it
    includes: tuple[str, ...] = ()      # sets whose operations it allows too


PERMISSION_SETS: dict[str, PermissionSet] = {s.name: s for s in (
    PermissionSet(BASIC, "Every user: log out, read and change one's own account, settings and "
                         "personal access tokens, read the roles."),
    PermissionSet(SUPER_USER, "Everything.", includes=(
        "*",)),
    PermissionSet(READ_DEVICES, "See devices, their inventory, groups and deployments.", (DEVICE_GROUPS,)),
    PermissionSet(MANAGE_DEVICES, "Admit, reject, preauthorize and decommission devices; edit their "
                                  "tags; over all devices also groups and saved filters.",
                  (DEVICE_GROUPS,), (READ_DEVICES,)),
    PermissionSet(DEPLOY_TO_DEVICES, "Create and abort deployments.", (DEVICE_GROUPS,), (READ_DEVICES,)),
    PermissionSet(CONNECT_TO_DEVICES, "Remote terminal, port forwarding, file transfer, check for "
                                      "update and send inventory now.", (DEVICE_GROUPS,), (READ_DEVICES,)),
    PermissionSet(CONFIGURE_DEVICES, "Set and deploy device configuration.", (DEVICE_GROUPS,), (READ_DEVICES,)),
    PermissionSet(READ_RELEASES, "See releases and artifacts and download artifacts.", (RELEASE_TAGS,)),
    PermissionSet(MANAGE_RELEASES, "Edit and remove releases and artifacts.", (RELEASE_TAGS,), (READ_RELEASES,)),
    PermissionSet(UPLOAD_ARTIFACTS, "Upload and generate artifacts."),
    PermissionSet(READ_USERS, "See the organization's users."),
    PermissionSet(MANAGE_USERS, "Create, change and remove users and roles, the organization's "
                                "settings.", includes=(READ_USERS,)),
    PermissionSet(READ_AUDIT_LOGS, "Read and export the audit log."),
)}

# ---------------------------------------------------------------------------- built-in roles
PERMIT_ALL = "RBAC_ROLE_PERMIT_ALL"
OBSERVER = "RBAC_ROLE_OBSERVER"
USER_MANAGER = "RBAC_ROLE_USER_MANAGER"
CI = "RBAC_ROLE_CI"
DEPLOYMENTS_MANAGER = "RBAC_ROLE_DEPLOYMENTS_MANAGER"
REMOTE_TERMINAL = "RBAC_ROLE_REMOTE_TERMINAL"


@dataclass(frozen=True, slots=True)
class Grant:
    """One permission set of a role, over everything (`scope_type` None) or narrowed to the
    device groups / release tags in `values`."""

    permission_set: str
    scope_type: str | None = None
    values: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class BuiltinRole:
    name: str
    title: str
    description: str
    grants: tuple[Grant, ...]


BUILTIN_ROLES: dict[str, BuiltinRole] = {r.name: r for r in (
    BuiltinRole(PERMIT_ALL, "Admin", "Full access.", (Grant(SUPER_USER),)),
    BuiltinRole(OBSERVER, "Read access", "Read everything, change nothing.",
                (Grant(READ_DEVICES), Grant(READ_RELEASES), Grant(READ_USERS), Grant(READ_AUDIT_LOGS))),
    BuiltinRole(USER_MANAGER, "User manager", "Users and roles only.", (Grant(MANAGE_USERS),)),
    BuiltinRole(CI, "Releases manager (CI)", "Upload artifacts and read releases only.",
                (Grant(UPLOAD_ARTIFACTS), Grant(READ_RELEASES))),
    BuiltinRole(DEPLOYMENTS_MANAGER, "Deployments manager", "Create and abort deployments to all "
                "devices; read devices and releases.", (Grant(DEPLOY_TO_DEVICES), Grant(READ_RELEASES))),
    BuiltinRole(REMOTE_TERMINAL, "Troubleshooting", "Remote terminal, port forwarding and file "
                "transfer on all devices.", (Grant(CONNECT_TO_DEVICES),)),
)}

# ---------------------------------------------------------------------------- operations
ALL = "all"
ANY = "any"
LISTED = "listed"
TARGET = "target"
_BY_ID = ("device", "group", "release", "artifact")


@dataclass(frozen=True, slots=True)
class Need:
    """One permission set an operation needs, and how a narrowed grant of it applies."""

    permission_set: str
    scope: str = ALL  # ALL, ANY, LISTED, TARGET, or "<kind>:<path parameter>"

    @property
    def kind(self) -> str:
        return self.scope.partition(":")[0]

    @property
    def param(self) -> str:
        return self.scope.partition(":")[2]


def need(permission_set: str, scope: str = ALL) -> tuple[Need, ...]:
    """The needs of an operation; `+` joins several (all are needed)."""
    return (Need(permission_set, scope),)


OPEN = need(PUBLIC)
BASIC_ONLY = need(BASIC)

# Every management operation ("METHOD path", path parameters as {name}), websockets included.
ROUTES: dict[str, tuple[Need, ...]] = {
    # useradm: login, own account, own settings and tokens --------------------------------------
    "POST /api/management/v1/useradm/auth/login": OPEN,
    "POST /api/management/v1/useradm/auth/logout": BASIC_ONLY,
    "GET /api/management/v1/useradm/users/me": BASIC_ONLY,
    "PUT /api/management/v1/useradm/users/me": BASIC_ONLY,
    "PUT /api/management/v2/useradm/users/me": BASIC_ONLY,
    "GET /api/management/v1/useradm/settings/me": BASIC_ONLY,
    "POST /api/management/v1/useradm/settings/me": BASIC_ONLY,
    "GET /api/management/v1/useradm/settings/tokens": BASIC_ONLY,
    "POST /api/management/v1/useradm/settings/tokens": BASIC_ONLY,
    "DELETE /api/management/v1/useradm/settings/tokens/{id}": BASIC_ONLY,
    "GET /api/management/v1/useradm/settings": BASIC_ONLY,
    # useradm: the organization's users and settings
    "POST /api/management/v1/useradm/settings": need(MANAGE_USERS),
    "GET /api/management/v1/useradm/users": need(READ_USERS),
    "POST /api/management/v1/useradm/users": need(MANAGE_USERS),
    "GET /api/management/v1/useradm/users/{id}": need(READ_USERS),
    "PUT /api/management/v1/useradm/users/{id}": need(MANAGE_USERS),
    "DELETE /api/management/v1/useradm/users/{id}": need(MANAGE_USERS),
    # useradm: roles (every user reads them: the UI shows one's own)
    "GET /api/management/v1/useradm/roles": BASIC_ONLY,
    "GET /api/management/v2/useradm/roles": BASIC_ONLY,
    "GET /api/management/v1/useradm/roles/{id}": BASIC_ONLY,
    "GET /api/management/v2/useradm/roles/{id}": BASIC_ONLY,
    "GET /api/management/v2/useradm/permission_sets": BASIC_ONLY,
    "POST /api/management/v1/useradm/roles": need(MANAGE_USERS),
    "POST /api/management/v2/useradm/roles": need(MANAGE_USERS),
    "PUT /api/management/v1/useradm/roles/{id}": need(MANAGE_USERS),
    "PUT /api/management/v2/useradm/roles/{id}": need(MANAGE_USERS),
    "DELETE /api/management/v1/useradm/roles/{id}": need(MANAGE_USERS),
    "DELETE /api/management/v2/useradm/roles/{id}": need(MANAGE_USERS),

    # devauth --------------------------------------------------------------------------------------
    "GET /api/management/v2/devauth/devices": need(READ_DEVICES),
    "POST /api/management/v2/devauth/devices/search": need(READ_DEVICES),
    "GET /api/management/v2/devauth/devices/count": need(READ_DEVICES),
    "GET /api/management/v2/devauth/devices/{id}": need(READ_DEVICES, "device:id"),
    "GET /api/management/v2/devauth/devices/{id}/auth/{aid}/status": need(READ_DEVICES, "device:id"),
    "GET /api/management/v2/devauth/limits/max_devices": need(READ_DEVICES, ANY),
    "POST /api/management/v2/devauth/devices": need(MANAGE_DEVICES),
    "POST /api/management/v2/devauth/preauthorizations": need(MANAGE_DEVICES),
    "PUT /api/management/v2/devauth/devices/{id}/auth/{aid}/status": need(MANAGE_DEVICES, "device:id"),
    "DELETE /api/management/v2/devauth/devices/{id}/auth/{aid}": need(MANAGE_DEVICES, "device:id"),
    "DELETE /api/management/v2/devauth/devices/{id}": need(MANAGE_DEVICES, "device:id"),
    "DELETE /api/management/v2/devauth/tokens/{id}": need(MANAGE_DEVICES),
    # bulk operations on a selection (ids or a search): over all devices
    "PUT /api/management/v2/devauth/devices/status": need(MANAGE_DEVICES),
    "DELETE /api/management/v2/devauth/devices": need(MANAGE_DEVICES),

    # inventory ------------------------------------------------------------------------------------
    "GET /api/management/v1/inventory/devices": need(READ_DEVICES, LISTED),
    "GET /api/management/v1/inventory/devices/{device_id}": need(READ_DEVICES, "device:device_id"),
    "GET /api/management/v1/inventory/devices/{device_id}/group": need(READ_DEVICES, "device:device_id"),
    "GET /api/management/v1/inventory/groups": need(READ_DEVICES, LISTED),
    "GET /api/management/v1/inventory/groups/{name}/devices": need(READ_DEVICES, "group:name"),
    "GET /api/management/v2/inventory/filters": need(READ_DEVICES, ANY),
    "GET /api/management/v2/inventory/filters/{filter_id}": need(READ_DEVICES, ANY),
    "GET /api/management/v2/inventory/filters/attributes": need(READ_DEVICES, ANY),
    "GET /api/management/v2/inventory/filters/{filter_id}/search": need(READ_DEVICES, LISTED),
    "POST /api/management/v2/inventory/filters/search": need(READ_DEVICES, LISTED),
    "POST /api/management/v2alpha1/inventory/identities/search": need(READ_DEVICES, LISTED),
    "GET /api/management/v2/inventory/statistics": need(READ_DEVICES),
    "DELETE /api/management/v1/inventory/devices/{device_id}": need(MANAGE_DEVICES, "device:device_id"),
    "PUT /api/management/v1/inventory/devices/{device_id}/tags": need(MANAGE_DEVICES, "device:device_id"),
    "PATCH /api/management/v1/inventory/devices/{device_id}/tags": need(MANAGE_DEVICES, "device:device_id"),
    "PUT /api/management/v1/inventory/devices/{device_id}/group": need(MANAGE_DEVICES),
    "DELETE /api/management/v1/inventory/devices/{device_id}/group/{name}": need(MANAGE_DEVICES),
    "PATCH /api/management/v1/inventory/groups/{name}/devices": need(MANAGE_DEVICES),
    "DELETE /api/management/v1/inventory/groups/{name}/devices": need(MANAGE_DEVICES),
    "DELETE /api/management/v1/inventory/groups/{name}": need(MANAGE_DEVICES),
    "POST /api/management/v2/inventory/filters": need(MANAGE_DEVICES),
    "DELETE /api/management/v2/inventory/filters/{filter_id}": need(MANAGE_DEVICES),
    # bulk operations on a selection (ids or a search): over all devices
    "PATCH /api/management/v2/inventory/devices/tags": need(MANAGE_DEVICES),
    "PATCH /api/management/v2/inventory/groups/{name}/devices": need(MANAGE_DEVICES),
    "DELETE /api/management/v2/inventory/groups/{name}/devices": need(MANAGE_DEVICES),

    # deployments ----------------------------------------------------------------------------------
    "GET /api/management/v1/deployments/deployments": need(READ_DEVICES, ANY),
    "GET /api/management/v2/deployments/deployments": need(READ_DEVICES, ANY),
    "GET /api/management/v1/deployments/deployments/{deployment_id}": need(READ_DEVICES, ANY),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/statistics": need(READ_DEVICES, ANY),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/statistics/phases": need(READ_DEVICES, ANY),
    "POST /api/management/v1/deployments/deployments/statistics/list": need(READ_DEVICES, ANY),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/devices": need(READ_DEVICES),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/devices/list": need(READ_DEVICES),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/device_list": need(READ_DEVICES),
    "GET /api/management/v1/deployments/deployments/{deployment_id}/devices/{device_id}/log":
        need(READ_DEVICES, "device:device_id"),
    "GET /api/management/v1/deployments/deployments/devices/{device_id}": need(READ_DEVICES, "device:device_id"),
    "POST /api/management/v1/deployments/deployments":
        need(DEPLOY_TO_DEVICES, TARGET) + need(READ_RELEASES, TARGET),
    "POST /api/management/v2/deployments/deployments":
        need(DEPLOY_TO_DEVICES, TARGET) + need(READ_RELEASES, TARGET),
    "POST /api/management/v1/deployments/deployments/group/{name}":
        need(DEPLOY_TO_DEVICES, "group:name") + need(READ_RELEASES, TARGET),
    "PUT /api/management/v1/deployments/deployments/{deployment_id}/status": need(DEPLOY_TO_DEVICES),
    "DELETE /api/management/v1/deployments/deployments/devices/{device_id}": need(DEPLOY_TO_DEVICES, "device:device_id"),
    "DELETE /api/management/v1/deployments/deployments/devices/{device_id}/history": need(MANAGE_DEVICES, "device:device_id"),

    # rollout control: pause, resume, next phase, update control maps; history and failure insight
    "POST /api/management/v2/deployments/deployments/{deployment_id}/pause": need(DEPLOY_TO_DEVICES),
    "POST /api/management/v2/deployments/deployments/{deployment_id}/resume": need(DEPLOY_TO_DEVICES),
    "POST /api/management/v2/deployments/deployments/{deployment_id}/continue": need(DEPLOY_TO_DEVICES),
    "PATCH /api/management/v1/deployments/deployments/{deployment_id}": need(DEPLOY_TO_DEVICES),
    "PATCH /api/management/v1/deployments/deployments/{deployment_id}/devices/{device_id}":
        need(DEPLOY_TO_DEVICES, "device:device_id"),
    "GET /api/management/v2/deployments/deployments/{deployment_id}/history": need(READ_DEVICES, ANY),
    "GET /api/management/v2/deployments/deployments/{deployment_id}/insights": need(READ_DEVICES),

    # releases and artifacts -----------------------------------------------------------------------
    "GET /api/management/v1/deployments/artifacts": need(READ_RELEASES),
    "GET /api/management/v1/deployments/artifacts/list": need(READ_RELEASES),
    "GET /api/management/v2/deployments/artifacts": need(READ_RELEASES),
    "GET /api/management/v1/deployments/artifacts/{artifact_id}": need(READ_RELEASES, "artifact:artifact_id"),
    "GET /api/management/v1/deployments/artifacts/{artifact_id}/download": need(READ_RELEASES, "artifact:artifact_id"),
    "GET /api/management/v1/deployments/deployments/releases": need(READ_RELEASES),
    "GET /api/management/v1/deployments/deployments/releases/list": need(READ_RELEASES),
    "GET /api/management/v2/deployments/deployments/releases": need(READ_RELEASES, LISTED),
    "GET /api/management/v2/deployments/deployments/releases/{release_name}": need(READ_RELEASES, "release:release_name"),
    "GET /api/management/v2/deployments/releases/all/tags": need(READ_RELEASES, ANY),
    "GET /api/management/v2/deployments/releases/all/types": need(READ_RELEASES),
    "GET /api/management/v1alpha1/deployments/software": need(READ_RELEASES),
    "GET /api/management/v1alpha1/deployments/software/tags": need(READ_RELEASES),
    "GET /api/management/v1/deployments/limits/storage": need(READ_RELEASES, ANY),
    "POST /api/management/v1/deployments/artifacts": need(UPLOAD_ARTIFACTS),
    "POST /api/management/v1/deployments/artifacts/directupload": need(UPLOAD_ARTIFACTS),
    "POST /api/management/v1/deployments/artifacts/directupload/{upload_id}/complete": need(UPLOAD_ARTIFACTS),
    "POST /api/management/v1/deployments/artifacts/generate": need(UPLOAD_ARTIFACTS),
    "PUT /api/management/v1/deployments/artifacts/{artifact_id}": need(MANAGE_RELEASES, "artifact:artifact_id"),
    "DELETE /api/management/v1/deployments/artifacts/{artifact_id}": need(MANAGE_RELEASES, "artifact:artifact_id"),
    "PATCH /api/management/v2/deployments/deployments/releases/{release_name}": need(MANAGE_RELEASES, "release:release_name"),
    "PUT /api/management/v2/deployments/deployments/releases/{release_name}/tags": need(MANAGE_RELEASES),
    "DELETE /api/management/v2/deployments/deployments/releases": need(MANAGE_RELEASES),

    # deviceconfig -------------------------------------------------------------------------------
    "GET /api/management/v1/deviceconfig/configurations/device/{device_id}": need(READ_DEVICES, "device:device_id"),
    "PUT /api/management/v1/deviceconfig/configurations/device/{device_id}":
        need(CONFIGURE_DEVICES, "device:device_id"),
    "POST /api/management/v1/deviceconfig/configurations/device/{device_id}/deploy":
        need(CONFIGURE_DEVICES, "device:device_id"),

    # tenantadm: every user sees its organization (name in the UI's header, tenant token in Settings);
    # rotating the token and administering organizations is for administrators (the views further
    # require a user of the default organization for the latter); signup is public (TENANTADM_SIGNUP)
    "GET /api/management/v1/tenantadm/user/tenant": BASIC_ONLY,
    "POST /api/management/v1/tenantadm/user/tenant/tenant_token": need(SUPER_USER),
    "POST /api/management/v1/tenantadm/tenants": OPEN,
    "POST /api/management/v2/tenantadm/tenants": OPEN,
    "DELETE /api/management/v2/tenantadm/tenants/{tenant_id}": need(SUPER_USER),
    "PUT /api/management/v2/tenantadm/tenants/{tenant_id}/status": need(SUPER_USER),

    # iot-manager: integrations hold credentials and send device data out (administrators only);
    # a device's state at an integration is device data
    "GET /api/management/v1/iot-manager/integrations": need(SUPER_USER),
    "POST /api/management/v1/iot-manager/integrations": need(SUPER_USER),
    "GET /api/management/v1/iot-manager/integrations/{integration_id}": need(SUPER_USER),
    "DELETE /api/management/v1/iot-manager/integrations/{integration_id}": need(SUPER_USER),
    "PUT /api/management/v1/iot-manager/integrations/{integration_id}/credentials": need(SUPER_USER),
    "GET /api/management/v1/iot-manager/events": need(SUPER_USER),
    "GET /api/management/v1/iot-manager/devices/{device_id}/state": need(READ_DEVICES, "device:device_id"),
    "GET /api/management/v1/iot-manager/devices/{device_id}/state/{integration_id}":
        need(READ_DEVICES, "device:device_id"),
    "PUT /api/management/v1/iot-manager/devices/{device_id}/state/{integration_id}":
        need(MANAGE_DEVICES, "device:device_id"),
    "DELETE /api/management/v1/iot-manager/devices/{device_id}": need(MANAGE_DEVICES, "device:device_id"),

    # auditlogs ------------------------------------------------------------------------------------
    "GET /api/management/v1/auditlogs/logs": need(READ_AUDIT_LOGS),
    "GET /api/management/v1/auditlogs/logs/export": need(READ_AUDIT_LOGS),

    # deviceconnect (the two websockets are served by the ASGI front) -----------------------------
    "GET /api/management/v1/deviceconnect/devices/{id}": need(READ_DEVICES, "device:id"),
    "GET /api/management/v1/deviceconnect/devices/{id}/connect": need(CONNECT_TO_DEVICES, "device:id"),
    "GET /api/management/v1/deviceconnect/sessions/{session_id}/playback": need(CONNECT_TO_DEVICES),
    "POST /api/management/v1/deviceconnect/devices/{id}/check-update": need(CONNECT_TO_DEVICES, "device:id"),
    "POST /api/management/v1/deviceconnect/devices/{id}/send-inventory": need(CONNECT_TO_DEVICES, "device:id"),
    "GET /api/management/v1/deviceconnect/devices/{id}/download": need(CONNECT_TO_DEVICES, "device:id"),
    "PUT /api/management/v1/deviceconnect/devices/{id}/upload": need(CONNECT_TO_DEVICES, "device:id"),
}


# ---------------------------------------------------------------------------- deciding
_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def route_key(method: str, rule: str) -> str:
    """The table's key of a werkzeug rule: `GET /a/<string:x>/b` -> `GET /a/{x}/b`."""
    return method + " " + _PARAM.sub(r"{\1}", rule)


def includes(permission_set: str) -> frozenset[str]:
    """The permission sets a grant of `permission_set` allows (itself included)."""
    found = {permission_set}
    todo = [permission_set]
    while todo:
        pset = PERMISSION_SETS.get(todo.pop())
        for inner in pset.includes if pset is not None else ():
            if inner == "*":
                return frozenset(PERMISSION_SETS)
            if inner not in found:
                found.add(inner)
                todo.append(inner)
    return frozenset(found)


_INCLUDES = {name: includes(name) for name in PERMISSION_SETS}


@dataclass(frozen=True, slots=True)
class Access:
    """The decision for one request. When allowed, `device_groups` / `release_tags` are the
    visible groups / tags (None: all), and `checks` the by-id checks still to make:
    (kind, path parameter): the object the parameter names must be visible."""

    allowed: bool
    reason: str = ""
    device_groups: frozenset[str] | None = None
    release_tags: frozenset[str] | None = None
    checks: tuple[tuple[str, str], ...] = ()

    @property
    def scoped(self) -> bool:
        return self.device_groups is not None or self.release_tags is not None


ALLOW_ALL = Access(True)
_SCOPE_WORDS = {DEVICE_GROUPS: "device groups", RELEASE_TAGS: "release tags"}


def decide(grants: tuple[Grant, ...] | list[Grant], needs: tuple[Need, ...] | None) -> Access:
    """Whether the holder of `grants` may perform an operation with `needs` (None: an operation
    the table does not name, always refused), and within which scope."""
    if needs is None:
        return Access(False, "operation not in the permission table")
    groups: frozenset[str] | None = None
    tags: frozenset[str] | None = None
    checks: list[tuple[str, str]] = []
    for n in needs:
        if n.permission_set in (PUBLIC, BASIC):
            continue
        relevant = [g for g in grants if n.permission_set in _INCLUDES.get(g.permission_set, ())]
        if not relevant:
            return Access(False, f"requires the permission set {n.permission_set}")
        if any(g.scope_type is None for g in relevant):
            continue
        scope_type = PERMISSION_SETS[n.permission_set].scope_types[0]
        values = frozenset().union(*(g.values for g in relevant if g.scope_type == scope_type))
        if n.scope == ANY:
            continue
        if n.scope == ALL or not values:
            return Access(False, f"not allowed to a role limited to {_SCOPE_WORDS[scope_type]}")
        if scope_type == DEVICE_GROUPS:
            groups = values if groups is None else groups & values
        else:
            tags = values if tags is None else tags & values
        if n.kind in _BY_ID:
            checks.append((n.kind, n.param))
    return Access(True, device_groups=groups, release_tags=tags, checks=tuple(checks))


def role_grants(role_names, custom_roles: dict[str, tuple[Grant, ...]] | None = None) -> tuple[Grant, ...]:
    """The grants of the named roles (built-in first, then `custom_roles`); unknown names grant nothing."""
    out: list[Grant] = []
    for name in role_names:
        builtin = BUILTIN_ROLES.get(name)
        if builtin is not None:
            out.extend(builtin.grants)
        elif custom_roles and name in custom_roles:
            out.extend(custom_roles[name])
    return tuple(out)


def allowed_for_role(role: str, key: str) -> bool:
    """Whether the built-in `role` may perform operation `key` over all devices and releases."""
    return decide(BUILTIN_ROLES[role].grants, ROUTES.get(key)).allowed


def _scope_text(needs: tuple[Need, ...]) -> str:
    parts = []
    for n in needs:
        if n.permission_set in (PUBLIC, BASIC):
            continue
        parts.append(n.scope)
    return ", ".join(parts) or "—"


def markdown_table() -> str:
    """The whole permission model as Markdown (docs/rbac.md carries it)."""
    out: list[str] = []
    roles = list(BUILTIN_ROLES)
    out.append("### Permission sets\n")
    out.append("| permission set | allows | may be limited to | includes |")
    out.append("|---|---|---|---|")
    for s in PERMISSION_SETS.values():
        inc = "everything" if "*" in s.includes else ", ".join(s.includes) or "—"
        out.append(f"| `{s.name}` | {s.description} | {', '.join(s.scope_types) or '—'} | {inc} |")
    out.append("\n### Built-in roles\n")
    out.append("| role | name in the UI | permission sets | meaning |")
    out.append("|---|---|---|---|")
    for r in BUILTIN_ROLES.values():
        sets = ", ".join(f"`{g.permission_set}`" for g in r.grants)
        out.append(f"| `{r.name}` | {r.title} | {sets} | {r.description} |")
    out.append("\n### Operations\n")
    short = {PERMIT_ALL: "admin", OBSERVER: "observer", USER_MANAGER: "user mgr", CI: "CI",
             DEPLOYMENTS_MANAGER: "deploy mgr", REMOTE_TERMINAL: "terminal"}
    out.append("| operation | needs | scope | " + " | ".join(short[r] for r in roles) + " |")
    out.append("|---|---|---|" + "---|" * len(roles))
    for key, needs in ROUTES.items():
        sets = " + ".join(n.permission_set for n in needs)
        marks = " | ".join("✓" if needs == OPEN or allowed_for_role(r, key) else "✗" for r in roles)
        out.append(f"| `{key}` | {sets} | {_scope_text(needs)} | {marks} |")
    return "\n".join(out)


GENERATED_BEGIN = "<!-- rbac-table: begin (generated by `flask --app wsgi rbac-table --write docs/rbac.md`) -->"
GENERATED_END = "<!-- rbac-table: end -->"


def replace_generated(text: str, table: str) -> str:
    """`text` (a Markdown document) with the part between the generated-table markers replaced
    by `table`; ValueError when the markers are missing."""
    start, end = text.find(GENERATED_BEGIN), text.find(GENERATED_END)
    if start < 0 or end < start:
        raise ValueError("the generated-table markers are missing")
    return text[:start + len(GENERATED_BEGIN)] + "\n" + table + "\n" + text[end:]
