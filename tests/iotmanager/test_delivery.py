"""Deliveries to a real receiver on loopback, the worker driven by hand under a frozen clock:
signatures over the exact body, retries with bounded backoff, per-integration order, giving up,
timeouts, redirects, bounded responses, and the SSRF guard (on by default)."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from iotmanager.delivery import DeliveryWorker
from tests.helpers import Operator
from tests.iotmanager.conftest import HOOKS, T0, add_webhook, drain, service
from tests.iotmanager.receiver import Receiver

SECRET = "5ecf3e7d00a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b"


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _emit(app, data=None, kind="device-status-changed", tenant=""):
    with app.app_context():
        return service(app).emit(tenant, kind, data or {"id": "device-1", "status": "accepted"})


def _events(operator, **params):
    r = operator.get(f"{HOOKS}/events", query_string=params)
    assert r.status_code == 200, r.data
    return r.get_json()


def _delivery(operator, event_id):
    event = next(e for e in _events(operator, per_page=500) if e["id"] == event_id)
    (status,) = event["delivery_statuses"]
    return status


def test_event_posted_signed_over_the_exact_body(hook_app, hook_operator, receiver):
    integration = add_webhook(hook_operator, receiver.url, secret=SECRET)
    event_id = _emit(hook_app, {"id": "device-1", "status": "accepted"})
    assert drain(hook_app) == 1
    (got,) = receiver.wait_for(1)
    assert got.path == "/hook"
    assert got.headers["Content-Type"] == "application/json"
    assert got.signature_ok(bytes.fromhex(SECRET))
    assert not got.signature_ok(bytes.fromhex(SECRET[:-2] + "00"))
    body = got.json
    assert body["id"] == event_id and body["type"] == "device-status-changed"
    assert body["data"] == {"id": "device-1", "status": "accepted"}
    assert abs(_ts(body["time"]) - T0) < 0.001
    # the events log says what was sent and how it went
    (event,) = _events(hook_operator)
    assert {k: event[k] for k in ("id", "type", "data", "time")} == body
    (status,) = event["delivery_statuses"]
    assert status["integration_id"] == integration
    assert (status["success"], status["state"], status["status_code"], status["attempt_count"]) == (True, "delivered", 200, 1)
    assert "error" not in status and "next_attempt" not in status
    (attempt,) = status["attempts"]
    assert attempt["success"] and attempt["status_code"] == 200 and attempt["response"] == '{"received": 1}'
    assert drain(hook_app) == 0  # nothing left


def test_without_a_secret_nothing_is_signed(hook_app, hook_operator, receiver):
    add_webhook(hook_operator, receiver.url)
    _emit(hook_app)
    drain(hook_app)
    (got,) = receiver.wait_for(1)
    assert "X-Men-Signature" not in got.headers and "X-Men-Algorithm" not in got.headers


def test_every_webhook_of_the_organization_gets_the_event_and_no_other_does(make_app, backend, clock):
    app = make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, _CLOCK=clock)
    client = app.test_client()
    ours, theirs = Operator.create(app, client), Operator.create(app, client, tenant="other-org")
    receivers = [Receiver().start() for _ in range(3)]
    try:
        add_webhook(ours, receivers[0].url)
        add_webhook(ours, receivers[1].url)
        add_webhook(theirs, receivers[2].url)
        assert _emit(app) is not None
        assert drain(app) == 2
        assert [len(r.requests) for r in receivers] == [1, 1, 0]
        assert receivers[0].requests[0].body == receivers[1].requests[0].body
        assert len(_events(ours)[0]["delivery_statuses"]) == 2 and _events(theirs) == []
        assert _emit(app, tenant="nobody") is None  # no webhook: nothing recorded
    finally:
        for r in receivers:
            r.stop()


def test_failed_attempts_retried_with_bounded_backoff_in_order(hook_app, hook_operator, receiver, clock):
    receiver.behaviour.fail_first = 3
    add_webhook(hook_operator, receiver.url, secret=SECRET)
    ids = [_emit(hook_app, {"id": f"device-{n}", "status": "pending"}) for n in range(3)]
    worker = service(hook_app).worker
    base = worker.retry_base
    for failures in (1, 2, 3):
        drain(hook_app)
        assert len(receiver.requests) == failures  # later events wait behind the failing one
        status = _delivery(hook_operator, ids[0])
        assert status["state"] == "pending" and not status["success"]
        assert (status["status_code"], status["error"], status["attempt_count"]) == (500, "HTTP 500", failures)
        delay = _ts(status["next_attempt"]) - clock.now()
        full = base * 2 ** (failures - 1)
        assert full / 2 - 0.001 <= delay <= full + 0.001  # the upper half of base × 2^(n-1)
        assert drain(hook_app) == 0 and len(receiver.requests) == failures  # not due before its time
        clock.advance(delay + 0.001)  # the listing shows milliseconds
    drain(hook_app)
    got = receiver.wait_for(6)
    assert [r.json["id"] for r in got] == [ids[0]] * 4 + ids[1:]  # per-integration order kept
    assert len({r.body for r in got[:4]}) == 1  # every retry posts the same bytes
    assert all(r.signature_ok(bytes.fromhex(SECRET)) for r in got)
    status = _delivery(hook_operator, ids[0])
    assert status["state"] == "delivered" and status["attempt_count"] == 4
    assert [a["status_code"] for a in status["attempts"]] == [500, 500, 500, 200]


def test_backoff_grows_to_the_maximum_delay(make_app, clock):
    app = make_app("sqlite", IOT_MANAGER_WEBHOOKS_RETRY_BASE_SECONDS=2, IOT_MANAGER_WEBHOOKS_RETRY_MAX_DELAY_SECONDS=60,
                   _CLOCK=clock)
    worker: DeliveryWorker = service(app).worker
    for failures, full in ((1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (40, 60), (5000, 60)):
        delays = [worker.backoff(failures) for _ in range(200)]
        assert all(full / 2 <= d <= full for d in delays)
        assert max(delays) - min(delays) > full / 10  # jittered, not fixed


def test_delivery_given_up_after_the_retry_time_then_the_next_event_goes(make_app, backend, clock, receiver):
    app = make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0,
                   IOT_MANAGER_WEBHOOKS_RETRY_BASE_SECONDS=5, IOT_MANAGER_WEBHOOKS_RETRY_MAX_SECONDS=60, _CLOCK=clock)
    operator = Operator.create(app, app.test_client())
    add_webhook(operator, receiver.url)
    first, second = _emit(app), _emit(app)
    receiver.behaviour.status_for = lambda req: 503 if req.json["id"] == first else 200
    for _ in range(20):
        drain(app)
        status = _delivery(operator, first)
        if status["state"] != "pending":
            break
        clock.advance(max(0.0, _ts(status["next_attempt"]) - clock.now()) + 0.001)
    assert status["state"] == "failed" and not status["success"] and status["error"] == "HTTP 503"
    starts = [_ts(a["time"]) for a in status["attempts"]]
    assert 4 <= len(starts) <= 6 and max(starts) <= T0 + 60  # 5 s, 10 s, 20 s, 40 s: nothing after the minute
    # the next event went as soon as the first was given up (past its own deadline too: one attempt)
    assert receiver.requests[-1].json["id"] == second
    assert [r.json["id"] for r in receiver.requests].count(second) == 1
    assert _delivery(operator, second)["state"] == "delivered"


def test_a_hung_receiver_times_out_and_is_retried(make_app, backend, clock, receiver):
    app = make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0,
                   IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS=1, _CLOCK=clock)
    operator = Operator.create(app, app.test_client())
    receiver.behaviour.hang = threading.Event()
    add_webhook(operator, receiver.url)
    event = _emit(app)
    drain(app)
    status = _delivery(operator, event)
    assert status["state"] == "pending" and status["error"] == "timed out after 1 s"
    assert "status_code" not in status
    receiver.behaviour.hang.set()
    receiver.behaviour.hang = None
    clock.advance(60)
    drain(app)
    assert _delivery(operator, event)["state"] == "delivered"


def test_redirects_are_not_followed(hook_app, hook_operator, receiver):
    elsewhere = Receiver().start()
    try:
        receiver.behaviour.redirect_to = elsewhere.url
        add_webhook(hook_operator, receiver.url)
        event = _emit(hook_app)
        drain(hook_app)
        status = _delivery(hook_operator, event)
        assert (status["state"], status["status_code"]) == ("pending", 302)
        assert status["error"] == "HTTP 302: redirects are not followed"
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


def test_response_body_read_bounded(hook_app, hook_operator, receiver):
    receiver.behaviour.endless_body = True
    add_webhook(hook_operator, receiver.url)
    event = _emit(hook_app)
    drain(hook_app)
    status = _delivery(hook_operator, event)
    assert status["state"] == "delivered"
    assert status["attempts"][0]["response"] == "x" * 256


def test_connection_refused_is_a_failed_attempt(hook_app, hook_operator, receiver):
    url = receiver.url
    receiver.stop()
    add_webhook(hook_operator, url)
    event = _emit(hook_app)
    drain(hook_app)
    status = _delivery(hook_operator, event)
    assert status["state"] == "pending" and status["error"] == "connection refused"


# --------------------------------------------------------------------------- SSRF


def test_private_destinations_refused_by_default(make_app, backend, clock, receiver):
    """Without IOT_MANAGER_DOMAIN_SKIPVERIFY: loopback literals and names are refused when the webhook
    is registered, and a name that resolves to a private address (DNS rebinding) when delivering."""
    resolver = lambda host, port, timeout: ["127.0.0.1"] if host == "hooks.example.com" else ["93.184.216.34"]
    app = make_app(backend, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, _CLOCK=clock, _WEBHOOK_RESOLVER=resolver)
    operator = Operator.create(app, app.test_client())
    for url in (receiver.url, f"http://localhost:{receiver.port}/", "http://[::1]/", "http://10.1.2.3/",
                "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
                "http://[64:ff9b::a00:1]/", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data", "http://[::7f00:1]/",
                "http://[fec0::1]/"):
        r = operator.post(f"{HOOKS}/integrations", json={
            "provider": "webhook", "credentials": {"type": "http", "http": {"url": url}}})
        assert r.status_code == 400, url
        assert "not a public address" in r.get_json()["error"] or "loopback" in r.get_json()["error"]
    add_webhook(operator, f"http://hooks.example.com:{receiver.port}/hook")
    event = _emit(app)
    drain(app)
    status = _delivery(operator, event)
    assert status["state"] == "pending" and status["error"] == (
        "destination refused: hooks.example.com resolves to 127.0.0.1, which is not a public address")
    assert receiver.requests == []


def test_private_destinations_allowed_by_the_setting(make_app, clock, receiver):
    resolver = lambda host, port, timeout: ["127.0.0.1"]
    app = make_app("sqlite", IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, _CLOCK=clock,
                   _WEBHOOK_RESOLVER=resolver)
    operator = Operator.create(app, app.test_client())
    add_webhook(operator, f"http://hooks.example.com:{receiver.port}/hook")
    _emit(app)
    drain(app)
    (got,) = receiver.wait_for(1)
    assert got.headers["Host"] == f"hooks.example.com:{receiver.port}"  # the name, though the address was vetted


@pytest.mark.parametrize("address, public", [
    ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("255.255.255.255", False), ("::1", False), ("fe80::1", False), ("fc00::1", False), ("::", False),
    ("::ffff:127.0.0.1", False), ("::ffff:93.184.216.34", True), ("2002:7f00:1::", False), ("ff02::1", False),
    ("64:ff9b::a00:1", False), ("64:ff9b::a9fe:a9fe", False), ("64:ff9b::7f00:1", False),
    ("64:ff9b::5db8:d822", True), ("64:ff9b:1::5db8:d822", False), ("::7f00:1", False), ("::a00:1", False),
    ("fec0::1", False),
])
def test_public_address_table(address, public):
    from iotmanager.egress import is_public
    assert is_public(address) is public
