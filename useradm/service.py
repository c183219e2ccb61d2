"""useradm rules: users, login sessions, personal access tokens, settings. Never imports flask."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from common import audit, permissions
from common.identity import Identity
from common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from common.text import check_printable
from useradm import passwords
from useradm.model import PAT, SESSION, Role, Token, User
from useradm.store import UseradmStore
from useradm.tokens import TokenExpired, UserTokens, new_token_id

MAX_EMAIL_LENGTH = 254
MAX_TOKEN_NAME_LENGTH = 256
MAX_SETTINGS_BYTES = 64 * 1024
LOGIN_CANDIDATES = 1          # emails are unique on the server (docs/tenants.md)
PAT_LAST_USED_ACCURACY = 300  # seconds: `last_used` is written at most this often (as Mender)
MAX_ROLES_PER_USER = 32
MAX_CUSTOM_ROLES = 200        # per organization
MAX_ROLE_NAME_LENGTH = 64
MAX_ROLE_DESCRIPTION_LENGTH = 1024
MAX_SCOPE_VALUES = 100        # groups or tags in one scope
MAX_SCOPE_VALUE_LENGTH = 1024
_ROLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def normalize_email(email: Any) -> str:
    """The lower-cased email; BadRequest unless it is a plausible ASCII address."""
    if not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise BadRequest("email: must be a valid email address")
    return email.lower()


LAST_ADMIN = (f"the organization's last user holding {permissions.PERMIT_ALL} cannot be removed or lose "
              "that role")


def _builtin(r: permissions.BuiltinRole) -> Role:
    return Role(tenant_id="", name=r.name, description=r.description, grants=r.grants)


def _check_role_name(name: Any) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_ROLE_NAME_LENGTH or not _ROLE_NAME.fullmatch(name):
        raise BadRequest(f"name: 1 to {MAX_ROLE_NAME_LENGTH} letters, digits, '_', '.' or '-'")
    return name


def _check_description(description: Any) -> str:
    if description is None:
        return ""
    if not isinstance(description, str) or len(description) > MAX_ROLE_DESCRIPTION_LENGTH:
        raise BadRequest(f"description: text of at most {MAX_ROLE_DESCRIPTION_LENGTH} characters")
    check_printable(description, "description", allow_newlines=True)
    return description


def check_grants(items: Any) -> tuple[permissions.Grant, ...]:
    """Mender's `permission_sets_with_scope` ([{name, scope: {type, value: [..]}}]) as grants;
    BadRequest for an unknown set, a scope the set does not take, or bad values. SuperUser is
    for the built-in administrator only."""
    if not isinstance(items, (list, tuple)) or not items or len(items) > len(permissions.PERMISSION_SETS):
        raise BadRequest("permission_sets_with_scope: a non-empty list of permission sets")
    out: list[permissions.Grant] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("permission_sets_with_scope: each item names a permission set")
        pset = permissions.PERMISSION_SETS.get(item["name"])
        if pset is None or pset.name in (permissions.SUPER_USER, permissions.BASIC):
            raise BadRequest(f"permission_sets_with_scope: no such permission set: {item['name'][:64]}")
        scope = item.get("scope")
        if scope in (None, {}):
            out.append(permissions.Grant(pset.name))
            continue
        if not isinstance(scope, dict) or scope.get("type") not in pset.scope_types:
            allowed = ", ".join(pset.scope_types) or "none"
            raise BadRequest(f"permission_sets_with_scope: {pset.name} may be limited to: {allowed}")
        values = scope.get("value")
        if (not isinstance(values, list) or not 1 <= len(values) <= MAX_SCOPE_VALUES
                or not all(isinstance(v, str) and 1 <= len(v) <= MAX_SCOPE_VALUE_LENGTH and v.isprintable()
                           for v in values)):
            raise BadRequest(f"permission_sets_with_scope: {pset.name}: scope value: 1 to {MAX_SCOPE_VALUES} "
                             "names")
        out.append(permissions.Grant(pset.name, scope["type"], frozenset(values)))
    return tuple(out)


class UseradmService:
    def __init__(self, store: UseradmStore, config, clock, services, ensure_migrated=None):
        self._store = store
        # create_user and the CLI may run outside a request (tests, flask commands), where the
        # per-request migration hook has not run
        self._ensure_migrated = ensure_migrated or (lambda: None)
        self._config = config
        self._clock = clock
        self._services = services
        self.tokens = UserTokens(config, clock)

    def ensure_ready(self) -> None:
        """Apply useradm's migrations if this process has not yet (for callers outside a request)."""
        self._ensure_migrated()

    # users ------------------------------------------------------------------
    def create_user(self, email: str, password: str | None, tenant: str = "", *, roles: Any = None,
                    caller: Identity | None = None, user_id: str | None = None) -> User:
        """Create a user of an organization; BadRequest (email, unknown roles), Forbidden (the
        caller may not grant a role), NotFound (no such organization), Unprocessable (password
        rules, email taken: emails are unique on the server, the organization's user limit).
        Without `roles` the user is an administrator (RBAC_ROLE_PERMIT_ALL), as in Mender.
        `password` None makes a user who cannot log in until one is set (the internal API)."""
        email = normalize_email(email)
        role_names = [permissions.PERMIT_ALL] if roles is None else self._check_roles(tenant, roles)
        if caller is not None:
            self._check_may_grant(caller, [], role_names)
        if password is not None:
            if not isinstance(password, str):
                raise BadRequest("password: must be a string")
            passwords.check_password_rules(password)
        self._ensure_migrated()
        tenantadm = self._services.tenantadm
        if not tenantadm.exists(tenant):
            raise NotFound("organization not found")
        limit = tenantadm.max_users(tenant)
        if limit >= 0 and self.count_users(tenant) >= limit:
            raise Unprocessable(f"user limit reached: the organization may have at most {limit} users")
        now = self._clock.now()
        user = User(id=user_id or str(uuid.uuid4()), tenant_id=tenant, email=email,
                    password_hash=passwords.hash_password(password) if password is not None else passwords.NO_PASSWORD,
                    created_ts=now, updated_ts=now, roles=role_names)
        try:
            self._store.insert_user(user)
        except Conflict:
            raise Unprocessable("user with the same email already exists") from None
        if limit >= 0 and self.count_users(tenant) > limit:
            # a concurrent creation took the last place: never exceed the limit (both may fail)
            self._store.delete_user(tenant, user.id)
            raise Unprocessable(f"user limit reached: the organization may have at most {limit} users")
        return user

    def get_user(self, tenant: str, user_id: str) -> User:
        """The user; NotFound."""
        user = self._store.get_user(tenant, user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def list_users(self, tenant: str, *, ids=(), emails=(), created_after=None, created_before=None,
                   updated_after=None, updated_before=None, skip: int = 0, limit: int = 20
                   ) -> tuple[list[User], int]:
        emails = [e.lower() for e in emails]
        users, total = self._store.list_users(tenant, ids=ids, emails=emails, created_after=created_after,
                                              created_before=created_before, updated_after=updated_after,
                                              updated_before=updated_before, skip=skip, limit=limit)
        return users, total

    def update_user(self, caller: Identity, user_id: str, *, email: str | None = None,
                    password: str | None = None, current_password: str | None = None,
                    roles: Any = None) -> None:
        """Change a user's email, password and/or roles.

        Roles: the caller needs ManageUsers (checked by the permission table for
        PUT users/{id}; refused here on /users/me without it), only an administrator grants or
        takes RBAC_ROLE_PERMIT_ALL, and the organization keeps at least one administrator
        (Conflict). A role taken away counts at the user's next request, tokens included. Only an
        administrator changes another administrator's email (Forbidden): it is what they log in with.

        Changing one's own email or password needs the current password; a user cannot set
        another user's password. A password change revokes every other token of that user.
        Raises NotFound, BadRequest (email), Unprocessable (password rules, wrong or missing
        current password, another user's password, email taken).
        """
        tenant = caller.tenant
        user = self._store.get_user(tenant, user_id)
        if user is None:
            raise NotFound("user not found")
        fields: dict[str, Any] = {}
        if email is not None:
            new_email = normalize_email(email)
            if new_email != user.email:
                fields["email"] = new_email
        if password is not None:
            if not isinstance(password, str):
                raise BadRequest("password: must be a string")
            if user_id != caller.subject:
                raise Unprocessable("cannot change another user's password")
            passwords.check_password_rules(password)
        own = user_id == caller.subject
        if "email" in fields and not own and permissions.PERMIT_ALL in user.roles \
                and permissions.PERMIT_ALL not in self.caller_roles(caller):
            # users log in by email: changing an administrator's locks the administrator out
            raise Forbidden(f"forbidden: only an administrator changes the email of a holder of "
                            f"{permissions.PERMIT_ALL}")
        if own and (password is not None or "email" in fields):
            if not current_password:
                raise Unprocessable("current_password: required to change the email or password")
            if not passwords.verify_password(user.password_hash, current_password):
                raise Unprocessable("current_password: does not match")
        if password is not None:
            fields["password_hash"] = passwords.hash_password(password)
        new_roles = None
        if roles is not None:
            new_roles = self._check_roles(tenant, roles)
            if not permissions.decide(self.grants_for(caller), permissions.need(permissions.MANAGE_USERS)).allowed:
                raise Forbidden("forbidden: changing roles requires the permission set ManageUsers")
            self._check_may_grant(caller, user.roles, new_roles)
            if new_roles != user.roles:
                fields["roles"] = new_roles
        if not fields:
            return
        demoting = permissions.PERMIT_ALL in user.roles and new_roles is not None \
            and permissions.PERMIT_ALL not in new_roles
        self._update_user(tenant, user_id, fields)
        if demoting and self._store.count_role_holders(tenant, permissions.PERMIT_ALL) == 0:
            # checked after the write: of two administrators demoted at once, never both
            self._store.update_user(tenant, user_id, {"roles": user.roles})
            raise Conflict(LAST_ADMIN)
        if password is not None:
            self._revoke_user_tokens(tenant, user_id, except_id=caller.token_id if own else None)

    def set_password(self, email: str, password: str, tenant: str = "") -> User:
        """Set a user's password (admin CLI) and revoke all its tokens; NotFound, Unprocessable."""
        self._ensure_migrated()
        user = self._store.get_user_by_email(tenant, normalize_email(email))
        if user is None:
            raise NotFound("user not found")
        passwords.check_password_rules(password)
        self._store.update_user(tenant, user.id, {"password_hash": passwords.hash_password(password),
                                                  "updated_ts": self._clock.now()})
        self._revoke_user_tokens(tenant, user.id)
        return user

    def delete_user(self, tenant: str, user_id: str, caller: Identity | None = None) -> None:
        """Delete a user with its tokens and settings; idempotent. For a `caller` (the management
        API): Conflict for the organization's last administrator (RBAC_ROLE_PERMIT_ALL),
        Forbidden when a caller who is no administrator removes one. The internal API and the
        CLI (no caller) may remove anyone."""
        user = self._store.get_user(tenant, user_id) if caller is not None else None
        if user is not None and permissions.PERMIT_ALL in user.roles:
            self._check_may_grant(caller, user.roles, [])
            # demoted first, checked after the write (two administrators removed at once: never
            # both), then removed
            kept = [r for r in user.roles if r != permissions.PERMIT_ALL]
            self._store.update_user(tenant, user_id, {"roles": kept})
            if self._store.count_role_holders(tenant, permissions.PERMIT_ALL) == 0:
                self._store.update_user(tenant, user_id, {"roles": user.roles})
                raise Conflict(LAST_ADMIN)
        self._store.delete_user(tenant, user_id)
        self._revoked(tenant, user_id)

    def bootstrap_admin(self, email: str, password: str) -> User | None:
        """Create the first user of the default tenant unless any user exists; safe when several
        processes race (the unique index lets one win). Returns the user when it was created."""
        if not email:
            return None
        self._ensure_migrated()
        if self._store.any_user():
            return None
        try:
            return self.create_user(email, password, tenant="")
        except Unprocessable:
            if self._store.any_user():  # another process won the race
                return None
            raise

    # login, logout, authentication ------------------------------------------------
    def login(self, email: str, password: str, *, no_expiry: bool = False) -> str:
        """A new session token for valid credentials; Unauthorized (the same for an unknown user
        and a wrong password)."""
        try:
            email = normalize_email(email)
        except BadRequest:
            email = None
        candidates = self._store.find_login_candidates(email, LOGIN_CANDIDATES) if email else []
        user = None
        for candidate in candidates:
            if passwords.verify_password(candidate.password_hash, password):
                user = candidate
                break
        if not candidates:
            passwords.verify_password(None, password)  # same cost as a real check
        if user is None:
            # recorded in the organization of the account tried (the default one for an unknown
            # address); the address only when it is one (never what was typed otherwise)
            tried = candidates[0] if candidates else None
            audit.emit(audit.AuditEvent(
                action="login_failed", object_type="user", object_id=tried.id if tried else "",
                object_name=email, tenant=tried.tenant_id if tried else "",
                actor=audit.Actor(audit.USER, tried.id if tried else "", email), always=True))
            raise Unauthorized("invalid credentials")
        tenant, now = user.tenant_id, self._clock.now()
        self._services.tenantadm.check_active(tenant)  # a suspended organization's users cannot log in
        fields: dict[str, Any] = {"login_ts": now}
        if passwords.needs_rehash(user.password_hash):
            fields["password_hash"] = passwords.hash_password(password)
        self._store.update_user(tenant, user.id, fields)
        token_id = new_token_id()
        exp = None if no_expiry else now + self._config["USERADM_JWT_EXP_TIMEOUT"]
        self._store.insert_token(Token(id=token_id, tenant_id=tenant, user_id=user.id, kind=SESSION, created_ts=now,
                                       exp=exp))
        self._store.trim_sessions(tenant, user.id, max(1, self._config["USERADM_LIMIT_SESSIONS_PER_USER"]))
        audit.emit(audit.AuditEvent(action="login", object_type="user", object_id=user.id, object_name=user.email,
                                    tenant=tenant, actor=audit.Actor(audit.USER, user.id, user.email, token_id)))
        return self.tokens.issue(token_id=token_id, user_id=user.id, tenant=tenant, now=now, exp=exp)

    def logout(self, caller: Identity) -> None:
        """Revoke the caller's token (session or personal access token)."""
        if caller.token_id:
            self._store.delete_token(caller.tenant, caller.token_id, user_id=caller.subject)
            self._revoked(caller.tenant, caller.subject, caller.token_id)

    def authenticate(self, token: str) -> Identity:
        """The management authenticator: the identity of a valid, unrevoked user token.
        Raises TokenExpired (a subclass of Unauthorized) or Unauthorized."""
        claims = self.tokens.verify(token)
        tenant = claims.get("mender.tenant", "")
        found = self._store.get_live_token_and_roles(tenant, claims["jti"], claims["sub"])
        if found is None:
            raise Unauthorized("token revoked or user removed")
        row, user_roles = found
        if tenant:  # kept while the organization is suspended, refused until it is reactivated
            self._services.tenantadm.check_active(tenant)
        now = self._clock.now()
        if row.exp is not None and row.exp <= now:
            raise TokenExpired()
        if row.kind == PAT and (row.last_used is None or now - row.last_used >= PAT_LAST_USED_ACCURACY):
            self._store.touch_token(tenant, row.id, now)
        roles = user_roles if row.roles is None else [r for r in row.roles if r in user_roles]
        return Identity(subject=claims["sub"], tenant=tenant, is_user=True, token_id=claims["jti"],
                        claims=claims, roles=tuple(roles))

    def grants_for(self, identity: Identity) -> tuple[permissions.Grant, ...]:
        """The grants of the caller's roles as they are at this request (`Identity.roles`, read
        with the token); custom roles are read from the store (one query, only when held)."""
        names = identity.roles
        if names is None:
            if not identity.is_user:
                return ()
            user = self._store.get_user(identity.tenant, identity.subject)
            names = tuple(user.roles) if user is not None else ()
        custom = [n for n in names if n not in permissions.BUILTIN_ROLES]
        found = {r.name: r.grants for r in self._store.get_roles(identity.tenant, custom)} if custom else {}
        return permissions.role_grants(names, found)

    def caller_roles(self, identity: Identity) -> list[str]:
        """The roles the caller acts with now."""
        if identity.roles is not None:
            return list(identity.roles)
        return list(self.get_user(identity.tenant, identity.subject).roles)

    # roles -------------------------------------------------------------------------
    def _check_roles(self, tenant: str, roles: Any) -> list[str]:
        """Role names as given (duplicates dropped, order kept); BadRequest unless each is a
        built-in role or one of the organization's."""
        if not isinstance(roles, (list, tuple)) or not all(isinstance(r, str) for r in roles):
            raise BadRequest("roles: must be a list of role names")
        names = list(dict.fromkeys(roles))
        if len(names) > MAX_ROLES_PER_USER:
            raise BadRequest(f"roles: at most {MAX_ROLES_PER_USER}")
        custom = [n for n in names if n not in permissions.BUILTIN_ROLES]
        known = {r.name for r in self._store.get_roles(tenant, custom)} if custom else set()
        unknown = [n for n in custom if n not in known]
        if unknown:
            raise BadRequest(f"roles: no such role: {', '.join(n[:MAX_ROLE_NAME_LENGTH] for n in unknown[:5])}")
        return names

    def _check_may_grant(self, caller: Identity, before: list[str], after: list[str]) -> None:
        """Only an administrator grants or takes RBAC_ROLE_PERMIT_ALL (a user manager cannot make
        itself or anyone an administrator; Mender lets it)."""
        changes_admin = (permissions.PERMIT_ALL in before) != (permissions.PERMIT_ALL in after)
        if changes_admin and permissions.PERMIT_ALL not in self.caller_roles(caller):
            raise Forbidden(f"forbidden: only an administrator grants or takes {permissions.PERMIT_ALL}")

    def list_roles(self, tenant: str) -> list[Role]:
        """The built-in roles, then the organization's custom roles by name."""
        return [_builtin(r) for r in permissions.BUILTIN_ROLES.values()] + self._store.get_roles(tenant)

    def get_role(self, tenant: str, name: str) -> Role:
        """A built-in or custom role; NotFound."""
        builtin = permissions.BUILTIN_ROLES.get(name)
        if builtin is not None:
            return _builtin(builtin)
        found = self._store.get_roles(tenant, [name]) if isinstance(name, str) else []
        if not found:
            raise NotFound("role not found")
        return found[0]

    def create_role(self, tenant: str, name: Any, description: Any, grants: Any) -> Role:
        """A new custom role. BadRequest (name, description, permission sets and scopes),
        Conflict (the name is taken or built-in), Unprocessable (too many roles)."""
        name = _check_role_name(name)
        if name in permissions.BUILTIN_ROLES:
            raise Conflict("role with the same name already exists (a built-in role)")
        description = _check_description(description)
        grants = check_grants(grants)
        if len(self._store.get_roles(tenant)) >= MAX_CUSTOM_ROLES:
            raise Unprocessable(f"an organization has at most {MAX_CUSTOM_ROLES} custom roles")
        now = self._clock.now()
        role = Role(tenant_id=tenant, name=name, description=description, grants=grants, created_ts=now,
                    updated_ts=now)
        self._store.insert_role(role)
        return role

    def update_role(self, tenant: str, name: str, description: Any = None, grants: Any = None) -> Role:
        """Change a custom role (a built-in role cannot be changed: Conflict); it counts at each
        holder's next request. NotFound, BadRequest."""
        if name in permissions.BUILTIN_ROLES:
            raise Conflict("built-in roles cannot be changed")
        role = self.get_role(tenant, name)
        if description is not None:
            role.description = _check_description(description)
        if grants is not None:
            role.grants = check_grants(grants)
        role.updated_ts = self._clock.now()
        if not self._store.update_role(role):
            raise NotFound("role not found")
        return role

    def delete_role(self, tenant: str, name: str) -> None:
        """Delete a custom role; idempotent. Conflict for a built-in role or one a user holds."""
        if name in permissions.BUILTIN_ROLES:
            raise Conflict("built-in roles cannot be removed")
        holders = self._store.count_role_holders(tenant, name)
        if holders:
            raise Conflict(f"the role is assigned to {holders} user(s): take it from them first")
        self._store.delete_role(tenant, name)

    def _revoke_user_tokens(self, tenant: str, user_id: str | None, except_id: str | None = None) -> None:
        self._store.delete_user_tokens(tenant, user_id, except_id=except_id)
        self._revoked(tenant, user_id)

    def _revoked(self, tenant: str, user_id: str | None, token_id: str | None = None) -> None:
        """Every revocation passes here: the place to invalidate a token cache, should one be added."""

    # organizations --------------------------------------------------------------
    # A user belongs to exactly one organization: `tenant_id` of its record ("" is the default
    # organization). Login needs no organization (emails are unique on the server); the user's
    # tokens carry it (`mender.tenant`) and everything done with them is scoped to it.
    def check_new_user(self, email: Any, password: Any) -> str:
        """Validate a user about to be created (before its organization exists): the normalized
        email. BadRequest (email), Unprocessable (password rules), Conflict (email taken)."""
        email = normalize_email(email)
        if not isinstance(password, str):
            raise BadRequest("password: must be a string")
        passwords.check_password_rules(password)
        self._ensure_migrated()
        if self.find_user_by_email(email) is not None:
            raise Conflict("user with the same email already exists")
        return email

    def find_user_by_email(self, email: str) -> User | None:
        """The user with this email in any organization, or None."""
        try:
            email = normalize_email(email)
        except BadRequest:
            return None
        found = self._store.find_login_candidates(email, 1)
        return found[0] if found else None

    def count_users(self, tenant: str) -> int:
        """How many users the organization has."""
        return self._store.list_users(tenant, skip=0, limit=1)[1]

    def set_email(self, tenant: str, user_id: str, email: str) -> None:
        """Change a user's email (internal API). NotFound, BadRequest, Unprocessable (taken)."""
        self._update_user(tenant, user_id, {"email": normalize_email(email)})

    def _update_user(self, tenant: str, user_id: str, fields: dict[str, Any]) -> None:
        """Store changed fields of a user (and its `updated_ts`); NotFound, Unprocessable (email taken)."""
        try:
            updated = self._store.update_user(tenant, user_id, {**fields, "updated_ts": self._clock.now()})
        except Conflict:
            raise Unprocessable("user with the same email already exists") from None
        if not updated:
            raise NotFound("user not found")

    def delete_tenant(self, tenant: str) -> None:
        """Remove every user of the organization with their tokens and settings; idempotent."""
        self._store.delete_tenant(tenant)
        self._revoked(tenant, None)

    # internal API -----------------------------------------------------------
    def revoke_tokens(self, tenant: str, user_id: str | None = None) -> None:
        """Delete the tokens of a tenant's users (or of one user)."""
        self._revoke_user_tokens(tenant, user_id)

    # personal access tokens -------------------------------------------------
    def create_personal_token(self, caller: Identity, name: str, expires_in: int = 0, roles: Any = None) -> str:
        """A new personal access token of the caller (the JWT, shown only now). With `roles` it
        acts with those of its user's roles only (each request: those the user still holds);
        BadRequest for a role the caller does not act with now. Made by a narrowed token without
        `roles`, it is narrowed to that token's roles. BadRequest (name, expiry),
        Conflict (name taken), Unprocessable (too many tokens)."""
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_TOKEN_NAME_LENGTH:
            raise BadRequest(f"name: must be 1 to {MAX_TOKEN_NAME_LENGTH} characters")
        check_printable(name, "name")
        limit = self._config["USERADM_TOKEN_MAX_EXPIRATION_SECONDS"]
        if not isinstance(expires_in, int) or expires_in < 0 or expires_in > limit:
            raise BadRequest(f"expires_in: must be between 0 (never expires) and {limit} seconds")
        tenant, user_id = caller.tenant, caller.subject
        calling = self._store.get_live_token(tenant, caller.token_id, user_id) if caller.token_id else None
        token_roles = None
        if roles is not None:
            token_roles = self._check_roles(tenant, roles)
            mine = self.caller_roles(caller)
            beyond = [r for r in token_roles if r not in mine]
            if beyond:
                raise BadRequest(f"roles: a token acts with a subset of its user's roles; not held: "
                                 f"{', '.join(beyond[:5])}")
        elif calling is not None and calling.roles is not None:
            # made by a narrowed token: as narrow as it (else a leaked read-only token would mint
            # one acting with every role of its user)
            token_roles = list(calling.roles)
        now = self._clock.now()
        self._check_outlives_no_caller_pat(calling, expires_in, now)
        if self._store.count_tokens(tenant, user_id, PAT) >= self._config["USERADM_LIMIT_TOKENS_PER_USER"]:
            raise Unprocessable("maximum number of personal access tokens reached for this user")
        exp = now + expires_in if expires_in else None
        token_id = new_token_id()
        self._store.insert_token(Token(id=token_id, tenant_id=tenant, user_id=user_id, kind=PAT, created_ts=now,
                                       name=name, exp=exp, roles=token_roles))
        change = f"expires_in: {expires_in or 'never'}" + (f"; roles: {', '.join(token_roles)}" if token_roles else "")
        audit.emit(audit.AuditEvent(action="create", object_type="user_access_token", object_id=token_id,
                                    object_name=name, change=change))
        return self.tokens.issue(token_id=token_id, user_id=user_id, tenant=tenant, now=now, exp=exp)

    @staticmethod
    def _check_outlives_no_caller_pat(row: Token | None, expires_in: int, now: float) -> None:
        """A personal access token (`row`, the caller's token) may create tokens, but none that
        outlives it: whoever holds a leaked 60-second token must not turn it into a permanent one
        (Mender does not check this). BadRequest names the longest lifetime still allowed. A login
        session may create any token (a PAT outliving the session that made it is what PATs are for)."""
        if row is None or row.kind != PAT or row.exp is None:
            return
        remaining = int(row.exp - now)
        if expires_in == 0 or expires_in > remaining:
            raise BadRequest(f"expires_in: a personal access token cannot create a token that outlives it: "
                             f"at most {max(remaining, 0)} seconds (never-expiring tokens need a login "
                             f"session or a token that never expires)")

    def list_personal_tokens(self, caller: Identity) -> list[Token]:
        """The caller's personal access tokens (never the secrets), oldest first."""
        return self._store.list_tokens(caller.tenant, caller.subject, PAT)

    def delete_personal_token(self, caller: Identity, token_id: str) -> None:
        """Revoke one of the caller's personal access tokens; idempotent."""
        self._store.delete_token(caller.tenant, token_id, user_id=caller.subject, kind=PAT)
        self._revoked(caller.tenant, caller.subject, token_id)

    # settings ---------------------------------------------------------------
    def get_settings(self, tenant: str, user_id: str = "") -> tuple[dict, str | None]:
        """(settings, etag) of the tenant, or of one user; ({}, None) when never set."""
        found = self._store.get_settings(tenant, user_id)
        return found if found is not None else ({}, None)

    def put_settings(self, tenant: str, data: Any, user_id: str = "", if_match: str | None = None) -> str:
        """Replace the settings; returns the new etag. BadRequest (not an object, too large),
        PreconditionFailed (If-Match given and not the current etag)."""
        if not isinstance(data, dict):
            raise BadRequest("settings: must be a JSON object")
        if len(json.dumps(data, separators=(",", ":"))) > MAX_SETTINGS_BYTES:
            raise BadRequest(f"settings: larger than {MAX_SETTINGS_BYTES} bytes")
        etag = uuid.uuid4().hex
        self._store.put_settings(tenant, user_id, data, etag, if_match)
        return etag
