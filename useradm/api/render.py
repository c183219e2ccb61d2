"""useradm's wire seam: the JSON shapes of its records, built here and nowhere else."""

from __future__ import annotations

from common.clock import rfc3339_ms
from useradm.model import Token, User

NEVER = "0001-01-01T00:00:00Z"  # what Mender (Go's zero time) shows for a token that never expires


def user(u: User) -> dict:
    """A user (never its password hash)."""
    out = {"id": u.id, "email": u.email, "created_ts": rfc3339_ms(u.created_ts), "updated_ts": rfc3339_ms(u.updated_ts)}
    if u.login_ts is not None:
        out["login_ts"] = rfc3339_ms(u.login_ts)
    return out


def personal_token(t: Token) -> dict:
    """A personal access token's description (the token itself is shown once, at creation)."""
    out = {"id": t.id, "name": t.name, "expiration_date": rfc3339_ms(t.exp) if t.exp is not None else NEVER,
           "created_ts": rfc3339_ms(t.created_ts)}
    if t.last_used is not None:
        out["last_used"] = rfc3339_ms(t.last_used)
    return out
