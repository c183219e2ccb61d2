"""Helpers for deviceconnect against a real gunicorn: an operator over HTTP, accepted devices,
websocket clients for devices and operators (the `websockets` library, synchronous)."""

from __future__ import annotations

import base64
import os
import sqlite3
import subprocess
import sys

import requests
from websockets.sync.client import connect

from deviceconnect import protocol as p
from tests.helpers import ROOT
from tests.ui.device import HttpDevice

EMAIL = "dc-operator@example.com"
PASSWORD = "correct-horse-battery-staple"


def create_user(data_dir: str, env: dict | None = None) -> None:
    full = {**os.environ, "MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning", **(env or {})}
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "useradm", "create-user", "--email", EMAIL,
                        "--password", PASSWORD], cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


class Mgmt:
    """The operator's side of a live server."""

    def __init__(self, url: str, email: str = EMAIL, password: str = PASSWORD):
        self.url = url
        basic = base64.b64encode(f"{email}:{password}".encode()).decode()
        r = requests.post(url + "/api/management/v1/useradm/auth/login", headers={"Authorization": f"Basic {basic}"},
                          timeout=10)
        assert r.status_code == 200, r.text
        self.token = r.text
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def get(self, path, **kw):
        return self.http.get(self.url + path, timeout=30, **kw)

    def post(self, path, **kw):
        return self.http.post(self.url + path, timeout=30, **kw)

    def device(self, url: str | None = None) -> HttpDevice:
        """A device that authenticated, was accepted, and holds a token."""
        dev = HttpDevice(url or self.url)
        assert dev.auth().status_code == 401
        r = self.get("/api/management/v2/devauth/devices", params={"status": "pending", "per_page": 500})
        record = next(d for d in r.json() if d["identity_data"] == dev.identity)
        r = self.http.put(f"{self.url}/api/management/v2/devauth/devices/{record['id']}/auth/"
                          f"{record['auth_sets'][0]['id']}/status", json={"status": "accepted"}, timeout=10)
        assert r.status_code == 204, r.text
        assert dev.auth().status_code == 200
        return dev

    def state(self, device_id: str) -> str:
        return self.get(f"/api/management/v1/deviceconnect/devices/{device_id}").json()["status"]


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://").replace("https://", "wss://") + path


def device_socket(base: str, token: str, **kw):
    return connect(ws_url(base, "/api/devices/v1/deviceconnect/connect"),
                   additional_headers={"Authorization": f"Bearer {token}"}, max_size=None, **kw)


def operator_socket(base: str, token: str, device_id: str, **kw):
    return connect(ws_url(base, f"/api/management/v1/deviceconnect/devices/{device_id}/connect"),
                   additional_headers={"Authorization": f"Bearer {token}"}, max_size=None, **kw)


def send(ws, msg: p.ProtoMsg) -> None:
    ws.send(p.encode(msg))


def recv(ws, timeout: float = 10.0) -> p.ProtoMsg:
    return p.decode(ws.recv(timeout=timeout))


def holders(db_path: str) -> dict[str, str]:
    """device id -> the process holding its socket, straight from the database."""
    with sqlite3.connect(db_path) as conn:
        return {row[0]: row[1] for row in conn.execute(
            "SELECT device_id, holder FROM deviceconnect_devices WHERE holder IS NOT NULL")}


def session_holder(db_path: str, session_id: str) -> str:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT holder FROM deviceconnect_sessions WHERE id = ?", (session_id,)).fetchone()
        return row[0] if row else ""


def echo_exchange(dev_ws, op_ws, payload: bytes) -> str:
    """Open a shell through the relay, send `payload`, get it echoed back; returns the session id."""
    send(op_ws, p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, "", {"terminal_width": 80, "terminal_height": 24}))
    new = recv(dev_ws)
    assert (new.proto, new.typ) == (p.PROTO_SHELL, p.SHELL_NEW) and new.sid
    send(dev_ws, p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, new.sid, {"status": p.Int64(1)}, b"Shell started"))
    assert recv(op_ws).typ == p.SHELL_NEW
    send(op_ws, p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, new.sid, {}, payload))
    cmd = recv(dev_ws)
    assert cmd.body == payload and cmd.sid == new.sid
    send(dev_ws, p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, new.sid, {"status": p.Int64(1)}, b"echo:" + payload))
    assert recv(op_ws).body == b"echo:" + payload
    return new.sid
