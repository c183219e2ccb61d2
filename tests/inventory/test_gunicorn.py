"""A real gunicorn: the device PUT arrives chunked, as the Mender client sends it."""

from __future__ import annotations

import json

import requests

from tests.helpers import GunicornServer, Operator, accepted_device

URL = "/api/devices/v1/inventory/device/attributes"


def test_chunked_put_and_size_limit_through_gunicorn(make_app, tmp_path):
    data_dir = str(tmp_path / "data")
    app = make_app("sqlite", MENDER_DATA_DIR=data_dir, MENDER_DB_URL="")  # the server's own database
    client = app.test_client()
    operator = Operator.create(app, client)
    device = accepted_device(app, operator, client)
    body = json.dumps([{"name": "device_type", "value": "qemux86-64"},
                       {"name": "rootfs-image.version", "value": ["release-1"]}]).encode()

    def chunks(data: bytes, size: int = 7):
        for i in range(0, len(data), size):
            yield data[i:i + size]

    headers = {"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"}
    with GunicornServer(data_dir, workers=1) as server:
        r = requests.put(server.url + URL, data=chunks(body), headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        assert r.request.headers.get("Transfer-Encoding") == "chunked"
        big = json.dumps([{"name": f"a{i}", "value": "x" * 15000} for i in range(80)]).encode()
        r = requests.put(server.url + URL, data=chunks(big, 65536), headers=headers, timeout=30)
        assert r.status_code == 413
    got = operator.get(f"/api/management/v1/inventory/devices/{device.id}").get_json()
    inventory = {a["name"]: a["value"] for a in got["attributes"] if a["scope"] == "inventory"}
    assert inventory == {"device_type": "qemux86-64", "rootfs-image.version": ["release-1"]}
