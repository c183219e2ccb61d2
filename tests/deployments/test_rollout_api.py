"""Rollout control over HTTP: the create bodies' rules (v1, v2, group), pause/resume/continue,
the history, paused fields, update control maps (management PATCH, the device's next and map
endpoint); and a failure threshold crossed by concurrent reports through two gunicorn workers."""

from __future__ import annotations

import io
import threading

import pytest
import requests

from tests.deployments.test_api import DEV, MGMT, NEXT_V2, assert_error, build_artifact, create, poll, report, upload
from tests.deviceconnect.live import Mgmt, create_user
from tests.helpers import GunicornServer

V2 = "/api/management/v2/deployments/deployments"
UCM = {"priority": 2, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}


@pytest.fixture
def world(app, operator, device_factory, tmp_path):
    upload(operator, tmp_path, "app-2")
    return operator, [device_factory() for _ in range(4)]


def dep_id_of(r):
    assert r.status_code == 201, r.data
    return r.headers["Location"].rsplit("/", 1)[1]


def test_rules_in_the_create_bodies_and_the_deployment(world):
    op, devices = world
    dep_id = dep_id_of(create(op, devices=[d.id for d in devices], failure_threshold=50, failure_action="abort",
                              success_threshold=80, update_control_map=UCM,
                              maintenance_window={"start": "22:00", "end": "04:00", "timezone": "Europe/Oslo"},
                              phases=[{"batch_size": 50, "failure_threshold": 10, "failure_action": "pause"},
                                      {"start_ts": "2099-01-01T00:00:00Z", "success_threshold": 90}]))
    got = op.get(f"{MGMT}/deployments/{dep_id}").get_json()
    assert got["failure_threshold"] == 50 and got["failure_action"] == "abort" and got["success_threshold"] == 80
    assert got["maintenance_window"] == {"start": "22:00", "end": "04:00", "timezone": "Europe/Oslo"}
    assert got["update_control_map"] == UCM and got["paused"] is False and "paused_reason" not in got
    assert got["phases"][0]["failure_threshold"] == 10 and got["phases"][1]["success_threshold"] == 90
    assert got["current_phase"] == 0
    # v2 (a filter) and the group route take them too
    r = op.post(V2, json={"name": "dyn", "artifact_name": "app-2", "failure_threshold": 5,
                          "filter": [{"scope": "identity", "attribute": "status", "type": "$eq",
                                      "value": "accepted"}]})
    assert op.get(f"{MGMT}/deployments/{dep_id_of(r)}").get_json()["failure_threshold"] == 5
    r = op.post(f"{MGMT}/deployments/group/nogroup", json={"name": "g", "artifact_name": "app-2",
                                                           "failure_threshold": 101})
    assert_error(r, 400)
    for bad in ({"failure_threshold": 0}, {"failure_action": "explode"}, {"success_threshold": "x"},
                {"maintenance_window": {"start": "25:00", "end": "01:00"}},
                {"maintenance_window": {"start": "01:00", "end": "02:00", "timezone": "Nowhere/Else"}},
                {"update_control_map": {"states": {"ArtifactInstall_Enter": {"action": "later"}}}},
                {"phases": [{"batch_size": 100, "failure_action": "explode"}]}):
        assert_error(create(op, name="bad", devices=[devices[0].id], **bad), 400)


def test_pause_resume_continue_history_over_http(world):
    op, devices = world
    dep_id = dep_id_of(create(op, devices=[d.id for d in devices], failure_threshold=25,
                              phases=[{"batch_size": 50}, {"start_ts": "2099-01-01T00:00:00Z"}]))
    a, b, c, _ = devices
    assert poll(a).status_code == 200 and report(a, dep_id, "downloading").status_code == 204
    assert report(a, dep_id, "failure").status_code == 204       # 1 of 2 in phase 0: 50 % ≥ 25 %
    got = op.get(f"{MGMT}/deployments/{dep_id}").get_json()
    assert got["paused"] is True and got["paused_reason"] == "failure_threshold" and got["paused_ts"].endswith("Z")
    assert got["status"] == "inprogress"
    stats = op.get(f"{MGMT}/deployments/{dep_id}/statistics").get_json()
    assert stats["paused"] is True and stats["failure"] == 1
    listed = op.post(f"{MGMT}/deployments/statistics/list", json={"deployment_ids": [dep_id]}).get_json()
    assert listed[0]["stats"]["paused"] is True
    assert poll(b).status_code == 204
    assert_error(op.post(f"{V2}/{dep_id}/pause"), 409)
    assert op.post(f"{V2}/{dep_id}/resume").status_code == 204
    assert_error(op.post(f"{V2}/{dep_id}/resume"), 409)
    assert poll(b).status_code == 200
    assert poll(c).status_code == 204                               # phase 1 starts in 2099
    r = op.post(f"{V2}/{dep_id}/continue")
    assert r.status_code == 200 and r.get_json() == {"phase": 1}
    assert poll(c).status_code == 200
    assert_error(op.post(f"{V2}/{dep_id}/continue"), 409)
    assert op.post(f"{V2}/{dep_id}/pause").status_code == 204
    r = op.get(f"{V2}/{dep_id}/history?per_page=2")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "5"
    assert [e["type"] for e in r.get_json()] == ["started", "paused"]
    everything = op.get(f"{V2}/{dep_id}/history").get_json()
    assert [(e["type"], e["detail"].get("reason")) for e in everything] == [
        ("started", None), ("paused", "failure_threshold"), ("resumed", None), ("phase_continued", None),
        ("paused", "operator")]
    assert everything[1]["actor"] == "system" and everything[2]["actor"] not in ("", "system")
    assert everything[1]["ts"].endswith("Z")
    assert_error(op.get(f"{V2}/nope/history"), 404)
    for action in ("pause", "resume", "continue"):
        assert_error(op.post(f"{V2}/nope/{action}"), 404)
    assert op.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "aborted"}).status_code == 204
    assert op.get(f"{V2}/{dep_id}/history").get_json()[-1]["type"] == "aborted"
    assert_error(op.post(f"{V2}/{dep_id}/resume"), 409)


def test_update_control_map_over_http(world):
    op, devices = world
    a, b, c, d = devices
    dep_id = dep_id_of(create(op, devices=[a.id, b.id, c.id], update_control_map=UCM))
    r = poll(a)
    assert r.status_code == 200 and r.get_json()["update_control_map"] == {"id": dep_id, **UCM}
    r = b.request("POST", "/api/devices/v1/deployments/device/deployments/next",
                  json={"artifact_name": "factory-image", "device_type": "test-device"})
    assert r.status_code == 200 and "update_control_map" not in r.get_json()   # v1 has no map
    path = f"/api/devices/v2/deployments/device/deployments/{dep_id}/update_control_map"
    r = a.request("GET", path)
    assert r.status_code == 200 and r.get_json() == {"id": dep_id, "update_control_map": {"id": dep_id, **UCM}}
    assert_error(c.request("GET", path), 404)                       # c has not been given it
    assert report(a, dep_id, "downloading").status_code == 204
    assert report(a, dep_id, "pause_before_installing").status_code == 204
    go = {"priority": 2, "states": {"ArtifactInstall_Enter": {"action": "continue"}}}
    assert op.patch(f"{MGMT}/deployments/{dep_id}", json={"update_control_map": go}).status_code == 204
    assert a.request("GET", path).get_json()["update_control_map"]["states"] == go["states"]
    fail = {"states": {"ArtifactInstall_Enter": {"action": "fail"}}}
    r = op.patch(f"{MGMT}/deployments/{dep_id}/devices/{b.id}", json={"update_control_map": fail})
    assert r.status_code == 204
    assert b.request("GET", path).get_json()["update_control_map"]["states"] == fail["states"]
    assert a.request("GET", path).get_json()["update_control_map"]["states"] == go["states"]
    assert_error(op.patch(f"{MGMT}/deployments/{dep_id}/devices/{d.id}", json={"update_control_map": fail}), 404)
    assert_error(op.patch(f"{MGMT}/deployments/{dep_id}", json={"update_control_map": {"priority": 99}}), 400)
    assert_error(op.patch(f"{MGMT}/deployments/{dep_id}", json={}), 400)
    plain = dep_id_of(create(op, name="plain", devices=[d.id]))
    assert_error(op.patch(f"{MGMT}/deployments/{plain}", json={"update_control_map": go}), 409)
    assert_error(op.patch(f"{MGMT}/deployments/nope", json={"update_control_map": go}), 404)
    assert "update_control_map" not in poll(d).get_json()


# ---------------------------------------------------------------- two gunicorn workers

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("rollout-workers"))
    create_user(data_dir)
    with GunicornServer(data_dir, workers=2) as server:
        yield server, Mgmt(server.url)


def test_threshold_crossed_by_concurrent_reports_through_two_workers(live, tmp_path):
    """Sixteen devices fail at the same moment through two gunicorn workers (separate processes
    on one SQLite database): the deployment is paused exactly once, with exact counters."""
    server, mgmt = live
    data = build_artifact(tmp_path, "app-live", device_type="ui-test-board")
    r = mgmt.post("/api/management/v1/deployments/artifacts",
                  files={"artifact": ("a.mender", io.BytesIO(data))}, data={"size": str(len(data))})
    assert r.status_code == 201, r.text
    devices = [mgmt.device() for _ in range(20)]
    r = mgmt.post(f"{MGMT}/deployments", json={"name": "live", "artifact_name": "app-live",
                                                "devices": [d.id for d in devices], "failure_threshold": 25})
    dep_id = r.headers["Location"].rsplit("/", 1)[1]
    failing = devices[:16]
    for dev in failing:
        assert dev.next_deployment()["id"] == dep_id
        assert dev.report(dep_id, "downloading").status_code == 204
    barrier = threading.Barrier(len(failing))
    codes = []

    def fail(dev):
        barrier.wait()
        codes.append(dev.report(dep_id, "failure").status_code)

    threads = [threading.Thread(target=fail, args=(dev,)) for dev in failing]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [204] * len(failing)
    got = mgmt.get(f"{MGMT}/deployments/{dep_id}").json()
    assert got["paused"] is True and got["statistics"]["status"]["failure"] == 16
    history = mgmt.get(f"{V2}/{dep_id}/history").json()
    assert [e["type"] for e in history].count("paused") == 1
    assert devices[16].next_deployment() is None


def test_insights_over_http(world):
    op, devices = world
    dep_id = dep_id_of(create(op, devices=[d.id for d in devices]))
    for i, dev in enumerate(devices):
        assert poll(dev).status_code == 200
        report(dev, dep_id, "downloading")
        assert report(dev, dep_id, "failure" if i < 2 else "success").status_code == 204
    dev = devices[0]
    r = dev.request("PUT", f"{DEV}/{dep_id}/log", json={"messages": [
        {"timestamp": "2026-01-01T00:00:00Z", "level": "error", "message": "disk 3 full"}]})
    assert r.status_code == 204
    r = op.get(f"{V2}/{dep_id}/insights?attribute=kernel&limit=5")
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert (body["failed"], body["succeeded"]) == (2, 2)
    assert body["sample"] == {"failed": 2, "succeeded": 2, "logs": 1}
    assert body["error_lines"] == [{"pattern": "disk <n> full", "example": "disk 3 full", "devices": 1}]
    top = body["breakdowns"][0]
    assert top["attribute"] in ("device_type", "artifact_name") and top["scope"] == "deployment"
    assert set(top) == {"attribute", "scope", "value", "devices", "failed", "succeeded", "failure_rate",
                        "failure_rate_elsewhere", "share_of_failures", "log_odds_ratio", "score", "exact"}
    assert_error(op.get(f"{V2}/{dep_id}/insights?limit=0"), 400)
    assert_error(op.get(f"{V2}/nope/insights"), 404)
