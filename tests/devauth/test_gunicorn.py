"""Through a real gunicorn: the auth request as the Go client sends it (chunked, trailing newline)."""

from __future__ import annotations

import base64
import json

import requests

from common.app import create_app
from tests.helpers import Device, GunicornServer, sign_body


def test_chunked_auth_request_through_gunicorn(tmp_path):
    data_dir = str(tmp_path / "data")
    with GunicornServer(data_dir) as server:
        app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
        with app.app_context():
            app.extensions["mender"].services.useradm.create_user("op@example.com", "correct-horse-battery")
        device = Device(None, key_kind="rsa")
        body = device.auth_body()
        assert body.endswith(b"}\n")
        headers = {"Content-Type": "application/json", "X-Men-Signature": sign_body(device.key, body),
                   "Authorization": "Bearer", "User-Agent": "Go-http-client/1.1"}
        url = server.url + Device.AUTH_PATH

        def chunks():  # a generator body makes requests send Transfer-Encoding: chunked
            yield body[:100]
            yield body[100:]

        r = requests.post(url, data=chunks(), headers=headers, timeout=10)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "device unauthorized"

        basic = base64.b64encode(b"op@example.com:correct-horse-battery").decode()
        login = requests.post(server.url + "/api/management/v1/useradm/auth/login",
                              headers={"Authorization": f"Basic {basic}"}, timeout=10)
        assert login.status_code == 200
        mgmt = {"Authorization": f"Bearer {login.text}"}
        devices = requests.get(server.url + "/api/management/v2/devauth/devices?per_page=500", headers=mgmt,
                               timeout=10).json()
        assert len(devices) == 1 and devices[0]["identity_data"] == device.identity
        dev = devices[0]
        r = requests.put(server.url + f"/api/management/v2/devauth/devices/{dev['id']}/auth/"
                         f"{dev['auth_sets'][0]['id']}/status", json={"status": "accepted"}, headers=mgmt,
                         timeout=10)
        assert r.status_code == 204

        r = requests.post(url, data=chunks(), headers=headers, timeout=10)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/jwt"
        claims = json.loads(base64.urlsafe_b64decode(r.text.split(".")[1] + "=="))
        assert claims["sub"] == dev["id"]
        r = requests.post(server.internal_url + "/api/internal/v1/devauth/tokens/verify",
                          headers={"Authorization": f"Bearer {r.text}"}, timeout=10)
        assert r.status_code == 200


def test_concurrent_first_requests_make_one_device(tmp_path):
    """Eight identical first requests at once, across two workers: one device, one auth set."""
    from concurrent.futures import ThreadPoolExecutor
    data_dir = str(tmp_path / "data")
    with GunicornServer(data_dir, workers=2) as server:
        device = Device(None, key_kind="ed25519")
        body = device.auth_body()
        headers = {"Content-Type": "application/json", "X-Men-Signature": sign_body(device.key, body)}
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: requests.post(server.url + Device.AUTH_PATH, data=body,
                                                             headers=headers, timeout=20).status_code,
                                     range(8)))
        assert statuses == [401] * 8
        app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
        devices, total = app.extensions["mender"].services.devauth.list_devices("")
        assert total == 1 and len(devices[0].auth_sets) == 1
