"""Deployments over HTTP with the real services: management, device and internal APIs."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.helpers import Device

MGMT = "/api/management/v1/deployments"
DEV = "/api/devices/v1/deployments/device/deployments"
NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"


def build_artifact(tmp_path, name, device_type="test-device", payload=b"x" * 100) -> bytes:
    src = tmp_path / f"src-{uuid.uuid4().hex[:6]}"
    src.mkdir()
    for fname, data in (("dest_dir", b"/tmp/app\n"), ("filename", b"app.conf\n"), ("permissions", b"644\n"),
                        ("app.conf", payload)):
        (src / fname).write_bytes(data)
    out = src / "a.mender"
    subprocess.run(["mender-artifact", "write", "module-image", "-T", "single-file", "-t", device_type, "-n", name,
                    "-o", str(out)] + sum((["-f", str(src / f)] for f in ("dest_dir", "filename", "permissions",
                                                                               "app.conf")), []),
                   check=True, capture_output=True)
    return out.read_bytes()


def upload(operator, tmp_path, name, device_type="test-device") -> str:
    import io
    data = build_artifact(tmp_path, name, device_type)
    r = operator.post(f"{MGMT}/artifacts", data={"size": str(len(data)), "description": "d",
                                                  "artifact": (io.BytesIO(data), f"{name}.mender")},
                      content_type="multipart/form-data")
    assert r.status_code == 201, r.data
    return r.headers["Location"].rsplit("/", 1)[1]


def create(operator, **body):
    body.setdefault("name", "rollout")
    body.setdefault("artifact_name", "app-2")
    return operator.post(f"{MGMT}/deployments", json=body)


def poll(device: Device, artifact_name="factory-image", device_type="test-device"):
    return device.request("POST", NEXT_V2, json={"device_provides": {"artifact_name": artifact_name,
                                                                      "device_type": device_type},
                                                 "update_control_map": True})


def report(device: Device, dep_id: str, status: str):
    return device.request("PUT", f"{DEV}/{dep_id}/status", json={"status": status})


@pytest.fixture
def world(app, operator, device_factory, tmp_path):
    upload(operator, tmp_path, "app-2")
    devices = [device_factory() for _ in range(3)]
    return operator, devices


def assert_error(r, status):
    assert r.status_code == status, r.data
    assert set(r.get_json()) == {"error", "request_id"}


def test_create_get_list(world):
    op, devices = world
    r = create(op, devices=[d.id for d in devices])
    assert r.status_code == 201
    dep_id = r.headers["Location"].rsplit("/", 1)[1]
    assert r.headers["Location"].endswith(f"/api/management/v1/deployments/deployments/{dep_id}")
    got = op.get(f"{MGMT}/deployments/{dep_id}").get_json()
    assert got["status"] == "pending" and got["artifact_name"] == "app-2" and got["max_devices"] == 3
    assert got["created"].endswith("Z") and len(got["artifacts"]) == 1
    r = op.get(f"{MGMT}/deployments?per_page=1")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1" and 'rel="first"' in r.headers["Link"]
    assert op.get(f"{MGMT}/deployments?status=finished").get_json() == []
    assert op.get(f"{MGMT}/deployments?search=roll").get_json()[0]["id"] == dep_id
    assert op.get(f"{MGMT}/deployments?created_after=4102444800").get_json() == []
    v2 = op.get(f"/api/management/v2/deployments/deployments?id={dep_id}").get_json()
    assert [d["id"] for d in v2] == [dep_id]
    assert op.get("/api/management/v2/deployments/deployments?name=other").get_json() == []
    assert sorted(op.get(f"{MGMT}/deployments/{dep_id}/device_list").get_json()) == sorted(d.id for d in devices)
    stats = op.get(f"{MGMT}/deployments/{dep_id}/statistics").get_json()
    assert stats["pending"] == 3 and "decommissioned" not in stats
    listed = op.post(f"{MGMT}/deployments/statistics/list", json={"deployment_ids": [dep_id]}).get_json()
    assert listed == [{"id": dep_id, "stats": stats}]


@pytest.mark.parametrize("body,status", [
    ({"name": "x", "artifact_name": "nope", "devices": ["a"]}, 422),
    ({"name": "x", "artifact_name": "app-2"}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": ["a"], "all_devices": True}, 400),
    ({"name": "x" * 257, "artifact_name": "app-2", "devices": ["a"]}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": ["a"], "colour": "red"}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": "a"}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": ["a"], "retries": -1}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": ["a"], "phases": [{"batch_size": 0}]}, 400),
    ({"name": "x", "artifact_name": "app-2", "devices": ["a"], "phases": [{"batch_size": 50},
                                                                           {"start_ts": "2001-01-01T00:00:00Z"}]}, 400),
])
def test_create_errors(world, body, status):
    op, _ = world
    assert_error(op.post(f"{MGMT}/deployments", json=body), status)


def test_duplicate_active_deployment_conflicts(world):
    op, devices = world
    assert create(op, devices=[devices[0].id]).status_code == 201
    assert_error(create(op, devices=[devices[0].id]), 409)


def test_unknown_deployment_is_404(world):
    op, _ = world
    for path in ("", "/statistics", "/devices", "/devices/list", "/device_list"):
        assert_error(op.get(f"{MGMT}/deployments/{uuid.uuid4()}{path}"), 404)
    assert_error(op.put(f"{MGMT}/deployments/{uuid.uuid4()}/status", json={"status": "aborted"}), 404)


@pytest.mark.usefixtures("both_paths")  # the status report: direct route and Flask view
def test_a_status_report_body_is_parsed_once(world, monkeypatch):
    """Regression: through the Flask view (MENDER_DIRECT_ROUTES=false) webargs parsed the body,
    then the handler parsed it again."""
    op, devices = world
    dep_id = create(op, devices=[devices[0].id]).headers["Location"].rsplit("/", 1)[1]
    assert poll(devices[0]).status_code == 200
    body = b'{"status": "downloading", "substate": "parsed-once"}'
    parsed = []
    loads = json.loads

    def counting(raw, *args, **kwargs):
        if raw == body:
            parsed.append(raw)
        return loads(raw, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    r = devices[0].request("PUT", f"{DEV}/{dep_id}/status", data=body, content_type="application/json")
    assert r.status_code == 204, r.data
    assert len(parsed) == 1
    assert op.get(f"{MGMT}/deployments/{dep_id}/devices/list").get_json()[0]["substate"] == "parsed-once"


@pytest.mark.usefixtures("both_paths")  # the status report: direct route and Flask view
def test_device_cycle_over_http(world):
    op, devices = world
    d = devices[0]
    assert poll(d).status_code == 204
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    r = poll(d)
    assert r.status_code == 200
    body = r.get_json()
    assert body["id"] == dep_id
    assert body["artifact"]["artifact_name"] == "app-2"
    assert body["artifact"]["device_types_compatible"] == ["test-device"]
    assert body["artifact"]["source"]["uri"].startswith("http://localhost/")
    assert body["artifact"]["source"]["expire"]
    # the v1 POST and GET variants give the same answer
    r = d.request("POST", f"{DEV}/next", json={"artifact_name": "factory-image", "device_type": "test-device"})
    assert r.get_json()["id"] == dep_id
    r = d.request("GET", f"{DEV}/next?artifact_name=factory-image&device_type=test-device")
    assert r.get_json()["id"] == dep_id
    for status in ("downloading", "downloading", "installing", "installing", "success"):
        assert report(d, dep_id, status).status_code == 204
    assert poll(d, artifact_name="app-2").status_code == 204
    got = op.get(f"{MGMT}/deployments/{dep_id}").get_json()
    assert got["status"] == "finished" and got["statistics"]["status"]["success"] == 1
    listed = op.get(f"{MGMT}/deployments/{dep_id}/devices").get_json()
    assert listed[0]["id"] == d.id and listed[0]["status"] == "success"
    assert listed[0]["image"]["meta_artifact"]["name"] == "app-2"
    page = op.get(f"{MGMT}/deployments/{dep_id}/devices/list?status=success&per_page=10")
    assert page.headers["X-Total-Count"] == "1"
    history = op.get(f"{MGMT}/deployments/devices/{d.id}").get_json()
    assert history[0]["deployment"]["id"] == dep_id and history[0]["device"]["status"] == "success"


def test_a_poll_error_names_a_long_key_in_brief(world):
    """The message names a device's key by its first 64 characters: it echoed the whole key,
    a 1 MiB body's worth."""
    _, devices = world
    d = devices[0]
    long_key = "k" * 900_000
    for body in ({"device_provides": {"device_type": "dt", "artifact_name": "x", long_key: "v"}},
                 {"device_provides": {"device_type": "dt", "artifact_name": "x", long_key: {}}},
                 {"device_provides": {"device_type": "dt", "artifact_name": "x"}, long_key: 1}):
        r = d.request("POST", NEXT_V2, json=body)
        assert_error(r, 400)
        assert "k" * 64 + "\u2026" in r.get_json()["error"] and len(r.data) < 1024


@pytest.mark.usefixtures("both_paths")  # the status report: direct route and Flask view
def test_device_protocol_errors(world):
    op, devices = world
    d, other = devices[0], devices[1]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    assert_error(report(d, dep_id, "exploded"), 400)
    assert_error(report(other, dep_id, "downloading"), 404)  # not its deployment
    assert_error(d.request("PUT", f"{DEV}/{dep_id}/status", data="{", content_type="application/json"), 400)
    assert report(d, dep_id, "installing").status_code == 204
    assert_error(report(d, dep_id, "downloading"), 400)  # out of order
    assert_error(d.request("GET", f"{DEV}/next?artifact_name=x"), 400)
    assert_error(d.request("POST", NEXT_V2, json={"device_provides": {"artifact_name": "x"}}), 400)
    assert_error(d.request("POST", NEXT_V2, json={"device_provides": {"artifact_name": 1, "device_type": {}}}), 400)
    assert_error(d.request("POST", NEXT_V2, json=["not", "an", "object"]), 400)
    # no token, a user token, a device token on the management API
    assert d.client.post(NEXT_V2, json={}).status_code == 401
    assert d.client.post(NEXT_V2, json={}, headers=op.headers).status_code == 401
    assert op.client.get(f"{MGMT}/deployments", headers=d.headers).status_code == 401


@pytest.mark.usefixtures("both_paths")  # the status report: direct route and Flask view
def test_abort_and_logs(world):
    op, devices = world
    d = devices[0]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    report(d, dep_id, "downloading")
    assert_error(op.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "finished"}), 400)
    assert op.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "aborted"}).status_code == 204
    assert_error(op.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "aborted"}), 422)
    assert_error(report(d, dep_id, "installing"), 409)  # the client rolls back on this
    assert report(d, dep_id, "failure").status_code == 409
    states = {x["id"]: x["status"] for x in op.get(f"{MGMT}/deployments/{dep_id}/devices").get_json()}
    assert states[d.id] == "aborted"  # the refused reports changed nothing
    assert op.get(f"{MGMT}/deployments/{dep_id}/statistics").get_json()["aborted"] == 1
    log = {"messages": [{"timestamp": "2026-11-23T02:42:10Z", "level": "error", "message": "rolled back"}]}
    assert d.request("PUT", f"{DEV}/{dep_id}/log", json=log).status_code == 204
    r = op.get(f"{MGMT}/deployments/{dep_id}/devices/{d.id}/log")
    assert r.status_code == 200 and r.mimetype == "text/plain" and "rolled back" in r.get_data(as_text=True)
    assert_error(d.request("PUT", f"{DEV}/{dep_id}/log", json={"messages": [{"level": "x"}]}), 400)
    assert_error(devices[1].request("PUT", f"{DEV}/{dep_id}/log", json=log), 404)


LOG_LINE = {"timestamp": "2026-11-23T02:42:10.123456789Z", "level": "info", "message": "ok"}


@pytest.mark.parametrize("bad", [
    {"messages": []},  # would replace a stored log with nothing
    {"messages": [{**LOG_LINE, "timestamp": "not a time"}]},
    {"messages": [{**LOG_LINE, "timestamp": "2026-02-30T00:00:00Z"}]},
    {"messages": [{**LOG_LINE, "timestamp": "2026-01-01 00:00:00"}]},  # no zone, no T
    {"messages": [{**LOG_LINE, "timestamp": "2026-01-01T00:00:00Z\n"}]},
    {"messages": [{**LOG_LINE, "level": ""}]},
    {"messages": [{**LOG_LINE, "level": "info\r\n2026-01-01T00:00:00Z error"}]},
    {"messages": [{**LOG_LINE, "level": "a b"}]},
    {"messages": [{**LOG_LINE, "level": "x" * 33}]},
    {"messages": [{**LOG_LINE, "message": ""}]},
    {"messages": [{**LOG_LINE, "message": "x" * (64 * 1024 + 1)}]},
    {"messages": [{"timestamp": LOG_LINE["timestamp"], "level": "info"}]},
])
def test_log_upload_refuses_what_mender_refuses_and_keeps_the_stored_log(world, bad):
    op, devices = world
    d = devices[0]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    assert d.request("PUT", f"{DEV}/{dep_id}/log", json={"messages": [LOG_LINE]}).status_code == 204
    assert_error(d.request("PUT", f"{DEV}/{dep_id}/log", json=bad), 400)
    r = op.get(f"{MGMT}/deployments/{dep_id}/devices/{d.id}/log")
    assert r.get_data(as_text=True) == "2026-11-23T02:42:10.123456789Z info: ok\n"


def test_log_text_has_one_line_per_message_whatever_the_message_holds(world):
    op, devices = world
    d = devices[0]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    forged = "ok\r\n2026-01-01T00:00:00Z info: forged\x1b[2J\u2028\u202e\x85 C:\\tmp\tend"
    messages = [{"timestamp": "2026-11-23T02:42:10+01:00", "level": "ERROR", "message": forged},
                {"timestamp": "2026-11-23T02:42:11z", "level": "info", "message": "last"}]
    assert d.request("PUT", f"{DEV}/{dep_id}/log", json={"messages": messages}).status_code == 204
    text = op.get(f"{MGMT}/deployments/{dep_id}/devices/{d.id}/log").get_data(as_text=True)
    assert text == ("2026-11-23T02:42:10+01:00 ERROR: ok\\r\\n2026-01-01T00:00:00Z info: forged\\x1b[2J"
                    "\\u2028\\u202e\\x85 C:\\\\tmp\\tend\n"
                    "2026-11-23T02:42:11z info: last\n")
    assert len(text.splitlines()) == 2


def test_log_stored_before_validation_is_rendered_escaped(app, world):
    """A log stored by an earlier version (no field checked) still renders one line per message."""
    op, devices = world
    d = devices[0]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    with app.app_context():
        app.extensions["mender"].services.deployments.store.save_log(
            "", dep_id, d.id, [{"timestamp": "x\ny", "level": "a\rb", "message": "\x1b]0;t\x07"}])
    text = op.get(f"{MGMT}/deployments/{dep_id}/devices/{d.id}/log").get_data(as_text=True)
    assert text == "x\\ny a\\rb: \\x1b]0;t\\x07\n"


def test_abort_device_history_and_internal(world):
    op, devices = world
    d = devices[0]
    dep_id = create(op, devices=[d.id, devices[1].id]).headers["Location"].rsplit("/", 1)[1]
    poll(d)
    assert op.delete(f"{MGMT}/deployments/devices/{d.id}").status_code == 204
    assert op.get(f"{MGMT}/deployments/devices/{d.id}?status=aborted").get_json()[0]["deployment"]["id"] == dep_id
    assert op.delete(f"{MGMT}/deployments/devices/{d.id}/history").status_code == 204
    assert_error(op.get(f"{MGMT}/deployments/devices/{d.id}?per_page=21"), 400)
    c = op.client
    r = c.get("/api/internal/v1/deployments/tenants/default/deployments")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "1"
    assert c.delete(f"/api/internal/v1/deployments/tenants/default/deployments/devices/{devices[1].id}").status_code == 204
    stats = op.get(f"{MGMT}/deployments/{dep_id}/statistics").get_json()
    assert stats["aborted"] == 1 and stats["pending"] == 0
    last = c.post("/api/internal/v1/deployments/tenants/default/devices/deployments/last",
                  json={"device_ids": [d.id, devices[1].id]}).get_json()["device_deployment_last_statuses"]
    assert {x["device_deployment_status"] for x in last} == {"aborted", "decommissioned"}


def test_group_deployment(world):
    op, devices = world
    for d in devices[:2]:
        assert op.put(f"/api/management/v1/inventory/devices/{d.id}/group", json={"group": "lab"}).status_code == 204
    r = op.post(f"{MGMT}/deployments/group/lab", json={"name": "lab", "artifact_name": "app-2"})
    assert r.status_code == 201, r.data
    dep_id = r.headers["Location"].rsplit("/", 1)[1]
    assert sorted(op.get(f"{MGMT}/deployments/{dep_id}/device_list").get_json()) == sorted(d.id for d in devices[:2])
    assert_error(op.post(f"{MGMT}/deployments/group/empty", json={"name": "x", "artifact_name": "app-2"}), 400)


def test_all_devices_and_phases(world):
    op, devices = world
    r = create(op, all_devices=True, phases=[{"batch_size": 34}, {"start_ts": "2099-01-01T00:00:00Z"}])
    assert r.status_code == 201, r.data
    dep_id = r.headers["Location"].rsplit("/", 1)[1]
    got = op.get(f"{MGMT}/deployments/{dep_id}").get_json()
    assert [p["batch_size"] for p in got["phases"]] == [34, 66]
    served = [d for d in devices if poll(d).status_code == 200]
    assert len(served) == 1  # 34 % of 3 devices, rounded down
    assert got["target"] == {"type": "all_devices"}
    phases = op.get(f"{MGMT}/deployments/{dep_id}/statistics/phases").get_json()
    assert [(p["batch_size"], p["device_limit"], p["device_count"]) for p in phases] == [(34, 1, 1), (66, 2, 0)]
    assert phases[0]["stats"]["pending"] == 1 and phases[1]["start_ts"] == "2099-01-01T00:00:00Z"
    listed = op.get(f"{MGMT}/deployments/{dep_id}/devices/list").get_json()
    assert [(x["id"], x["attempts"], x["retries"], x["phase"]) for x in listed] == [(served[0].id, 0, 0, 0)]
    report(served[0], dep_id, "downloading")
    assert op.get(f"{MGMT}/deployments/{dep_id}/devices/list").get_json()[0]["attempts"] == 1
    assert_error(op.get(f"{MGMT}/deployments/nope/statistics/phases"), 404)


def test_artifact_delete_refused_while_deployed(world, operator):
    op, devices = world
    artifact_id = op.get(f"{MGMT}/artifacts").get_json()[0]["id"]
    dep_id = create(op, devices=[devices[0].id]).headers["Location"].rsplit("/", 1)[1]
    assert_error(op.delete(f"{MGMT}/artifacts/{artifact_id}"), 409)
    op.put(f"{MGMT}/deployments/{dep_id}/status", json={"status": "aborted"})
    assert op.delete(f"{MGMT}/artifacts/{artifact_id}").status_code == 204


def test_a_deployments_artifact_deleted_under_it_fails_the_device_at_its_next_poll(world, app):
    """An artifact deleted while a device's deployment names it (the deletion raced the device's
    assignment: the delete's in-use check had passed) is never handed out again: the device's
    next poll answers 204 and its deployment fails as "artifact deleted". The poll reads the
    artifact with the device's history (one statement on SQLite): that read sees the deletion."""
    op, devices = world
    d = devices[0]
    artifact_id = op.get(f"{MGMT}/artifacts").get_json()[0]["id"]
    dep_id = create(op, devices=[d.id]).headers["Location"].rsplit("/", 1)[1]
    assert poll(d).get_json()["artifact"]["id"] == artifact_id
    assert poll(d).get_json()["artifact"]["id"] == artifact_id  # a repeat reads the recorded artifact
    artifacts = app.extensions["mender"].services.artifacts
    assert artifacts.store.delete_artifact("", artifact_id) is not None  # past the delete's in-use check
    assert poll(d).status_code == 204
    listed = op.get(f"{MGMT}/deployments/{dep_id}/devices").get_json()
    assert [(x["id"], x["status"], x["substate"]) for x in listed] == [(d.id, "failure", "artifact deleted")]
    assert poll(d).status_code == 204


def test_the_unpaged_device_listing_streams_every_device(make_app, monkeypatch):
    from deployments import service_management
    from tests.helpers import Device, Operator
    monkeypatch.setattr(service_management, "DEVICE_BATCH", 2)
    app = make_app("sqlite")
    client = app.test_client()
    op = Operator.create(app, client)
    ctx = app.extensions["mender"]
    ids = [f"dev-{i}" for i in range(5)]
    for i in ids:
        ctx.services.inventory.set_status("", [i], "accepted")
    from tests.deployments.fakes import FakeArtifacts
    ctx.services.artifacts = FakeArtifacts()
    ctx.services.artifacts.add("app-2")
    dep = ctx.services.deployments.create_deployment("", name="r", artifact_name="app-2", devices=ids)
    for i in ids:
        ctx.services.deployments.next_deployment("", i, {"artifact_name": "a", "device_type": "dt"}, "http://x")
    r = op.get(f"{MGMT}/deployments/{dep.id}/devices")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert [x["id"] for x in r.get_json()] == ids and {x["status"] for x in r.get_json()} == {"pending"}
    assert op.get(f"{MGMT}/deployments/nope/devices").status_code == 404


def test_the_links_base_is_werkzeugs_scheme_and_host_whether_kept_or_not():
    """deployments.api.base_url keeps the bases it computed by the values they come from: each
    answer is what werkzeug's `scheme` and `host` give for that request (the Host header, else
    the server's address; characters werkzeug refuses give an empty host), the configured scheme
    and host win, and a request with trusted hosts is asked every time."""
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from deployments.api import base_url

    none = {"DEPLOYMENTS_PRESIGN_URL_SCHEME": "", "DEPLOYMENTS_PRESIGN_URL_HOSTNAME": ""}
    variants = [("http", "example.com"), ("http", "example.com:8080"), ("https", "example.com"),
                ("https", "example.com:443"), ("http", "[::1]:80"), ("http", "bad host\"x"), ("http", None)]
    for _ in range(2):  # computed, then kept
        for scheme, host in variants:
            environ = EnvironBuilder(path="/x", base_url=f"{scheme}://server.local:81").get_environ()
            if host is None:
                del environ["HTTP_HOST"]
            else:
                environ["HTTP_HOST"] = host
            fresh = Request(environ)
            assert base_url(Request(environ), none) == f"{fresh.scheme}://{fresh.host}"
            assert base_url(Request(environ), {"DEPLOYMENTS_PRESIGN_URL_SCHEME": "https",
                                               "DEPLOYMENTS_PRESIGN_URL_HOSTNAME": "cdn.example"}) \
                == "https://cdn.example"
            assert base_url(Request(environ), {**none, "DEPLOYMENTS_PRESIGN_URL_SCHEME": "https"}) \
                == f"https://{fresh.host}"
    environ = EnvironBuilder(path="/x", base_url="http://example.com").get_environ()
    trusting = Request(environ)
    trusting.trusted_hosts = ["other.example"]
    with pytest.raises(Exception, match="not trusted"):
        base_url(trusting, none)
