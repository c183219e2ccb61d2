"""The delivery threads as they run in a server process: started by an event, woken at once, never
in the way of the request that emitted; several processes on one database deliver each event once."""

from __future__ import annotations

import threading
import time

import pytest

from tests.conftest import _backend_params
from tests.helpers import Device, Operator, backend_config
from tests.iotmanager.conftest import HOOKS, add_webhook, assert_one_at_a_time

DEVICES = "/api/management/v2/devauth/devices"


def _threaded_app(make_app, backend, **config):
    # mongomock applies find_one_and_update as a read then a write, so one delivery thread there
    threads = 1 if backend == "mongomock" else 2
    return make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0.2,
                    IOT_MANAGER_WEBHOOKS_WORKERS=threads, IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS=30, **config)


def wait_delivered(operator, count: int, timeout: float = 30.0) -> list[dict]:
    """The events log once its `count` newest events are all delivered (their last attempt is
    recorded just after the receiver answered)."""
    deadline = time.monotonic() + timeout
    while True:
        log = operator.get(f"{HOOKS}/events?per_page={count}").get_json()
        if len(log) == count and all(s["state"] == "delivered" for e in log for s in e["delivery_statuses"]):
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.05)


def _preauthorize(operator, client):
    device = Device(client)
    r = operator.post(DEVICES, json={"identity_data": device.identity, "pubkey": device.pubkey})
    assert r.status_code == 201, r.data
    return r.headers["Location"].rsplit("/", 1)[1]


def test_a_hung_receiver_never_holds_up_the_request_that_emitted(make_app, backend, receiver):
    app = _threaded_app(make_app, backend)
    client = app.test_client()
    operator = Operator.create(app, client)
    receiver.behaviour.hang = hang = threading.Event()
    add_webhook(operator, receiver.url)
    first = _preauthorize(operator, client)
    receiver.wait_in_flight(1)  # delivered in the background, and now held by the receiver
    later = []
    for _ in range(4):
        later.append(_preauthorize(operator, client))  # each returns while the receiver still holds the first
        assert receiver.in_flight == 1 and not hang.is_set()
    assert len(receiver.requests) == 1  # per-integration order: the others wait behind the held one
    hang.set()
    got = receiver.wait_for(5)
    assert [r.json["data"]["id"] for r in got] == [first, *later]
    assert receiver.max_concurrent == 1


@pytest.mark.parametrize("shared", [p for p in _backend_params() if p.values[0] != "mongomock"])
def test_two_processes_on_one_database_deliver_each_event_once(make_app, tmp_path, receiver, shared):
    """Two apps (as two server processes or hosts) on one database, two delivery threads each:
    every event arrives exactly once, one at a time, in the order of the events log. (A real
    MongoDB when TEST_MONGO_URL is set; mongomock's claims are not atomic.)"""
    config = backend_config(shared, str(tmp_path / "one"))
    config.update(IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0.05,
                  IOT_MANAGER_WEBHOOKS_WORKERS=2)
    first = make_app(shared, **config)
    second = make_app(shared, **{**config, "MENDER_DATA_DIR": str(tmp_path / "two")})
    operator = Operator.create(first, first.test_client())
    receiver.behaviour.delay = 0.01
    add_webhook(operator, receiver.url, secret="ab" * 16)
    for app in (first, second):
        app.extensions["mender"].services.iotmanager.worker.start()
    ids: list[str] = []
    lock = threading.Lock()

    def emit(app, n):
        with app.app_context():
            for i in range(n):
                event = app.extensions["mender"].services.iotmanager.emit("", "device-decommissioned", {"id": f"d{i}"})
                with lock:
                    ids.append(event)

    threads = [threading.Thread(target=emit, args=(app, 15)) for app in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = receiver.wait_for(60)
    received = [r.json["id"] for r in got]
    assert sorted(received) == sorted(ids) and len(set(received)) == 60  # each exactly once
    assert receiver.max_concurrent == 1  # never two at once to one integration
    assert all(r.signature_ok(bytes.fromhex("ab" * 16)) for r in got)
    log = wait_delivered(operator, 60)
    assert [e["id"] for e in reversed(log)] == received  # in the order the events were recorded
    assert all(e["delivery_statuses"][0]["attempt_count"] == 1 for e in log)
    assert_one_at_a_time(log)
