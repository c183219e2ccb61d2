"""Fixtures of the iotmanager tests: a webhook receiver on loopback and apps that may post to it."""

from __future__ import annotations

import pytest

from common.clock import FrozenClock
from tests.helpers import Operator
from tests.iotmanager.receiver import Receiver

HOOKS = "/api/management/v1/iot-manager"
T0 = 1_800_000_000.0


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def clock():
    return FrozenClock(T0)


@pytest.fixture
def hook_app(make_app, backend, clock):
    """An app whose deliveries go to loopback (the receiver), driven by hand: no delivery threads
    (`worker.run_once()` delivers), a frozen clock, a 3 s attempt timeout."""
    return make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0,
                    IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS=3, _CLOCK=clock)


@pytest.fixture
def hook_client(hook_app):
    return hook_app.test_client()


@pytest.fixture
def hook_operator(hook_app, hook_client):
    return Operator.create(hook_app, hook_client)


def service(app):
    return app.extensions["mender"].services.iotmanager


def drain(app, rounds: int = 50) -> int:
    """Run the delivery worker by hand until nothing is due; how many claims it made."""
    worker = service(app).worker
    claims = 0
    with app.app_context():
        while claims < rounds and worker.run_once():
            claims += 1
    return claims


def add_webhook(operator, url: str, secret: str | None = None, description: str = "") -> str:
    http = {"url": url}
    if secret is not None:
        http["secret"] = secret
    body = {"provider": "webhook", "credentials": {"type": "http", "http": http}}
    if description:
        body["description"] = description
    r = operator.post(f"{HOOKS}/integrations", json=body)
    assert r.status_code == 201, r.data
    return r.headers["Location"].rsplit("/", 1)[1]


def assert_one_at_a_time(events: list[dict]) -> None:
    """The server's own record: no two attempts to one integration overlapped in time."""
    from datetime import datetime
    spans: dict[str, list[tuple[float, float]]] = {}
    for event in events:
        for status in event["delivery_statuses"]:
            for a in status["attempts"]:
                start = datetime.fromisoformat(a["time"].replace("Z", "+00:00")).timestamp()
                spans.setdefault(status["integration_id"], []).append((start, start + a["duration_ms"] / 1000))
    for attempts in spans.values():
        attempts.sort()
        for (_, end), (start, _) in zip(attempts, attempts[1:]):
            assert start >= end - 0.002, (start, end)  # the log keeps milliseconds
