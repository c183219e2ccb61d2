"""Deciding one management request with the permission table (`common.permissions`): the
caller's grants come from useradm, the decision from the table, and the by-id checks of a role
limited to device groups or release tags from the services. No Flask: the HTTP hook
(`common.auth`) and the websocket handlers both call `Authorizer.authorize`."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from common import permissions
from common.errors import Forbidden, NotFound, Unavailable
from common.permissions import Access, Grant


class Authorizer:
    """One per app (`ctx.authorizer`). useradm sets `grants_of` (identity -> the grants of the
    caller's roles, as they are now: a role taken away counts at the next request)."""

    def __init__(self, services: Any):
        self._services = services
        self.grants_of: Callable[[Any], tuple[Grant, ...]] | None = None
        # by-id checks of a role limited to groups or tags: kind ("device", "group", "release",
        # "artifact") -> (tenant, the path parameter's value, access) -> visible?; set by the
        # services that own the objects (inventory, artifacts)
        self.checkers: dict[str, Callable[[str, str, Access], bool]] = {}

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
        for kind, param in access.checks:
            checker = self.checkers.get(kind)
            if checker is None:
                raise Unavailable(f"no visibility check for {kind}")
            if not checker(identity.tenant, (params or {}).get(param, ""), access):
                raise NotFound(f"{kind} not found")  # as for an id that does not exist
        return access
