"""Benchmark (not a test): the server CPU of the deployment wave's device writes, per request,
in-process: the status report (downloading, installing, success), the inventory upload (PUT, the
fleet simulator's four attributes) and the re-authentication (Ed25519), each through the whole
WSGI stack (the app's `wsgi_app`: the guard, the direct routes, Flask), one thread, SQLite.

    .venv/bin/python -m bench.device_writes [--devices 200] [--rounds 3] [--flask]

`--flask` sets MENDER_DIRECT_ROUTES=false (the Flask views). The figure is the calling thread's
CPU time (`time.thread_time`) around one WSGI call, its median over every request of a kind; the
environ of each request is built before the clock starts. Run it from a snapshot of another
commit (the script is self-contained) to compare code: alternate the runs, the machine's load
moves the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from werkzeug.test import EnvironBuilder  # noqa: E402

from common.app import create_app  # noqa: E402
from tests.deployments.test_api import build_artifact  # noqa: E402
from tests.helpers import Device, Operator, sign_body  # noqa: E402

DEV = "/api/devices/v1/deployments/device/deployments"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
AUTH = Device.AUTH_PATH


def environ(method: str, path: str, headers: dict, data: bytes, content_type: str = "application/json") -> dict:
    env = EnvironBuilder(path=path, method=method, headers=headers, data=data, content_type=content_type).get_environ()
    env["wsgi.input"] = io.BytesIO(data)
    return env


def call(app, env: dict) -> tuple[float, str, bytes]:
    """(thread CPU seconds, status line, body) of one WSGI call."""
    seen = []
    started = time.thread_time()
    result = app.wsgi_app(env, lambda status, headers, exc_info=None: seen.append(status))
    body = b"".join(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return time.thread_time() - started, seen[0], body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="deployments (each: 3 reports per device), "
                        "inventory uploads and re-authentications per device")
    parser.add_argument("--flask", action="store_true", help="MENDER_DIRECT_ROUTES=false")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-writes-")
    app = create_app({"MENDER_DATA_DIR": tmp, "MENDER_DB_URL": f"sqlite:///{tmp}/mender.db",
                      "MENDER_DIRECT_ROUTES": not args.flask, "MENDER_LOG_LEVEL": "WARNING"})
    client = app.test_client()
    operator = Operator.create(app, client)
    devices = []
    for _ in range(args.devices):
        d = Device(client)
        assert d.auth().status_code == 401
        operator.accept(d)
        devices.append(d)
    samples: dict[str, list[float]] = {"status": [], "inventory": [], "auth": []}
    for round_ in range(args.rounds):
        name = f"app-{round_}"
        r = operator.post("/api/management/v1/deployments/artifacts", data={
            "artifact": (io.BytesIO(build_artifact(__import__("pathlib").Path(tmp), name)), "a.mender")},
            content_type="multipart/form-data")
        assert r.status_code == 201, r.get_json()
        r = operator.post("/api/management/v1/deployments/deployments",
                          json={"name": name, "artifact_name": name, "devices": [d.id for d in devices]})
        assert r.status_code == 201, r.get_json()
        dep = r.headers["Location"].rsplit("/", 1)[1]
        current = "factory-image" if round_ == 0 else f"app-{round_ - 1}"
        for d in devices:
            r = d.request("POST", f"{DEV}/next", json={"artifact_name": current, "device_type": "test-device"})
            assert r.status_code == 200, r.status_code
        for status in ("downloading", "installing", "success"):
            envs = [environ("PUT", f"{DEV}/{dep}/status", d.headers, json.dumps({"status": status}).encode())
                    for d in devices]
            for env in envs:
                cpu, line, _ = call(app, env)
                assert line.startswith("204"), line
                samples["status"].append(cpu)
        bodies = [(d, d.auth_body()) for d in devices]
        envs = [environ("POST", AUTH, {"X-MEN-Signature": sign_body(d.key, body)}, body) for d, body in bodies]
        for d, env in zip(devices, envs):
            cpu, line, token = call(app, env)
            assert line.startswith("200"), line
            d.token = token.decode()  # a new token replaces the device's others
            samples["auth"].append(cpu)
        envs = [environ("PUT", INVENTORY, d.headers, json.dumps(
            [{"name": "device_type", "value": "test-device"}, {"name": "artifact_name", "value": name},
             {"name": "mender_client_version", "value": "3.4.0"}, {"name": "os", "value": "bench"}]).encode())
            for d in devices]
        for env in envs:
            cpu, line, _ = call(app, env)
            assert line.startswith("200"), line
            samples["inventory"].append(cpu)
    app.extensions["mender"].shutdown()
    load = os.getloadavg()[0]
    print(json.dumps({"mode": "flask" if args.flask else "direct", "load": round(load, 2),
                      **{k: {"median_us": round(statistics.median(v) * 1e6, 1),
                             "p25_us": round(statistics.quantiles(v, n=4)[0] * 1e6, 1),
                             "p75_us": round(statistics.quantiles(v, n=4)[2] * 1e6, 1), "n": len(v)}
                         for k, v in samples.items()}}))


if __name__ == "__main__":
    main()
