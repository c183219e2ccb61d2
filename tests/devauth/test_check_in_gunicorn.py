"""Batched check-ins through a real gunicorn: a graceful stop writes what a worker still holds."""

from __future__ import annotations

import time

import requests

from common.clock import FrozenClock
from tests.helpers import GunicornServer, Operator, accepted_device


def test_graceful_stop_writes_pending_check_ins(make_app, tmp_path):
    data_dir = str(tmp_path / "data")
    an_hour_ago = FrozenClock(time.time() - 3600)
    app = make_app("sqlite", MENDER_DATA_DIR=data_dir, MENDER_DB_URL="", _CLOCK=an_hour_ago)
    client = app.test_client()
    operator = Operator.create(app, client)
    device = accepted_device(app, operator, client)
    app.extensions["mender"].services.devauth.check_ins.flush()
    url = f"/api/management/v2/devauth/devices/{device.id}"
    before = operator.get(url).get_json()["check_in_time"]

    # a batch interval no test waits for: only the stop can write the poll's check-in
    with GunicornServer(data_dir, workers=1, env={"DEVICEAUTH_CHECK_IN_BATCH_SECONDS": "3600"}) as server:
        r = requests.post(server.url + "/api/devices/v2/deployments/device/deployments/next", timeout=30,
                          headers={"Authorization": f"Bearer {device.token}"},
                          json={"device_provides": {"device_type": "test-device", "artifact_name": "a"}})
        assert r.status_code == 204, r.text
        assert operator.get(url).get_json()["check_in_time"] == before  # held by the worker
    after = operator.get(url).get_json()["check_in_time"]
    assert after > before
    inventory = operator.get(f"/api/management/v1/inventory/devices/{device.id}").get_json()["attributes"]
    assert {a["name"]: a["value"] for a in inventory if a["scope"] == "system"}["check_in_time"] == after
