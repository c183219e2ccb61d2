"""useradm's wire seam: the JSON shapes of its records, built here and nowhere else."""

from __future__ import annotations

from common.clock import rfc3339_ms
from common import permissions
from useradm.model import Role, Token, User

NEVER = "0001-01-01T00:00:00Z"  # what Mender (Go's zero time) shows for a token that never expires


def user(u: User) -> dict:
    """A user (never its password hash)."""
    out = {"id": u.id, "email": u.email, "created_ts": rfc3339_ms(u.created_ts), "updated_ts": rfc3339_ms(u.updated_ts)}
    if u.login_ts is not None:
        out["login_ts"] = rfc3339_ms(u.login_ts)
    out["roles"] = list(u.roles)
    return out


def personal_token(t: Token) -> dict:
    """A personal access token's description (the token itself is shown once, at creation)."""
    out = {"id": t.id, "name": t.name, "expiration_date": rfc3339_ms(t.exp) if t.exp is not None else NEVER,
           "created_ts": rfc3339_ms(t.created_ts)}
    if t.last_used is not None:
        out["last_used"] = rfc3339_ms(t.last_used)
    if t.roles is not None:
        out["roles"] = list(t.roles)
    return out


def role(r: Role) -> dict:
    """A role as Mender's v2 API shows it (`permission_sets_with_scope`), with `permissions` (the
    v1 field, always empty here) and `built_in`."""
    sets = []
    for g in r.grants:
        item: dict = {"name": g.permission_set}
        if g.scope_type is not None:
            item["scope"] = {"type": g.scope_type, "value": sorted(g.values)}
        sets.append(item)
    return {"name": r.name, "description": r.description, "permission_sets_with_scope": sets, "permissions": [],
            "built_in": r.name in permissions.BUILTIN_ROLES}


def permission_set(s: permissions.PermissionSet) -> dict:
    return {"name": s.name, "description": s.description, "supported_scope_types": list(s.scope_types),
            "includes": sorted(permissions.includes(s.name) - {s.name})}
