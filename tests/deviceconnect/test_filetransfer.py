"""File transfer over HTTP against a live server and a simulated device: upload and download
stream through the relay with mender-connect's windows; size limits, device errors, a device
that is not connected, and mender-cli's form (the `mode` after the file)."""

from __future__ import annotations

import os
import time

import pytest

from tests.deviceconnect.live import Mgmt, create_user
from tests.deviceconnect.simdevice import SimDevice
from tests.helpers import GunicornServer

LIMIT = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("dc-ft"))
    create_user(data_dir)
    with GunicornServer(data_dir, workers=2, env={"DEVICECONNECT_FILE_TRANSFER_MAX_SIZE": str(LIMIT),
                                                  "DEVICECONNECT_FILE_TRANSFER_TIMEOUT_SECONDS": "5"}) as server:
        yield server, Mgmt(server.url)


@pytest.fixture
def sim(live):
    server, mgmt = live
    dev = mgmt.device()
    device = SimDevice(server.url, dev.token)
    device.id = dev.id
    deadline = time.monotonic() + 10
    while mgmt.state(dev.id) != "connected" and time.monotonic() < deadline:
        time.sleep(0.05)
    yield device
    device.close()


def _url(server, device_id, what):
    return f"{server.url}/api/management/v1/deviceconnect/devices/{device_id}/{what}"


def test_upload_then_download_a_large_file(live, sim):
    server, mgmt = live
    data = os.urandom(LIMIT - 12345)
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=60,
                      files=[("path", (None, "/data/blob.bin")), ("uid", (None, "1000")),
                             ("file", ("blob.bin", data, "application/octet-stream")), ("mode", (None, "600"))])
    assert r.status_code == 201, r.text
    assert sim.files["/data/blob.bin"] == data
    r = mgmt.http.get(_url(server, sim.id, "download"), params={"path": "/data/blob.bin"}, timeout=60, stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["X-MEN-File-Path"] == "/data/blob.bin"
    assert r.headers["X-MEN-File-Size"] == str(len(data)) and r.headers["X-MEN-File-Mode"] == "644"
    assert r.headers["Content-Disposition"] == 'attachment; filename="blob.bin"'
    assert r.raw.read() == data


def test_limits_and_errors(live, sim):
    server, mgmt = live
    sim.files["/big"] = b"x" * (LIMIT + 1)
    r = mgmt.http.get(_url(server, sim.id, "download"), params={"path": "/big"}, timeout=30)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = mgmt.http.get(_url(server, sim.id, "download"), params={"path": "/nope"}, timeout=30)
    assert r.status_code == 400 and "no such file" in r.json()["error"]
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=60,
                      files=[("path", (None, "/x")), ("file", ("x", b"y" * (LIMIT + 1)))])
    assert r.status_code == 413, r.text
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=30,
                      files=[("path", (None, "/forbidden/x")), ("file", ("x", b"data"))])
    assert r.status_code == 400 and "access denied" in r.json()["error"]
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=30, files=[("file", ("x", b"data"))])
    assert r.status_code == 400 and "path" in r.json()["error"]
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=30,
                      files=[("path", (None, "/x")), ("mode", (None, "rw-r--r--")), ("file", ("x", b"d"))])
    assert r.status_code == 400 and "mode" in r.json()["error"]
    r = mgmt.http.put(_url(server, sim.id, "upload"), data=b"{}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    # the device still works after all that
    r = mgmt.http.put(_url(server, sim.id, "upload"), timeout=30,
                      files=[("path", (None, "/empty")), ("file", ("empty", b""))])
    assert r.status_code == 201 and sim.files["/empty"] == b""


def test_a_silent_device_times_out(live):
    server, mgmt = live
    from tests.deviceconnect.live import device_socket
    dev = mgmt.device()
    with device_socket(server.url, dev.token):  # connected, never answers
        while mgmt.state(dev.id) != "connected":
            time.sleep(0.05)
        started = time.monotonic()
        r = mgmt.http.get(_url(server, dev.id, "download"), params={"path": "/etc/hostname"}, timeout=30)
        assert r.status_code == 408 and time.monotonic() - started >= 4.5


def test_check_update_and_send_inventory_reach_the_device(live, sim):
    server, mgmt = live
    for what in ("check-update", "send-inventory"):
        assert mgmt.post(f"/api/management/v1/deviceconnect/devices/{sim.id}/{what}").status_code == 202
    deadline = time.monotonic() + 10
    while len(sim.commands) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.commands == ["check-update", "send-inventory"]
