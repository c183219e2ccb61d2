"""Webhooks through a real gunicorn (two workers, two delivery threads each, SQLite): the API answers
while the receiver hangs, a burst of concurrent admissions arrives once each, one at a time, in
the events log's order, signed; the server's whole log never holds the secret or the URL."""

from __future__ import annotations

import base64
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from common.app import create_app
from tests.helpers import Device, GunicornServer
from tests.iotmanager.conftest import assert_one_at_a_time

HOOKS = "/api/management/v1/iot-manager"
DEVICES = "/api/management/v2/devauth/devices"
SECRET = "9f" * 32


def test_webhooks_through_gunicorn(tmp_path, receiver):
    data_dir = str(tmp_path / "data")
    env = {"IOT_MANAGER_DOMAIN_SKIPVERIFY": "true", "IOT_MANAGER_WEBHOOKS_POLL_SECONDS": "0.2",
           "IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS": "60", "MENDER_LOG_LEVEL": "debug"}
    with GunicornServer(data_dir, env=env, workers=2) as server:
        app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
        with app.app_context():
            app.extensions["mender"].services.useradm.create_user("op@example.com", "correct-horse-battery")
        basic = base64.b64encode(b"op@example.com:correct-horse-battery").decode()
        token = requests.post(server.url + "/api/management/v1/useradm/auth/login",
                              headers={"Authorization": f"Basic {basic}"}, timeout=10).text
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"

        def preauthorize() -> str:
            device = Device(None)
            r = session.post(server.url + DEVICES, json={"identity_data": device.identity, "pubkey": device.pubkey},
                             timeout=30)
            assert r.status_code == 201, r.text
            return r.headers["Location"].rsplit("/", 1)[1]

        receiver.behaviour.hang = hang = threading.Event()
        r = session.post(server.url + f"{HOOKS}/integrations", json={
            "provider": "webhook", "credentials": {"type": "http", "http": {"url": receiver.url, "secret": SECRET}}},
            timeout=10)
        assert r.status_code == 201, r.text

        # 1. a receiver that does not answer holds no request up
        first = preauthorize()
        receiver.wait_in_flight(1)
        held = [preauthorize() for _ in range(6)]  # both workers answer while a delivery hangs
        assert receiver.in_flight == 1 and len(receiver.requests) == 1 and not hang.is_set()
        hang.set()
        receiver.behaviour.hang = None
        got = receiver.wait_for(7)
        assert [g.json["data"]["id"] for g in got] == [first, *held]

        # 2. a burst from many clients at once, over both workers
        receiver.behaviour.delay = 0.005
        with ThreadPoolExecutor(8) as pool:
            burst = list(pool.map(lambda _: preauthorize(), range(40)))
        got = receiver.wait_for(47)
        ids = [g.json["id"] for g in got]
        assert len(set(ids)) == len(ids) == 47  # each event once
        assert sorted(g.json["data"]["id"] for g in got[7:]) == sorted(burst)
        assert receiver.max_concurrent == 1  # one at a time to one integration
        assert all(g.signature_ok(bytes.fromhex(SECRET)) for g in got)
        deadline = time.monotonic() + 30
        while True:
            log = session.get(server.url + f"{HOOKS}/events?per_page=100", timeout=10).json()
            if all(e["delivery_statuses"][0]["state"] == "delivered" for e in log) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(log) == 47 and [e["id"] for e in reversed(log)] == ids  # in the log's order
        assert_one_at_a_time(log)

        text = server.log()
        assert "webhook delivery attempt" in text
        assert SECRET not in text and SECRET.upper() not in text
        assert receiver.url not in text and f":{receiver.port}/hook" not in text
