"""useradm's records: users and their tokens (times are float Unix seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.permissions import PERMIT_ALL, Grant

SESSION = "session"  # a login session's token
PAT = "pat"          # a personal access token


@dataclass(slots=True)
class User:
    id: str
    tenant_id: str
    email: str            # lower-cased
    password_hash: str = field(repr=False)
    created_ts: float = 0.0
    updated_ts: float = 0.0
    login_ts: float | None = None
    roles: list[str] = field(default_factory=lambda: [PERMIT_ALL])  # role names (built-in or the organization's)


@dataclass(slots=True)
class Token:
    """A login session or a personal access token; `id` is the JWT's `jti` (the secret is never stored)."""

    id: str
    tenant_id: str
    user_id: str
    kind: str             # SESSION or PAT
    created_ts: float
    name: str | None = None   # PATs only
    exp: float | None = None  # None: never expires
    last_used: float | None = None
    roles: list[str] | None = None  # PATs only: the subset of its user's roles it acts with (None: all)


@dataclass(slots=True)
class Role:
    """A custom role of an organization: permission sets, each over everything or narrowed to
    device groups / release tags (`common.permissions.Grant`). Built-in roles are not stored."""

    tenant_id: str
    name: str
    description: str = ""
    grants: tuple[Grant, ...] = ()
    created_ts: float = 0.0
    updated_ts: float = 0.0
