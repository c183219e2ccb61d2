"""bench/fleet.py against a real server: a short simulation of a small fleet, its wave installed
end to end, every request answered as a device expects, and the report's own share."""

from __future__ import annotations

import asyncio
import gc

import requests

from bench.fleet import SimDevice, make_artifact, provision, run_fleet
from tests.helpers import GunicornServer


def test_a_short_simulation_with_its_wave_against_a_real_server(tmp_path):
    devices = [SimDevice(i) for i in range(16)]
    data_dir = str(tmp_path / "data")
    with GunicornServer(data_dir, workers=1) as server:
        token = provision(server.url, data_dir, devices)
        artifact = make_artifact(str(tmp_path), "fleet-wave", "fleet-device")
        # polls every 0.5 s (1800 s / 3600), inventory every 8 s; the wave (4 devices) at 1.5 s
        thresholds = gc.get_threshold()
        enrolment, steady = asyncio.run(run_fleet(server.url, devices, duration=4.5, scale=3600, wave=0.25,
                                                  token=token, artifact=artifact, seed=1, enrol_concurrency=4,
                                                  server_cpu=lambda: 0.0))
        headers = {"Authorization": f"Bearer {token}"}
        deployments = requests.get(f"{server.url}/api/management/v1/deployments/deployments", headers=headers,
                                   timeout=30).json()
        stats = requests.get(f"{server.url}/api/management/v1/deployments/deployments/{deployments[0]['id']}"
                             "/statistics", headers=headers, timeout=30).json()
        inventory = requests.get(f"{server.url}/api/management/v1/inventory/devices?per_page=50", headers=headers,
                                 timeout=30).json()

    first = enrolment.report()
    assert first["requests"] == 32 and first["errors"] == 0  # each device: auth, then its inventory
    assert first["endpoints"]["auth"]["statuses"] == {200: 16}
    assert first["endpoints"]["inventory"]["statuses"] == {200: 16}
    report = steady.report()
    assert report["errors"] == 0, report["endpoints"]
    endpoints = report["endpoints"]
    assert endpoints["next"]["statuses"][200] == 4 and endpoints["next"]["statuses"][204] >= 16 * 5
    assert endpoints["download"]["statuses"] == {200: 4}
    assert endpoints["status"]["statuses"] == {204: 12}  # downloading, installing, success
    assert endpoints["auth"]["statuses"][200] >= 4  # the re-authentication at commit
    assert stats["success"] == 4
    installed = [d for d in inventory if {"name": "artifact_name", "value": "fleet-wave"}
                 in [{"name": a["name"], "value": a["value"]} for a in d["attributes"]]]
    assert len(installed) == 4  # each reported its new artifact
    # the simulator's own share, beside the latencies
    assert report["client_cpu_us_per_request"] > 0
    assert 0 <= report["loop_lag_p50_ms"] <= report["loop_lag_p99_ms"] <= report["loop_lag_max_ms"]
    assert all("loop_lag_p99_ms" in window for window in report["timeline_5s"])
    assert report["client_gc_collections"] >= 0 and report["client_gc_longest_ms"] <= report["client_gc_ms"] + 0.1
    # no full collection holds the loop during the run, and the collector's settings are restored after it
    assert report["client_gc_full_collections"] == 0 and gc.get_threshold() == thresholds
    assert set(report["wave_operator_ms"]) == {"artifact_upload_ms", "deployment_create_ms"}
