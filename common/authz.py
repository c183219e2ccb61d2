"""Deciding one management request with the permission table (`common.permissions`): the
caller's grants come from useradm, the decision from the table, and the by-id checks of a role
limited to device groups or release tags from the services. No Flask: the HTTP hook
(`common.auth`) and the websocket handlers both call `Authorizer.authorize`."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from common import permissions
from common.errors import Forbidden, Unavailable
from common.permissions import Access, Grant


class Authorizer:
    """One per app (`ctx.authorizer`). useradm sets `grants_of` (identity -> the grants of the
    caller's roles, as they are now: a role taken away counts at the next request)."""

    def __init__(self, services: Any):
        self._services = services
        self.grants_of: Callable[[Any], tuple[Grant, ...]] | None = None

    def authorize(self, identity: Any, method: str, key: str, params: Mapping[str, str] | None = None) -> Access:
        """The caller's access to operation `key` ("METHOD /path/{param}"); Forbidden when the
        table says no (an operation it does not name included)."""
        needs = permissions.ROUTES.get(key)
        if needs == permissions.OPEN:
            return permissions.ALLOW_ALL
        if self.grants_of is None:
            raise Unavailable("no authorization configured")
        access = permissions.decide(self.grants_of(identity), needs)
        if not access.allowed:
            raise Forbidden(f"forbidden: {access.reason}")
        return access
