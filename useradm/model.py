"""useradm's records: users and their tokens (times are float Unix seconds)."""

from __future__ import annotations

from dataclasses import dataclass, field

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
