"""Organization rules: creation, status (suspension, signup approval), deletion with every
record and object of the organization, tenant tokens, per-organization limits. Never imports
flask.

Statuses: `active` (its users log in, its devices authenticate), `suspended` (neither: set by
the server operator, reversible), `inactive` (a signup awaiting approval: neither). The default
organization ("") always exists and is always active; its record is made on first use.
"""

from __future__ import annotations

import hmac
import time
from typing import Any, Callable

from common.errors import BadRequest, ConfigError, Conflict, MethodNotAllowed, NotFound, Unauthorized
from common.logging import get_logger
from common.tenancy import DEFAULT_TENANT, DEFAULT_TENANT_ID, is_valid_tenant_id, new_tenant_id
from tenantadm.model import ACTIVE, INACTIVE, STATUSES, SUSPENDED, Admission, Limits, Tenant, Usage
from tenantadm.store import TenantadmStore
from tenantadm.tokens import TenantTokens

log = get_logger("tenantadm")

DEFAULT_NAME = "Default organization"
MAX_NAME_LENGTH = 100
MAX_USERS = "max_users"
SIGNUP_CLOSED, SIGNUP_APPROVAL, SIGNUP_OPEN = "closed", "approval", "open"
SIGNUP_MODES = (SIGNUP_CLOSED, SIGNUP_APPROVAL, SIGNUP_OPEN)

# Services whose records of an organization are removed with it: these first, in this order
# (devices stop first), then any other service with a `delete_tenant(tenant)` method (so a new
# service is never forgotten), users last. Each call is idempotent: a retry converges.
DELETE_FIRST = ("devauth", "deviceconnect", "deployments", "artifacts", "inventory")
DELETE_LAST = ("useradm",)


def check_name(name: Any) -> str:
    """A valid organization name (printable ASCII, as Mender's; trimmed), or BadRequest."""
    if not isinstance(name, str):
        raise BadRequest("name: must be a string")
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"name: 1 to {MAX_NAME_LENGTH} characters")
    if not all(" " <= c <= "~" for c in name):
        raise BadRequest("name: only printable ASCII characters are allowed")
    return name


class TenantadmService:
    def __init__(self, store: TenantadmStore, config, clock, services,
                 ensure_migrated: Callable[[], None] | None = None):
        self._store = store
        self._config = config
        self._clock = clock
        self._services = services
        self._ensure_migrated = ensure_migrated or (lambda: None)
        self.tokens = TenantTokens(config, clock)
        signup = str(config["TENANTADM_SIGNUP"]).strip().lower()
        if signup not in SIGNUP_MODES:
            raise ConfigError(f"TENANTADM_SIGNUP: must be one of {', '.join(SIGNUP_MODES)}")
        self.signup_mode = signup

    def ensure_ready(self) -> None:
        """Apply tenantadm's migrations if this process has not yet (callers outside a request)."""
        self._ensure_migrated()

    # ------------------------------------------------------------------ reading
    def get_tenant(self, tenant: str) -> Tenant:
        """The organization; NotFound. The default organization always exists."""
        if tenant == DEFAULT_TENANT:
            return self._default()
        found = self._store.get_tenant(tenant)
        if found is None:
            raise NotFound("organization not found")
        return found

    def _default(self) -> Tenant:
        found = self._store.get_tenant(DEFAULT_TENANT)
        if found is not None:
            return found
        token, token_id = self.tokens.issue(DEFAULT_TENANT)
        try:
            # created at time 0: it has always existed, and lists first
            self._store.insert_tenant(Tenant(id=DEFAULT_TENANT, name=DEFAULT_NAME, status=ACTIVE, tenant_token=token,
                                             token_id=token_id, created_ts=0.0, updated_ts=self._clock.now()))
        except Conflict:  # another process made it first
            pass
        return self._store.get_tenant(DEFAULT_TENANT)

    def exists(self, tenant: str) -> bool:
        """Whether the organization exists (the default one always does)."""
        self._ensure_migrated()
        return tenant == DEFAULT_TENANT or self._store.get_tenant(tenant) is not None

    def find(self, ref: str) -> Tenant:
        """The organization with this id (`default` included), else the only one with this name
        (any case). NotFound; BadRequest when several organizations have that name."""
        if ref == DEFAULT_TENANT_ID:
            return self._default()
        if is_valid_tenant_id(ref):
            found = self._store.get_tenant(ref)
            if found is not None:
                return found
        matches, total = self._store.list_tenants(name=ref, limit=2)
        if total > 1:
            raise BadRequest(f"{total} organizations are named {ref!r}: give the id")
        if not matches:
            raise NotFound(f"no organization with id or name {ref!r}")
        return matches[0]

    def list_tenants(self, *, q: str | None = None, username: str | None = None, skip: int = 0,
                     limit: int = 20) -> tuple[list[Tenant], int]:
        """A page of organizations, oldest first (the default one first), and the total.
        `username` selects the organization of the user with that email; `q` matches an id
        exactly or a name in part."""
        self._default()
        ids = None
        if username is not None:
            user = self._services.useradm.find_user_by_email(username)
            ids = [user.tenant_id] if user is not None else []
        return self._store.list_tenants(ids=ids, q=q or None, skip=skip, limit=limit)

    # ------------------------------------------------------------------ creation and changes
    def create_tenant(self, name: Any, *, admin_email: Any = None, admin_password: Any = None,
                      status: str = ACTIVE, max_devices: int | None = None, max_users: int | None = None,
                      storage_limit: int | None = None, tenant_id: str | None = None) -> Tenant:
        """Create an organization (with its first user when an email is given) and its limits.
        `tenant_id` keeps a known id (an organization moved from another server); by default a
        new one is drawn. BadRequest (name, email, limits, id), Unprocessable (password rules),
        Conflict (email or id taken). Nothing is left behind when any part fails."""
        name = check_name(name)
        if tenant_id is not None and (tenant_id == DEFAULT_TENANT_ID or not is_valid_tenant_id(tenant_id)):
            raise BadRequest("id: 1 to 64 letters, digits, '_' or '-', and not 'default'")
        self._ensure_migrated()
        useradm = self._services.useradm
        if admin_email is not None or admin_password is not None:
            useradm.check_new_user(admin_email, admin_password)
        self._check_limits(max_devices, max_users, storage_limit)
        now = self._clock.now()
        tenant_id = tenant_id or new_tenant_id()
        token, token_id = self.tokens.issue(tenant_id)
        tenant = Tenant(id=tenant_id, name=name, status=status, tenant_token=token, token_id=token_id,
                        created_ts=now, updated_ts=now)
        self._store.insert_tenant(tenant)
        try:
            self.set_limits(tenant_id, max_devices=max_devices, max_users=max_users, storage_limit=storage_limit)
            if admin_email is not None:
                useradm.create_user(admin_email, admin_password, tenant=tenant_id)
        except BaseException:
            self._purge(tenant_id)
            raise
        log.info("organization created", tenant_id=tenant_id, status=status)
        return tenant

    def signup(self, organization: Any, email: Any, password: Any) -> Tenant:
        """A public signup (TENANTADM_SIGNUP `approval` or `open`): the organization and its first
        user; inactive until approved under `approval`. Unauthorized when signup is closed."""
        if self.signup_mode == SIGNUP_CLOSED:
            raise Unauthorized("signup is closed: ask the server's administrators for an organization")
        if email is None or password is None:
            raise BadRequest("email and password: required")
        status = INACTIVE if self.signup_mode == SIGNUP_APPROVAL else ACTIVE
        return self.create_tenant(organization, admin_email=email, admin_password=password, status=status)

    def rename(self, tenant: str, name: Any) -> Tenant:
        """Change the organization's name; NotFound, BadRequest."""
        name = check_name(name)
        self.get_tenant(tenant)
        if not self._store.update_tenant(tenant, updated_ts=self._clock.now(), name=name):
            raise NotFound("organization not found")
        return self.get_tenant(tenant)

    def set_status(self, tenant: str, status: Any) -> Tenant:
        """Suspend (`suspended`) or reactivate (`active`) an organization. Suspension refuses its
        users' tokens and logins, and its devices' auth requests, and revokes its device tokens.
        BadRequest (status, the default organization), NotFound."""
        if status not in (ACTIVE, SUSPENDED):
            raise BadRequest(f"status: must be one of {ACTIVE}, {SUSPENDED}")
        if tenant == DEFAULT_TENANT:
            raise BadRequest("the default organization cannot be suspended")
        self.get_tenant(tenant)
        if not self._store.update_tenant(tenant, updated_ts=self._clock.now(), status=status):
            raise NotFound("organization not found")
        if status == SUSPENDED:
            # after the status change: an auth request that read `active` before it re-checks
            # the status once its token is written (devauth), so no token outlives this call
            self._services.devauth.revoke_tokens(tenant)
        log.info("organization status changed", tenant_id=tenant, status=status)
        return self.get_tenant(tenant)

    def activate(self, tenant: str, status: Any) -> None:
        """Approve a signup (management API v2: the only valid status is `active`). An active
        organization stays so. BadRequest, NotFound, Conflict when it is suspended."""
        if status != ACTIVE:
            raise BadRequest(f"status: the only valid status is {ACTIVE}")
        current = self.get_tenant(tenant)
        if current.status == SUSPENDED:
            raise Conflict("the organization is suspended")
        self._store.update_tenant(tenant, updated_ts=self._clock.now(), status=ACTIVE, expect_status=(INACTIVE,))

    def delete_tenant(self, tenant: str) -> None:
        """Remove an inactive or suspended organization with everything it has: devices,
        inventory, artifacts (objects included), deployments, users, tokens, limits. NotFound;
        MethodNotAllowed for an active (or the default) organization."""
        if tenant == DEFAULT_TENANT:
            raise MethodNotAllowed("the default organization cannot be removed")
        current = self.get_tenant(tenant)
        if current.status == ACTIVE:
            raise MethodNotAllowed("only an inactive or suspended organization can be removed: suspend it first")
        started = time.monotonic()
        self._purge(tenant)
        log.info("organization removed", tenant_id=tenant, seconds=round(time.monotonic() - started, 3))

    def _purge(self, tenant: str) -> None:
        assert tenant != DEFAULT_TENANT
        for name, service in self.tenant_data_services():
            service.delete_tenant(tenant)
        self._store.delete_tenant(tenant)

    def tenant_data_services(self) -> list[tuple[str, Any]]:
        """Every service holding records of organizations (those with `delete_tenant`), in
        deletion order."""
        found = {name: svc for name, svc in vars(self._services).items()
                 if svc is not self and callable(getattr(svc, "delete_tenant", None))}
        known = DELETE_FIRST + DELETE_LAST
        ordered = ([n for n in DELETE_FIRST if n in found] + sorted(n for n in found if n not in known)
                   + [n for n in DELETE_LAST if n in found])
        return [(n, found[n]) for n in ordered]

    # ------------------------------------------------------------------ tenant tokens
    def rotate_token(self, tenant: str) -> Tenant:
        """Give the organization a new tenant token. Devices whose key is already accepted (or
        preauthorized) keep authenticating with the old one; it admits no new device. NotFound."""
        self.get_tenant(tenant)
        token, token_id = self.tokens.issue(tenant)
        if not self._store.set_token(tenant, token, token_id, self._clock.now()):
            raise NotFound("organization not found")
        log.info("tenant token rotated", tenant_id=tenant)
        return self.get_tenant(tenant)

    def verify_token(self, token: str) -> Tenant:
        """The active organization whose current tenant token this is; Unauthorized otherwise
        (a retired token too: it would not admit a new device)."""
        admission = self.admit(token, allow_empty=False)
        if not admission.current:
            raise Unauthorized("tenant token verification failed: the token was rotated")
        return self.get_tenant(admission.tenant)

    def admit(self, tenant_token: Any, allow_empty: bool = True) -> Admission:
        """The organization a device's tenant token names. An empty token is the default
        organization unless MENDER_MULTI_TENANT is set. Unauthorized for a token that is not
        ours, names no organization, or one that is not active."""
        if tenant_token is None or tenant_token == "":
            if not allow_empty or self._config["MENDER_MULTI_TENANT"]:
                raise Unauthorized("tenant token missing")
            return Admission(DEFAULT_TENANT, True)
        if not isinstance(tenant_token, str):
            raise Unauthorized("tenant token verification failed")
        tenant, token_id = self.tokens.verify(tenant_token)
        found = self._store.get_tenant(tenant)
        if found is None:
            raise Unauthorized("tenant token verification failed")
        if found.status != ACTIVE:
            raise Unauthorized(f"organization {found.status}")
        return Admission(tenant, hmac.compare_digest(token_id.encode(), found.token_id.encode()))

    def require_active(self, tenant: str) -> None:
        """For writes on an organization's behalf (an artifact upload): NotFound when it does not
        exist, Conflict unless it is active."""
        if tenant == DEFAULT_TENANT:
            return
        found = self._store.get_tenant(tenant)
        if found is None:
            raise NotFound("organization not found")
        if found.status != ACTIVE:
            raise Conflict(f"the organization is {found.status}")

    def check_active(self, tenant: str) -> None:
        """Unauthorized unless the organization exists and is active (the default one always is)."""
        if tenant == DEFAULT_TENANT:
            return
        found = self._store.get_tenant(tenant)
        if found is None:
            raise Unauthorized("organization not found")
        if found.status != ACTIVE:
            raise Unauthorized(f"organization {found.status}")

    # ------------------------------------------------------------------ limits
    @staticmethod
    def _check_limits(max_devices, max_users, storage_limit) -> None:
        for name, value, low in (("max_devices", max_devices, -1), ("max_users", max_users, -1),
                                 ("storage_limit", storage_limit, 0)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
                raise BadRequest(f"{name}: must be an integer >= {low}")

    def max_users(self, tenant: str) -> int:
        """The organization's user limit (-1: unlimited)."""
        self._ensure_migrated()  # useradm asks from the CLI and the bootstrap too, outside a request
        value = self._store.get_limit(tenant, MAX_USERS)
        return int(self._config["USERADM_MAX_USERS"]) if value is None else value

    def set_limits(self, tenant: str, *, max_devices: int | None = None, max_users: int | None = None,
                   storage_limit: int | None = None) -> None:
        """Set the given limits of an organization: accepted devices (-1 unlimited), users (-1
        unlimited), artifact storage in bytes (0 unlimited). BadRequest."""
        self._check_limits(max_devices, max_users, storage_limit)
        if max_devices is not None:
            self._services.devauth.set_max_devices(tenant, max_devices)
        if max_users is not None:
            self._store.set_limit(tenant, MAX_USERS, max_users)
        if storage_limit is not None:
            self._services.artifacts.set_storage_limit(tenant, storage_limit)

    def limits(self, tenant: str) -> Limits:
        """The organization's limits with their usage (device and user limits -1 when unlimited,
        the storage limit 0 when unlimited, as Mender's APIs say)."""
        services = self._services
        devauth, artifacts = services.devauth, services.artifacts
        return Limits(devices=Usage(devauth.max_devices(tenant), devauth.count_devices(tenant, "accepted")),
                      users=Usage(self.max_users(tenant), services.useradm.count_users(tenant)),
                      storage=Usage(artifacts.storage_limit(tenant), artifacts.storage_usage(tenant)))

