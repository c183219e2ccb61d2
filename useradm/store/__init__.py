"""The useradm store interface: users, tokens (login sessions and personal access tokens), settings.

Users and tokens are `useradm.model` records; settings are (data: dict, etag: str), per tenant
(user_id "") or per user.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

from common.permissions import Grant
from useradm.model import PAT, SESSION, Role, Token, User  # noqa: F401  (PAT, SESSION: the kinds of tokens)


def grants_json(grants) -> list[dict]:
    """A role's grants as stored (both backends)."""
    return [{"set": g.permission_set, "scope": g.scope_type, "values": sorted(g.values)} for g in grants]


def grants_from(data) -> tuple[Grant, ...]:
    return tuple(Grant(d["set"], d.get("scope"), frozenset(d.get("values") or ())) for d in data or ())


class UseradmStore(ABC):
    migrations: Sequence[Any]

    # users ------------------------------------------------------------------
    @abstractmethod
    def insert_user(self, user: User) -> None:
        """Insert a new user. Raises Conflict if the email is taken (in any organization: emails
        are unique on the server) or the id is."""

    @abstractmethod
    def get_user(self, tenant: str, user_id: str) -> User | None:
        """The user, or None."""

    @abstractmethod
    def get_user_by_email(self, tenant: str, email: str) -> User | None:
        """The user with this (lower-cased) email in the tenant, or None."""

    @abstractmethod
    def find_login_candidates(self, email: str, limit: int) -> list[User]:
        """Users with this email in any tenant (at most one: emails are unique on the server),
        oldest first, at most `limit` (login has no tenant: the query that is not tenant-scoped)."""

    @abstractmethod
    def list_users(self, tenant: str | None, *, ids: Sequence[str] = (), emails: Sequence[str] = (),
                   created_after: float | None = None, created_before: float | None = None,
                   updated_after: float | None = None, updated_before: float | None = None,
                   skip: int = 0, limit: int = 20) -> tuple[list[User], int]:
        """A page of the tenant's users (by creation time) matching every given filter, and the total.
        `tenant` None: users of every organization (the internal API)."""

    @abstractmethod
    def update_user(self, tenant: str, user_id: str, fields: dict) -> bool:
        """Set `fields` (email, password_hash, updated_ts, login_ts, roles) on the user; False if it
        does not exist. Raises Conflict if the new email is taken in the tenant."""

    @abstractmethod
    def delete_user(self, tenant: str, user_id: str) -> bool:
        """Delete the user, its tokens and its settings; False if it did not exist."""

    @abstractmethod
    def count_role_holders(self, tenant: str, role: str) -> int:
        """How many users of the tenant hold the role (by name)."""

    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every user of the organization with their tokens and settings (idempotent)."""

    @abstractmethod
    def any_user(self) -> bool:
        """Whether any user exists in any tenant (bootstrap check)."""

    # tokens -----------------------------------------------------------------
    @abstractmethod
    def insert_token(self, token: Token) -> None:
        """Insert a token. Raises Conflict if a personal access token of the same user has that name."""

    @abstractmethod
    def get_live_token(self, tenant: str, token_id: str, user_id: str) -> Token | None:
        """The token if it exists, belongs to `user_id`, and that user exists; else None."""

    @abstractmethod
    def get_live_token_and_roles(self, tenant: str, token_id: str, user_id: str) -> tuple[Token, list[str]] | None:
        """As get_live_token, with the user's roles (one query where the backend can)."""

    @abstractmethod
    def list_tokens(self, tenant: str, user_id: str, kind: str) -> list[Token]:
        """The user's tokens of one kind, oldest first."""

    @abstractmethod
    def count_tokens(self, tenant: str, user_id: str, kind: str) -> int:
        """How many tokens of one kind the user has."""

    @abstractmethod
    def delete_token(self, tenant: str, token_id: str, user_id: str | None = None,
                     kind: str | None = None) -> bool:
        """Delete one token (restricted to a user / kind when given); False if none matched."""

    @abstractmethod
    def delete_user_tokens(self, tenant: str, user_id: str | None = None, *,
                           except_id: str | None = None, kind: str | None = None) -> int:
        """Delete the tokens of a user (all users of the tenant when None), optionally keeping one
        and restricted to a kind; returns how many were deleted."""

    @abstractmethod
    def trim_sessions(self, tenant: str, user_id: str, keep: int) -> int:
        """Delete the user's oldest login sessions beyond the newest `keep`; returns how many."""

    @abstractmethod
    def touch_token(self, tenant: str, token_id: str, ts: float) -> None:
        """Record that a token was used at `ts`."""

    # custom roles -------------------------------------------------------------
    @abstractmethod
    def insert_role(self, role: Role) -> None:
        """Insert a custom role; Conflict if the tenant has one of that name."""

    @abstractmethod
    def get_roles(self, tenant: str, names: Sequence[str] | None = None) -> list[Role]:
        """The tenant's custom roles (those named, when given), by name."""

    @abstractmethod
    def update_role(self, role: Role) -> bool:
        """Replace a custom role's description and grants; False if it does not exist."""

    @abstractmethod
    def delete_role(self, tenant: str, name: str) -> bool:
        """Delete a custom role; False if it did not exist."""

    # settings ---------------------------------------------------------------
    @abstractmethod
    def get_settings(self, tenant: str, user_id: str) -> tuple[dict, str] | None:
        """(settings, etag) of the tenant (user_id "") or of one user, or None if never set."""

    @abstractmethod
    def put_settings(self, tenant: str, user_id: str, data: dict, etag: str,
                     if_match: str | None) -> None:
        """Replace the settings and set their etag. With `if_match`, only if the stored etag is
        that value: raises PreconditionFailed otherwise (also when nothing is stored yet)."""

    # login rate-limit counters (fixed windows) --------------------------------------
    # Keys are hashes of an email or a client address, not tenant data: login happens before
    # the tenant is known, so these counters are the one global table of this store.
    @abstractmethod
    def rate_hit(self, key: str, amount: int, window: float, now: float) -> int:
        """Add `amount` to the counter of `key` (a new window of `window` seconds starts when
        there is none or it has ended) and return the new count. Atomic across processes."""

    @abstractmethod
    def rate_get(self, key: str, now: float) -> tuple[int, float] | None:
        """(count, window end) of the live window of `key`, or None."""

    @abstractmethod
    def rate_clear(self, key: str) -> None:
        """Forget the counter of `key`."""

    @abstractmethod
    def rate_reset(self) -> int:
        """Forget every counter; returns how many there were."""


def make_store(db) -> UseradmStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from useradm.store.sqlite import SqliteUseradmStore
        return SqliteUseradmStore(db)
    from useradm.store.mongo import MongoUseradmStore
    return MongoUseradmStore(db)
