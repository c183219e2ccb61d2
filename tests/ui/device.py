"""A simulated device speaking the device API over real HTTP (requests), for the browser tests."""

from __future__ import annotations

import base64
import json
import os
import uuid

import requests

from tests.helpers import generate_device_key, public_pem, sign_body


class HttpDevice:
    """Own key pair; signed auth requests as the Go client sends them; inventory, polling, status, logs."""

    def __init__(self, base_url: str, identity: dict | None = None, device_type: str = "ui-test-board",
                 artifact_name: str = "factory-image"):
        self.base = base_url
        self.identity = identity or {"mac": "02:00:" + ":".join(f"{b:02x}" for b in os.urandom(4)),
                                     "sn": uuid.uuid4().hex[:12]}
        self.key = generate_device_key("ed25519")
        self.device_type = device_type
        self.artifact_name = artifact_name
        self.token: str | None = None
        self.id: str | None = None
        self.http = requests.Session()

    @property
    def pubkey(self) -> str:
        return public_pem(self.key)

    def auth(self) -> requests.Response:
        id_data = json.dumps(self.identity, sort_keys=True, separators=(",", ":"))
        body = (json.dumps({"id_data": id_data, "tenant_token": "", "pubkey": self.pubkey},
                           separators=(",", ":")) + "\n").encode()
        r = self.http.post(self.base + "/api/devices/v1/authentication/auth_requests", data=body, timeout=10,
                           headers={"Content-Type": "application/json", "X-MEN-Signature": sign_body(self.key, body)})
        if r.status_code == 200:
            self.token = r.text
            self.id = json.loads(base64.urlsafe_b64decode(self.token.split(".")[1] + "=="))["sub"]
        return r

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        assert self.token, "the device has no token yet"
        return self.http.request(method, self.base + path, timeout=10,
                                 headers={"Authorization": f"Bearer {self.token}"}, **kwargs)

    def report_inventory(self, attributes: dict) -> None:
        body = [{"name": k, "value": v} for k, v in attributes.items()]
        r = self._call("PATCH", "/api/devices/v1/inventory/device/attributes", json=body)
        assert r.status_code == 200, r.text

    def next_deployment(self) -> dict | None:
        r = self._call("GET", "/api/devices/v1/deployments/device/deployments/next",
                       params={"artifact_name": self.artifact_name, "device_type": self.device_type})
        assert r.status_code in (200, 204), r.text
        return r.json() if r.status_code == 200 else None

    def report(self, deployment_id: str, status: str) -> requests.Response:
        return self._call("PUT", f"/api/devices/v1/deployments/device/deployments/{deployment_id}/status",
                          json={"status": status})

    def send_log(self, deployment_id: str, lines: list[str]) -> None:
        messages = [{"timestamp": "2026-01-01T00:00:00Z", "level": "info", "message": m} for m in lines]
        r = self._call("PUT", f"/api/devices/v1/deployments/device/deployments/{deployment_id}/log",
                       json={"messages": messages})
        assert r.status_code == 204, r.text
