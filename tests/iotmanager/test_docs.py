"""docs/iotmanager.md's receiver example, run as written against real deliveries."""

from __future__ import annotations

import os
import re
import threading
from http.server import ThreadingHTTPServer

from tests.helpers import ROOT, Operator
from tests.iotmanager.conftest import HOOKS, add_webhook, drain, service

SECRET = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def _example() -> dict:
    with open(os.path.join(ROOT, "docs", "iotmanager.md")) as f:
        (code,) = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(code, "docs/iotmanager.md", "exec"), namespace)
    return namespace


def test_the_documented_receiver_verifies_real_deliveries(make_app, clock):
    example = _example()
    example["SECRET"] = SECRET
    server = ThreadingHTTPServer(("127.0.0.1", 0), example["Receiver"])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = make_app("sqlite", IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, _CLOCK=clock)
        operator = Operator.create(app, app.test_client())
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        good = add_webhook(operator, url, secret=SECRET)
        wrong = add_webhook(operator, url, secret=SECRET[::-1])
        unsigned = add_webhook(operator, url)
        with app.app_context():
            event = service(app).emit("", "device-decommissioned", {"id": "d1"})
        drain(app)
        (logged,) = operator.get(f"{HOOKS}/events").get_json()
        outcome = {s["integration_id"]: (s["state"], s.get("status_code")) for s in logged["delivery_statuses"]}
        assert outcome == {good: ("delivered", 204), wrong: ("pending", 401), unsigned: ("pending", 401)}
        assert example["seen"] == {event}
    finally:
        server.shutdown()
        server.server_close()
