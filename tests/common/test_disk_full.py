"""A full data disk, for real: gunicorn runs in a private mount namespace whose data directory is
a 48 MiB tmpfs; the disk is filled from inside that namespace (nsenter). Writes answer 503 with a
clear error, reads are served, health says why, no worker dies (the Prometheus files are not on
that disk), and everything recovers once space is freed. Needs root and `unshare`/`nsenter`
(as tests/e2e)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
import requests

from tests.helpers import Device, GunicornServer, Operator, accepted_device

NEXT = "/api/devices/v2/deployments/device/deployments/next"
MOUNT = """set -e
mount -t tmpfs -o size=48m,mode=0700 mender-test-data "$MENDER_DATA_DIR"
cp -a "$SEED_DIR"/. "$MENDER_DATA_DIR"/
exec "$@"
"""


def _signed(device: Device) -> dict:
    """requests' keyword arguments for the device's signed auth request."""
    from tests.helpers import sign_body
    body = device.auth_body()
    return {"data": body, "headers": {"Content-Type": "application/json", "X-MEN-Signature": sign_body(device.key, body)}}


def _require_namespaces():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.fail("this test needs root, unshare and nsenter (util-linux), as tests/e2e does")


def _in_namespace(server: GunicornServer, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", "-t", str(server.proc.pid), "-m", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60)


def test_full_data_disk(tmp_path):
    _require_namespaces()
    from common.app import create_app
    seed, data = str(tmp_path / "seed"), str(tmp_path / "data")
    os.makedirs(data)
    app = create_app({"MENDER_DATA_DIR": seed, "MENDER_LOG_LEVEL": "warning"})
    client = app.test_client()
    operator = Operator.create(app, client)
    device = accepted_device(app, operator, client)
    app.extensions["mender"].shutdown()
    app.extensions["mender"].db.close()

    server = GunicornServer(data, workers=2, env={"SEED_DIR": seed, "MENDER_MIN_FREE_BYTES": str(4 << 20),
                                                  "DEVICEAUTH_CHECK_IN_BATCH_SECONDS": "0.2"})
    server.args = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT, "sh", *server.args]
    with server:
        s = requests.Session()
        auth = {"Authorization": f"Bearer {operator.token}"}
        health = server.internal_url + "/api/internal/v1/devauth/health"
        assert s.get(health, timeout=10).status_code == 204
        workers = server.worker_pids()
        assert len(workers) == 2

        filled = _in_namespace(server, f'cat /dev/zero > "{data}/filler" 2>/dev/null; df -k "{data}" | tail -1')
        assert " 100% " in filled.stdout, filled.stdout + filled.stderr

        r = s.get(health, timeout=10)
        assert r.status_code == 503 and r.json()["error"].startswith("storage full"), r.text
        # writes: new devices' auth requests, until the database's free pages are used up
        answers = []
        for _ in range(300):
            r = requests.post(server.url + Device.AUTH_PATH, timeout=10, **_signed(Device(client)))
            answers.append(r.status_code)
            if r.status_code == 503:
                assert r.json()["error"].startswith("storage full"), r.text
                assert r.headers["Retry-After"]
                break
        assert answers[-1] == 503 and set(answers) <= {401, 503}, answers
        # reads go on: device list, a device's poll (its check-in waits in memory), the UI's assets
        r = s.get(server.url + "/api/management/v2/devauth/devices", headers=auth, timeout=10)
        assert r.status_code == 200, r.text
        for _ in range(3):
            r = s.post(server.url + NEXT, timeout=10, headers={"Authorization": f"Bearer {device.token}"},
                       json={"device_provides": {"device_type": "test-device", "artifact_name": "a"}})
            assert r.status_code == 204, r.text
            time.sleep(0.3)  # past a check-in batch: its failed write must not hurt the worker
        assert s.get(server.url + "/", timeout=10).status_code == 200
        assert s.get(server.internal_url + "/metrics", timeout=10).status_code == 200
        assert server.worker_pids() == workers  # no worker crashed or was replaced

        _in_namespace(server, f'rm -f "{data}/filler"')
        r = s.get(health, timeout=10)
        assert r.status_code == 204, r.text
        r = requests.post(server.url + Device.AUTH_PATH, timeout=10, **_signed(Device(client)))
        assert r.status_code == 401, r.text  # stored as pending: writes work again
        assert server.worker_pids() == workers
