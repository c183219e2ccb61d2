"""The iotmanager store interface (integrations, events, the delivery queue) and the backend selector."""

from __future__ import annotations

from abc import ABC, abstractmethod

from iotmanager.model import Attempt, Claim, Delivery, Event, HTTPCredentials, Integration


class IotManagerStore(ABC):
    """One method per query. Every method takes the tenant ('' = default) except the delivery
    worker's queue operations (`claim`, `fail_orphans`, `prune`, `has_integrations`), which
    serve every organization and return the tenant of what they found.

    Ordering: each recorded event gets a sequence number that grows with every event recorded
    after it returned (SQLite: the row id, assigned under the single writer; MongoDB: a counter
    per organization, `$inc`). A delivery carries its event's number; an integration's queue is
    its pending deliveries in that order.

    Scheduling: each integration row has `next_due` (when its queue's head may next be tried;
    empty when nothing is queued) and a lease (`lease_owner`, `lease_until`): a worker claims an
    integration whose `next_due` has come and whose lease has expired, in one conditional write.
    """

    migrations: list

    # integrations -----------------------------------------------------------
    @abstractmethod
    def insert_integration(self, integration: Integration, limit: int) -> None:
        """Insert an integration; Conflict when the organization already has `limit` of them."""

    @abstractmethod
    def get_integration(self, tenant: str, integration_id: str) -> Integration | None:
        """The integration, or None."""

    @abstractmethod
    def list_integrations(self, tenant: str, skip: int = 0, limit: int = 20) -> list[Integration]:
        """The organization's integrations, oldest first."""

    @abstractmethod
    def count_integrations(self, tenant: str) -> int:
        """How many integrations the organization has."""

    @abstractmethod
    def set_credentials(self, tenant: str, integration_id: str, credentials: HTTPCredentials) -> bool:
        """Replace an integration's credentials; False when it does not exist."""

    @abstractmethod
    def delete_integration(self, tenant: str, integration_id: str, now: float) -> bool:
        """Delete an integration and finish its pending deliveries as failed ("integration
        removed"); False when it did not exist."""

    # events -------------------------------------------------------------------
    @abstractmethod
    def webhook_ids(self, tenant: str) -> list[str]:
        """Ids of the organization's webhook integrations (the recipients of its events)."""

    @abstractmethod
    def enqueue(self, event: Event, integration_ids: list[str], now: float, deadline: float,
                expire: float) -> list[str]:
        """Record the event with a delivery to each of these integrations that still exists
        (attempt due `now`, given up after `deadline`), and make their queues due; the whole
        record disappears after `expire`. On SQLite inside the caller's transaction when there
        is one. Returns the integration ids it was queued for (none: nothing was recorded)."""

    @abstractmethod
    def list_events(self, tenant: str, integration_id: str | None = None, skip: int = 0,
                    limit: int = 20) -> list[Event]:
        """Events newest first (only those sent to `integration_id` when given), each with its
        deliveries and their attempts."""

    # the delivery queue (every organization) ---------------------------------
    @abstractmethod
    def has_integrations(self) -> bool:
        """Whether any organization has an integration (whether a delivery worker has work)."""

    @abstractmethod
    def claim(self, owner: str, now: float, lease_until: float) -> Claim | None:
        """Take the lease of one integration that is due (`next_due` <= now) and not leased
        (`lease_until` < now), the one due longest first; None when there is none. Atomic: two
        workers never hold one integration."""

    @abstractmethod
    def renew(self, claim: Claim, lease_until: float) -> bool:
        """Extend a held lease; False when it is no longer held by `claim.owner` (expired and
        taken, or the integration deleted)."""

    @abstractmethod
    def release(self, claim: Claim, next_due: float | None) -> None:
        """Give the lease up; with `next_due`, also set when the queue is next due (without, leave
        it as it is)."""

    @abstractmethod
    def set_idle(self, claim: Claim) -> None:
        """Mark the held integration's queue empty (`next_due` unset). A delivery enqueued after
        this makes it due again; the worker looks for a head once more after calling it."""

    @abstractmethod
    def queue_head(self, tenant: str, integration_id: str) -> Delivery | None:
        """The integration's pending delivery with the lowest sequence number, with its event's
        body; None when nothing is pending."""

    @abstractmethod
    def record_attempt(self, delivery: Delivery, attempt: Attempt, state: str, next_attempt_ts: float,
                       keep: int) -> bool:
        """Append an attempt to a pending delivery (keeping its `keep` newest) and set its state
        and next attempt time; conditional on the attempts recorded so far being the ones the
        caller read (False otherwise: someone else recorded first)."""

    @abstractmethod
    def fail_orphans(self, before: float, limit: int) -> int:
        """Finish as failed ("integration removed") up to `limit` pending deliveries whose deadline
        was before `before` and whose integration no longer exists (a delivery queued while its
        integration was being deleted); the count."""

    @abstractmethod
    def prune(self, now: float, limit: int) -> int:
        """Delete up to `limit` events (with their deliveries) that expired before `now`; the count."""

    # organizations --------------------------------------------------------------
    @abstractmethod
    def delete_tenant(self, tenant: str) -> None:
        """Delete every integration, event and delivery of the organization."""


# --- the stored forms of credentials and attempts, shared by both backends ---------------------

def credentials_doc(credentials: HTTPCredentials) -> dict:
    return {"type": "http", "http": {"url": credentials.url,
                                     "secret": credentials.secret.hex() if credentials.secret else None}}


def credentials_from(doc: dict) -> HTTPCredentials:
    http = doc.get("http") or {}
    secret = http.get("secret")
    return HTTPCredentials(url=http.get("url", ""), secret=bytes.fromhex(secret) if secret else None)


def attempt_doc(attempt: Attempt) -> dict:
    return {"ts": attempt.ts, "duration_ms": attempt.duration_ms, "success": attempt.success,
            "status_code": attempt.status_code, "error": attempt.error, "response": attempt.response}


def attempt_from(doc: dict) -> Attempt:
    return Attempt(ts=doc["ts"], duration_ms=doc["duration_ms"], success=doc["success"],
                   status_code=doc.get("status_code"), error=doc.get("error"), response=doc.get("response"))


def make_store(db) -> IotManagerStore:
    """The store for the configured backend."""
    if db.kind == "sqlite":
        from iotmanager.store.sqlite import SqliteIotManagerStore
        return SqliteIotManagerStore(db)
    from iotmanager.store.mongo import MongoIotManagerStore
    return MongoIotManagerStore(db)
