"""The direct routes (common.direct) answer exactly as the Flask path does: every request below is
sent twice to the same app, once through the direct layer and once through Flask
(MENDER_DIRECT_ROUTES off), and the status, body, headers, access line and metrics must match."""

import json
import sqlite3

import pytest

import common.direct
import common.http
from common.clock import FrozenClock
from tests.deployments.test_api import build_artifact
from tests.helpers import Device, Operator, accepted_device, sign_body

NEXT_V2 = "/api/devices/v2/deployments/device/deployments/next"
NEXT_V1 = "/api/devices/v1/deployments/device/deployments/next"
PROVIDES = {"artifact_name": "factory-image", "device_type": "test-device"}
LIMIT = 4096


class _AccessLog:
    def __init__(self):
        self.lines = []

    def info(self, event, **fields):
        fields.pop("duration_ms")
        self.lines.append((event, fields))


@pytest.fixture
def world(make_app, backend, tmp_path, monkeypatch):
    monkeypatch.setattr(common.http, "access_log_enabled", lambda: True)  # read when the app is made
    app = make_app(backend, _CLOCK=FrozenClock(1_900_000_000.0), MENDER_REQUEST_SIZE_LIMIT=LIMIT)
    client = app.test_client()
    operator = Operator.create(app, client)
    idle = accepted_device(app, operator, client)
    updating = accepted_device(app, operator, client)
    r = operator.post("/api/management/v1/deployments/artifacts", data={
        "artifact": (__import__("io").BytesIO(build_artifact(tmp_path, "app-2")), "a.mender")},
        content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    r = operator.post("/api/management/v1/deployments/deployments",
                      json={"name": "d", "artifact_name": "app-2", "devices": [updating.id]})
    assert r.status_code == 201, r.get_json()
    updating.deployment_id = r.headers["Location"].rsplit("/", 1)[1]
    log = _AccessLog()
    for module in (common.http, common.direct):
        monkeypatch.setattr(module, "access_log", log)
    monkeypatch.setattr(common.direct, "access_log_enabled", lambda: True)
    return app, client, idle, updating, log


def _both(app, client, log, method, path, **kwargs):
    """(status, body, headers, access line) through the direct layer, then through Flask."""
    routes = app.extensions["mender"].direct_routes
    kwargs["headers"] = {"X-MEN-RequestID": "direct-check-1", **kwargs.get("headers", {})}
    cookie = kwargs.pop("cookie", None)
    if cookie is not None:
        client = app.test_client()
        client.set_cookie("JWT", cookie)
    answers = []
    for enabled in (True, False):
        routes.enabled = enabled
        before = len(log.lines)
        r = client.open(path, method=method, **kwargs)
        lines = log.lines[before:]
        body = r.get_data()
        answers.append((r.status_code, body, sorted((k.lower(), v) for k, v in r.headers.items()), lines))
    routes.enabled = True
    return answers


def _headers(device, **extra):
    return {"Authorization": f"Bearer {device.token}", "X-MEN-RequestID": "direct-check-1", **extra}


def _cases(idle, updating):
    body_v2 = {"device_provides": PROVIDES, "update_control_map": True}
    return [
        ("POST", NEXT_V2, dict(headers=_headers(idle), json=body_v2), 204),
        ("POST", NEXT_V2, dict(headers=_headers(updating), json=body_v2), 200),
        ("POST", NEXT_V1, dict(headers=_headers(updating), json=PROVIDES), 200),
        ("POST", NEXT_V1, dict(headers=_headers(idle), json=PROVIDES), 204),
        ("GET", NEXT_V1 + "?artifact_name=factory-image&device_type=test-device&other=1",
         dict(headers=_headers(idle)), 204),
        ("GET", NEXT_V1 + "?artifact_name=factory-image&device_type=test-device&device_type=x",
         dict(headers=_headers(updating)), 200),
        ("GET", NEXT_V1 + "?artifact_name=factory-image", dict(headers=_headers(idle)), 400),
        ("GET", NEXT_V1 + "?artifact_name=&device_type=t", dict(headers=_headers(idle)), 400),
        ("GET", NEXT_V1, dict(headers=_headers(idle), environ_overrides={"QUERY_STRING": "artifact_name=\xff&device_type=t"}), 400),
        ("POST", NEXT_V2, dict(json=body_v2), 401),
        ("POST", NEXT_V2, dict(headers={"Authorization": "Bearer not.a.token"}, json=body_v2), 401),
        ("POST", NEXT_V2, dict(headers={"Authorization": "Basic eDp5"}, json=body_v2), 401),
        # the session cookie (a browser's) needs the CSRF header on a POST
        ("POST", NEXT_V2, dict(cookie=idle.token, json=body_v2), 403),
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=json.dumps(body_v2), content_type="text/plain"), 415),
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=b"", content_type="application/json"), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=b"{", content_type="application/json"), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=b"[" * 100_000 + b"]" * 100_000,
                               content_type="application/json"), 413),
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=b"[" * 2000 + b"]" * 2000,
                               content_type="application/json"), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle), json={"device_provides": []}), 400),
        # a body shorter than its Content-Length (the client went away)
        ("POST", NEXT_V2, dict(headers=_headers(idle), data=b'{"device_provides": {}}', content_type="application/json",
                               environ_overrides={"CONTENT_LENGTH": "100"}), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle), json={"device_provides": PROVIDES, "x": 1}), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle), json={"device_provides": {"device_type": "t"}}), 400),
        ("POST", NEXT_V1, dict(headers=_headers(idle), json={"artifact_name": "a", "device_type": True}), 400),
        ("POST", NEXT_V2, dict(headers=_headers(idle, **{"X-MEN-RequestID": "bad id"}), json=body_v2), 204),
        # not direct: Flask answers these (redirect or refusal, HEAD, OPTIONS) either way
        ("PUT", NEXT_V2, dict(headers=_headers(idle), json=body_v2), 405),
        ("HEAD", NEXT_V1 + "?artifact_name=a&device_type=t", dict(headers=_headers(idle)), 204),
    ]


def test_direct_routes_answer_as_flask(world):
    app, client, idle, updating, log = world
    for method, path, kwargs, status in _cases(idle, updating):
        direct, flask = _both(app, client, log, method, path, **kwargs)
        assert direct[0] == status, (method, path, direct)
        if "bad id" in str(kwargs.get("headers")):  # a new request id each time: compare the rest
            for answer in (direct, flask):
                assert dict(answer[2])["x-men-requestid"] != "bad id"
            direct = (direct[0], direct[1], [h for h in direct[2] if h[0] != "x-men-requestid"])
            flask = (flask[0], flask[1], [h for h in flask[2] if h[0] != "x-men-requestid"])
            assert direct == flask
            continue
        assert direct == flask, (method, path)
        if status >= 400:
            body = json.loads(direct[1])
            assert set(body) == {"error", "request_id"} and body["request_id"] == "direct-check-1"


STATUS = "/api/devices/v1/deployments/device/deployments/{}/status"
ATTRIBUTES = "/api/devices/v1/inventory/device/attributes"
AUTH = "/api/devices/v1/authentication/auth_requests"
JSON = "application/json"
_CHUNKED = {"wsgi.input_terminated": True}  # as the ASGI front passes a chunked body: no Content-Length


def _chunked(device, body: bytes):
    return dict(headers=_headers(device, **{"Transfer-Encoding": "chunked"}), data=body, content_type=JSON,
                environ_overrides=_CHUNKED)


def _padded(body: bytes, size: int) -> bytes:
    """`body` with trailing JSON whitespace up to `size` bytes."""
    return body + b" " * (size - len(body))


def _write_cases(idle, updating):
    """The wave's device writes; each case answers the same twice in a row (repeating a status
    is allowed, uploads are idempotent), so the direct and the Flask answer can be compared."""
    dep = updating.deployment_id
    status = STATUS.format(dep)
    big = {"status": "downloading", "substate": "x" * LIMIT}
    cases = [
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading"}), 204),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "substate": "s" * 1024}), 204),
        ("PUT", status, dict(headers=_headers(updating), json={"substate": "x"}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={}), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b"", content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b"  ", content_type="text/plain"), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b'{"status": "downloading"}', content_type="text/plain"), 415),
        ("PUT", status, dict(headers=_headers(updating), data=b'{"status": "downloading"}',
                             content_type="application/merge-patch+json"), 204),
        ("PUT", status, dict(headers=_headers(updating), data=b"{", content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b"\xff", content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b"[" * 2000 + b"]" * 2000, content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), json=["downloading"]), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b"null", content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), data=b'"downloading"', content_type=JSON), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": 1}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": None}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "bogus"}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "DOWNLOADING"}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "pending"}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "x": 1}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "json": 1}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "substate": None}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "substate": 5}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "downloading", "substate": "x" * 1025}), 400),
        ("PUT", status, dict(headers=_headers(updating), json={"status": "bogus", "substate": "x" * 1025, "y": 1}), 400),
        ("PUT", status, dict(headers=_headers(updating), json=big), 413),
        ("PUT", status, _chunked(updating, json.dumps(big).encode()), 413),
        ("PUT", status, _chunked(updating, b'{"status": "downloading"}'), 204),
        # a body of exactly the limit is accepted whether chunked or declared; a byte more is a 413 either way
        ("PUT", status, _chunked(updating, _padded(b'{"status": "downloading"}', LIMIT)), 204),
        ("PUT", status, dict(headers=_headers(updating), data=_padded(b'{"status": "downloading"}', LIMIT),
                             content_type=JSON), 204),
        ("PUT", status, _chunked(updating, _padded(b'{"status": "downloading"}', LIMIT + 1)), 413),
        ("PUT", status, dict(headers=_headers(updating), data=_padded(b'{"status": "downloading"}', LIMIT + 1),
                             content_type=JSON), 413),
        ("PUT", status, dict(headers=_headers(updating), data=b'{"status": "downloading"}', content_type=JSON,
                             environ_overrides={"CONTENT_LENGTH": "100"}), 400),
        ("PUT", status, dict(json={"status": "downloading"}), 401),
        ("PUT", status, dict(headers={"Authorization": "Bearer not.a.token"}, json={"status": "downloading"}), 401),
        ("PUT", status, dict(cookie=updating.token, json={"status": "downloading"}), 403),
        # not this device's deployment; no such deployment; an id that is not UTF-8
        ("PUT", status, dict(headers=_headers(idle), json={"status": "downloading"}), 404),
        ("PUT", STATUS.format("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"), dict(headers=_headers(updating),
                                                                             json={"status": "downloading"}), 404),
        ("PUT", STATUS.format("x"), dict(headers=_headers(updating), json={"status": "bogus"}), 400),
        ("PUT", STATUS.format("x"), dict(headers=_headers(updating), json={"status": "downloading"},
                                         environ_overrides={"PATH_INFO": STATUS.format("\xff\xc3")}), 404),
        # not direct: Flask answers these either way
        ("GET", status, dict(headers=_headers(updating)), 405),
        ("PUT", status + "/", dict(headers=_headers(updating), json={"status": "downloading"}), 404),
        ("PUT", STATUS.format(""), dict(headers=_headers(updating), json={"status": "downloading"}), 404),
    ]
    attributes = [{"name": "rootfs-image.version", "value": "v1"}, {"name": "mem", "value": 512}]
    for method in ("PATCH", "PUT"):
        cases += [
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=attributes), 200),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=[]), 200),
            (method, ATTRIBUTES, _chunked(idle, json.dumps(attributes).encode()), 200),
            (method, ATTRIBUTES, _chunked(idle, _padded(json.dumps(attributes).encode(), LIMIT)), 200),
            (method, ATTRIBUTES, _chunked(idle, _padded(json.dumps(attributes).encode(), LIMIT + 1)), 413),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json={"name": "a", "value": 1}), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=[{"name": "a"}]), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=[{"name": 1, "value": "v"}]), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=[{"name": "a", "value": {"x": 1}}]), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), data=b"", content_type=JSON), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), data=b"[", content_type=JSON), 400),
            (method, ATTRIBUTES, dict(headers=_headers(idle), data=json.dumps(attributes), content_type="text/plain"), 415),
            (method, ATTRIBUTES, dict(headers=_headers(idle), json=[{"name": "a", "value": "x" * LIMIT}]), 413),
            (method, ATTRIBUTES, _chunked(idle, json.dumps([{"name": "a", "value": "x" * LIMIT}]).encode()), 413),
            (method, ATTRIBUTES, dict(json=attributes), 401),
            (method, ATTRIBUTES, dict(headers={"Authorization": "Bearer not.a.token"}, json=attributes), 401),
            (method, ATTRIBUTES, dict(cookie=idle.token, json=attributes), 403),
        ]
    body = updating.auth_body()
    signature = sign_body(updating.key, body)
    auth = {"X-MEN-Signature": signature, "X-MEN-RequestID": "direct-check-1"}
    stranger = Device(None)
    stranger_body = stranger.auth_body()
    cases += [
        ("POST", AUTH, dict(headers=auth, data=body, content_type=JSON), 200),
        ("POST", AUTH, dict(headers=auth, data=body, content_type="application/json; charset=utf-8"), 200),
        # a device token in the header changes nothing on this public path
        ("POST", AUTH, dict(headers={**auth, "Authorization": "Bearer not.a.token"}, data=body, content_type=JSON), 200),
        ("POST", AUTH, dict(headers={"X-MEN-Signature": sign_body(stranger.key, stranger_body)}, data=stranger_body,
                            content_type=JSON), 401),
        ("POST", AUTH, dict(headers=auth, data=body + b" ", content_type=JSON), 401),
        ("POST", AUTH, dict(headers={"X-MEN-Signature": "@@@"}, data=body, content_type=JSON), 401),
        ("POST", AUTH, dict(data=body, content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=body, content_type="text/plain"), 415),
        ("POST", AUTH, dict(headers=auth, data=body), 415),
        ("POST", AUTH, dict(headers=auth, data=b"", content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=b"[]", content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=b'{"id_data": 1, "pubkey": "k"}', content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=b'{"pubkey": "k"}', content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=b"[" * 2000 + b"]" * 2000, content_type=JSON), 400),
        ("POST", AUTH, dict(headers=auth, data=b" " * (LIMIT + 1), content_type=JSON), 413),
        ("POST", AUTH, dict(headers={**auth, "Transfer-Encoding": "chunked"}, data=b" " * (LIMIT + 1),
                            content_type=JSON, environ_overrides=_CHUNKED), 413),
        ("POST", AUTH, dict(headers={**auth, "Transfer-Encoding": "chunked"}, data=body, content_type=JSON,
                            environ_overrides=_CHUNKED), 200),
        ("POST", AUTH, dict(headers=auth, data=body, content_type=JSON, environ_overrides={"CONTENT_LENGTH": "3000"}), 400),
        # not direct
        ("GET", AUTH, dict(headers=auth), 405),
        ("POST", AUTH + "/", dict(headers=auth, data=body, content_type=JSON), 404),
    ]
    return cases


def test_device_writes_answer_as_flask(world):
    """The status report, the inventory upload and the auth request: each case through the direct
    layer and through Flask (webargs and flask-smorest for the status report), compared."""
    app, client, idle, updating, log = world
    assert updating.request("POST", NEXT_V1, json=PROVIDES).status_code == 200  # its deployment is assigned
    for method, path, kwargs, status in _write_cases(idle, updating):
        direct, flask = _both(app, client, log, method, path, **kwargs)
        assert direct[0] == status, (method, path, direct)
        if status == 200 and path == AUTH:  # a new token each time: both valid, the rest alike
            for answer in (direct, flask):
                token = answer[1].decode()
                r = client.post(NEXT_V2, headers={"Authorization": f"Bearer {token}"},
                                json={"device_provides": PROVIDES})
                assert r.status_code == 200, r.get_json()
            assert len(direct[1]) == len(flask[1])
            direct, flask = (direct[0], direct[2], direct[3]), (flask[0], flask[2], flask[3])
        assert direct == flask, (method, path, kwargs)
        if status >= 400:
            body = json.loads(direct[1])
            assert set(body) == {"error", "request_id"} and body["request_id"] == "direct-check-1"


def test_access_line_and_metrics_of_direct_routes(world):
    app, client, idle, updating, log = world
    body = {"device_provides": PROVIDES, "update_control_map": True}
    direct, flask = _both(app, client, log, "POST", NEXT_V2, headers=_headers(idle), json=body)
    assert direct[3] == flask[3] and len(direct[3]) == 1
    event, fields = direct[3][0]
    assert event == "request" and fields["route"] == NEXT_V2 and fields["status"] == 204
    assert fields["subject"] == idle.id and fields["request_id"] == "direct-check-1"

    def count(status):
        text = client.get("/metrics").get_data(as_text=True)
        lines = [l for l in text.splitlines() if l.startswith("mender_http_requests_total{")
                 and f'route="{NEXT_V2}"' in l and f'status="{status}"' in l and 'method="POST"' in l]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    before = count(401)
    client.post(NEXT_V2, json=body)
    assert count(401) == before + 1


@pytest.mark.parametrize("error, status", [(sqlite3.OperationalError("database is locked"), 503),
                                           (RuntimeError("boom"), 500)])
def test_failures_answer_as_flask(world, monkeypatch, error, status):
    app, client, idle, updating, log = world
    svc = app.extensions["mender"].services.deployments

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(svc, "next_deployment", fail)
    direct, flask = _both(app, client, log, "POST", NEXT_V2, headers=_headers(idle),
                          json={"device_provides": PROVIDES})
    assert direct[0] == status and direct[:3] == flask[:3]
    assert json.loads(direct[1])["error"] in ("service unavailable", "internal error")


def test_revoked_device_is_refused_on_its_next_direct_poll(world):
    app, client, idle, updating, log = world
    op = Operator.create(app, client, email="second@example.com")
    assert idle.request("POST", NEXT_V2, json={"device_provides": PROVIDES}).status_code == 204
    record = op.find_device(idle)
    r = op.delete(f"/api/management/v2/devauth/devices/{record['id']}")
    assert r.status_code == 204
    assert idle.request("POST", NEXT_V2, json={"device_provides": PROVIDES}).status_code == 401


def test_flask_hooks_are_the_ones_direct_routes_reproduce(sqlite_app):
    """A direct route runs common.http's checks and AppContext.request_hooks instead of Flask's
    hooks: a new app-wide Flask hook must be added to both paths (or be one of these)."""
    names = {kind: [f.__qualname__ for f in funcs.get(None, [])] for kind, funcs in (
        ("before", sqlite_app.before_request_funcs), ("after", sqlite_app.after_request_funcs),
        ("teardown", sqlite_app.teardown_request_funcs))}
    # auditlogs' hooks act on management requests only (a direct route is a device route)
    assert names == {"before": ["install.<locals>._start", "install.<locals>._collect"],
                     "after": ["install.<locals>._finish", "install.<locals>._record"],
                     "teardown": ["install.<locals>._clear"]}
    assert not sqlite_app.url_value_preprocessors and not sqlite_app.url_default_functions


def test_only_device_routes_can_be_direct(sqlite_app):
    routes = sqlite_app.extensions["mender"].direct_routes
    for rule in ("/api/management/v1/deployments/deployments", "/api/internal/v1/devauth/tokens/verify",
                 "/api/management/v1/deployments/deployments/<id>/status", "/metrics",
                 # another converter than string's; a parameter that could reach a public path
                 "/api/devices/v1/deployments/device/deployments/<int:id>/status",
                 "/api/devices/v1/deployments/<path:rest>", "/api/devices/v1/deployments/<kind>/x"):
        with pytest.raises(ValueError):
            routes.add("POST", rule, lambda req, identity: (204, None))
    for rule in ("/api/devices/v1/authentication/auth_requests",  # public: no identity
                 "/api/devices/v1/deployments/device/deployments/<string:id>/other/<name>"):
        routes.add("POST", rule, lambda req, identity, **params: (204, None))


def test_direct_routes_match_what_flask_routes(sqlite_app):
    """Each direct route is the Flask view of the same method and path: for paths with a
    parameter, every path the layer takes is routed by Flask to the same rule, with the same
    parameter; paths Flask would redirect (a double or trailing slash) are left to Flask."""
    routes = sqlite_app.extensions["mender"].direct_routes
    adapter = sqlite_app.url_map.bind("localhost")
    direct = [(m, r.rule) for (m, _), r in routes.routes.items()]
    direct += [(m, r.rule) for m, rs in routes.patterns.items() for r in rs]
    assert ("PUT", "/api/devices/v1/deployments/device/deployments/<string:deployment_id>/status") in direct
    assert {("PUT", "/api/devices/v1/inventory/device/attributes"), ("PATCH", "/api/devices/v1/inventory/device/attributes"),
            ("POST", "/api/devices/v1/authentication/auth_requests")} <= set(direct)
    for method, rule in direct:
        for value in ("abc", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "next", "a%20b", "\xc3\xa9", "\xff"):
            path = rule.replace("<string:deployment_id>", value)
            found = routes.routes.get((method, path)) or next(
                (r for r in routes.patterns.get(method, ()) if r.pattern.fullmatch(path)), None)
            assert found is not None and found.rule == rule, path
            flask_rule, args = adapter.match(path.encode("latin-1").decode(errors="replace"), method, return_rule=True)
            assert flask_rule.rule == rule and set(args.values()) <= {path.split("/")[-2].encode("latin-1").decode(errors="replace")}
    status = routes.patterns["PUT"][0]
    for path in ("/api/devices/v1/deployments/device/deployments//status",
                 "/api/devices/v1/deployments/device/deployments/a/b/status",
                 "/api/devices/v1/deployments/device/deployments/a/status/",
                 "/api/devices/v1//deployments/device/deployments/a/status"):
        assert status.pattern.fullmatch(path) is None


def test_the_direct_layers_json_is_json_dumps_compact():
    """The layer's encoder (made once) writes exactly json.dumps(value, separators=(",", ":")),
    and refuses what json.dumps refuses."""
    values = [{"id": "x", "artifact": {"source": {"uri": "http://h/p?a=b&c=%2F", "expire": "2030-01-01T00:00:00Z"},
                                       "device_types_compatible": ["t1", "t\u00e9", "\u2603", "\ud83d"]}},
              {"error": "bad \"quote\" \\ \n\t\x00", "request_id": "r"}, [1, 2.5, -0.0, 1e300, None, True, False],
              {"nan": float("nan"), "inf": float("-inf"), "big": 2 ** 70, 1: "int key", None: 0}, "", [], {}]
    for value in values:
        assert common.direct.compact_json(value) == json.dumps(value, separators=(",", ":")).encode()
    for bad in ({"x": object()}, {(1, 2): 1}, [b"bytes"]):
        with pytest.raises(TypeError):
            json.dumps(bad)
        with pytest.raises(TypeError):
            common.direct.compact_json(bad)
    shared = {"a": [1, 2]}  # the same object twice is not a cycle
    assert common.direct.compact_json([shared, shared]) == b'[{"a":[1,2]},{"a":[1,2]}]'


@pytest.mark.parametrize("length", [None, "0", "12", "0012", "-1", "12abc", " 12", "１２", ""])
@pytest.mark.parametrize("encoding", [None, "chunked", "gzip, chunked", "gzip", "Chunked"])
def test_the_direct_requests_content_length_is_werkzeugs(length, encoding):
    """DirectRequest reads Content-Length and Transfer-Encoding from the environ itself: the same
    answer as werkzeug's Request for every pair."""
    from werkzeug.wrappers import Request
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "wsgi.input": None}
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    if encoding is not None:
        environ["HTTP_TRANSFER_ENCODING"] = encoding
    assert common.direct.DirectRequest(dict(environ)).content_length == Request(dict(environ)).content_length
