"""Organization (tenant) ids as the APIs show them, and as records store them.

Records carry `tenant_id` "" for the default organization (the zero-setup one). Wherever an id
travels in a URL, a query argument or a JSON body, the default organization is named `default`:
an empty path segment cannot be routed. Every internal API accepts `default`; responses name the
default organization `default` too. Other organizations get random 24-hex-digit ids (the shape
of Mender's ObjectIDs), so no real id is ever `default`.
"""

from __future__ import annotations

import re
import secrets

from common.errors import BadRequest

DEFAULT_TENANT = ""
DEFAULT_TENANT_ID = "default"
TENANT_ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_TENANT_ID = re.compile(f"^{TENANT_ID_PATTERN}$")


def new_tenant_id() -> str:
    """A fresh organization id: 24 random hex digits."""
    return secrets.token_hex(12)


def is_valid_tenant_id(value: str) -> bool:
    """Whether `value` can name an organization in a URL (`default` included)."""
    return isinstance(value, str) and bool(_TENANT_ID.match(value))


def tenant_from_api(value: str | None) -> str:
    """The stored tenant id of an id given to an API: `default` (or an empty value) is the
    default organization. BadRequest for anything that cannot be an organization id."""
    if value is None or value == "" or value == DEFAULT_TENANT_ID:
        return DEFAULT_TENANT
    if not is_valid_tenant_id(value):
        raise BadRequest("tenant id: 1 to 64 letters, digits, '_' or '-'")
    return value


def tenant_to_api(tenant: str) -> str:
    """The id an API shows for a stored tenant id (`default` for the default organization)."""
    return tenant or DEFAULT_TENANT_ID
