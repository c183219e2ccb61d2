"""The delivery worker: background threads in each server process that post recorded events to
their webhooks, one integration at a time, in order, with retries.

A thread claims one due integration (a lease in the database, so no two threads or hosts ever
hold one integration), then works through that integration's queue head first: it posts the
oldest pending delivery, records the attempt, and moves on only once that delivery is delivered
or given up. A failed attempt schedules the next one after an exponential backoff with jitter;
while it waits, the integration's later events wait behind it (per-integration order). After
BATCH deliveries, or when the head must wait, the lease is given up so other integrations get
their turn. The lease is renewed before every attempt and outlasts an attempt (timeout + margin),
so an attempt never runs without it.

Threads start after the first request of a process when the database has an integration (a
probe thread looks, so the request does not wait), or with the first event the process records; an event recorded in this process wakes them at once,
retries and other processes' events are found by polling every `poll` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import socket
import threading
import uuid
from typing import Callable

from common.logging import get_logger
from iotmanager import egress
from iotmanager.model import DELIVERED, FAILED, PENDING, Attempt, Claim, Delivery, Integration

log = get_logger("iotmanager")

ALGORITHM_HEADER = "X-Men-Algorithm"  # Mender's iot-manager headers
SIGNATURE_HEADER = "X-Men-Signature"
ALGORITHM = "MEN-HMAC-SHA256-Payload"
USER_AGENT = "mender-server-py iot-manager"

BATCH = 100  # deliveries to one integration before the lease is given up for others' turn
LEASE_MARGIN = 30.0  # seconds a lease outlasts the attempt it covers (clock skew between hosts included)
ATTEMPTS_KEPT = 50  # attempts recorded per delivery (the count is kept in full)
MAINTENANCE_INTERVAL = 60.0  # seconds between prunes of expired events
MAINTENANCE_BATCH = 1000


def sign(secret: bytes, body: bytes) -> str:
    """Mender's webhook signature: HMAC-SHA256 of the exact body, lowercase hex."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


class DeliveryWorker:
    def __init__(self, store, config, clock, resolver: egress.Resolver | None = None,
                 ready: Callable[[], None] | None = None):
        self._store = store
        self._clock = clock
        self._resolver = resolver
        self._ready = ready or (lambda: None)
        self.poll = float(config["IOT_MANAGER_WEBHOOKS_POLL_SECONDS"])
        self.threads = int(config["IOT_MANAGER_WEBHOOKS_WORKERS"])
        self.timeout = float(config["IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS"])
        self.retry_base = float(config["IOT_MANAGER_WEBHOOKS_RETRY_BASE_SECONDS"])
        self.retry_max_delay = float(config["IOT_MANAGER_WEBHOOKS_RETRY_MAX_DELAY_SECONDS"])
        self.allow_private = bool(config["IOT_MANAGER_DOMAIN_SKIPVERIFY"])
        self.lease = self.timeout + LEASE_MARGIN
        self._random = random.Random()
        self._lock = threading.Lock()
        self._pid: int | None = None  # the process whose threads run
        self._checked_pid: int | None = None  # the process that looked for integrations
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._running: list[threading.Thread] = []
        self._probing = threading.Event()
        self._maintained = 0.0

    # ------------------------------------------------------------------ starting and stopping
    def start_if_needed(self) -> None:
        """Start this process's threads if any organization has an integration (a before-request
        hook: the first request of a process starts a probe thread, and never waits for it)."""
        pid = os.getpid()
        if self._checked_pid == pid or self.poll <= 0:
            return
        with self._lock:
            if self._checked_pid == pid:
                return
            self._checked_pid = pid
            self._probing = probing = threading.Event()
        threading.Thread(target=self._probe, args=(probing,), name="webhook-probe", daemon=True).start()

    def _probe(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            try:
                # not through the migrations: they hold the database's lock while they wait for an
                # unreachable server, and this probe must never delay a request (a health check)
                if self._store.has_integrations():
                    self.start()
                return
            except Exception:  # noqa: BLE001 - not migrated yet, or the database is down: ask again
                stopped.wait(5.0)

    def start(self) -> None:
        """Start this process's delivery threads unless they run (threads do not survive a fork)."""
        if self.poll <= 0 or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = stop = threading.Event()
            self._wake = threading.Event()
            owner = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
            self._running = [threading.Thread(target=self._run, args=(stop, f"{owner}/{n}"),
                                              name=f"webhook-delivery-{n}", daemon=True)
                             for n in range(max(1, self.threads))]
            for thread in self._running:
                thread.start()

    def notify(self) -> None:
        """Something was queued: start the threads if needed and wake one."""
        self.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop this process's threads (an attempt under way ends by its timeout)."""
        self._probing.set()
        self._stop.set()
        self._wake.set()
        running, self._running = self._running, []
        for thread in running:
            if thread is not threading.current_thread():
                thread.join(self.timeout + 2.0)
        self._pid = self._checked_pid = None

    # ------------------------------------------------------------------ the loop
    def _run(self, stop: threading.Event, owner: str) -> None:
        while not stop.is_set():
            try:
                self._ready()
                while not stop.is_set() and self.run_once(owner, stop):
                    pass
                self._maintain()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the thread
                log.exception("webhook delivery round failed")
                stop.wait(min(max(self.poll, 1.0) * 5, 30.0))
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_once(self, owner: str = "manual", stop: threading.Event | None = None) -> bool:
        """Claim one due integration and work through its queue; False when none was due."""
        now = self._clock.now()
        claim = self._store.claim(owner, now, now + self.lease)
        if claim is None:
            return False
        self._drain(claim, stop or threading.Event())
        return True

    def _drain(self, claim: Claim, stop: threading.Event) -> None:
        store = self._store
        for _ in range(BATCH):
            now = self._clock.now()
            if not store.renew(claim, now + self.lease):
                return  # lost (expired and taken, or the integration was deleted)
            head = store.queue_head(claim.tenant_id, claim.integration_id)
            if head is None:
                # Mark the queue empty, then look again: an event queued after the mark makes the
                # integration due by itself, one queued before it is found by the second look.
                store.set_idle(claim)
                head = store.queue_head(claim.tenant_id, claim.integration_id)
                if head is None:
                    store.release(claim, None)
                    return
            if head.next_attempt_ts > now:
                store.release(claim, head.next_attempt_ts)
                return
            integration = store.get_integration(claim.tenant_id, claim.integration_id)
            if integration is None or stop.is_set():
                store.release(claim, now)
                return
            self._attempt(integration, head)
        store.release(claim, self._clock.now())

    def _attempt(self, integration: Integration, delivery: Delivery) -> None:
        body = (delivery.body or "").encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        secret = integration.credentials.secret
        if secret:
            headers[ALGORITHM_HEADER] = ALGORITHM
            headers[SIGNATURE_HEADER] = sign(secret, body)
        started = self._clock.now()
        result = egress.post(integration.credentials.url, body, headers, timeout=self.timeout,
                             allow_private=self.allow_private, resolver=self._resolver)
        ended = self._clock.now()
        number = delivery.attempt_count + 1
        attempt = Attempt(ts=started, duration_ms=result.duration_ms, success=result.success,
                          status_code=result.status_code, error=result.error, response=result.response)
        if result.success:
            state, next_attempt = DELIVERED, ended
        else:
            next_attempt = ended + self.backoff(number)
            state = PENDING if next_attempt <= delivery.deadline_ts else FAILED
        recorded = self._store.record_attempt(delivery, attempt, state, next_attempt, ATTEMPTS_KEPT)
        # the URL stays out of the log: receivers often carry a token in it
        log.info("webhook delivery attempt", event_id=delivery.event_id, integration_id=delivery.integration_id,
                 attempt=number, success=result.success, status_code=result.status_code, error=result.error,
                 state=state, recorded=recorded)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th failed attempt: base × 2^(failures-1), at most
        the maximum delay, drawn uniformly from the upper half of that (jitter)."""
        delay = min(self.retry_base * 2.0 ** min(failures - 1, 60), self.retry_max_delay)
        return delay * (0.5 + 0.5 * self._random.random())

    def _maintain(self) -> None:
        now = self._clock.now()
        with self._lock:
            if now - self._maintained < MAINTENANCE_INTERVAL:
                return
            self._maintained = now
        pruned = self._store.prune(now, MAINTENANCE_BATCH)
        orphans = self._store.fail_orphans(now, MAINTENANCE_BATCH)
        if pruned or orphans:
            log.info("webhook events pruned", expired=pruned, orphans=orphans)

