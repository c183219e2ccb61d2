"""Hostile bytes in the path, query, headers and body of every route: never a 5xx, always a JSON
error with a request id.

The routes come from `app.url_map` (a route added later is fuzzed without touching this file); the
query argument names from the app's own OpenAPI document. Requests carry a real operator's or
device's token, and the path parameters not under attack hold real ids (tests/common/fuzz.py
builds that world), so handlers run rather than the authentication layer refusing everything.
Seeded and bounded: `FUZZ_SEED=n` reproduces a run; each route gets every hostile path segment,
and a seeded sample of the query strings, header sets and bodies (every one of them is used
across the routes).

The same slice goes through a real gunicorn over raw sockets, since the WSGI server's own
parsing (raw non-ASCII bytes on the request line, bytes that are not Latin-1 text, CR in a
header) happens before the app sees anything.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket

import pytest
from requests.structures import CaseInsensitiveDict

from common.app import create_app
from common.http import bad_header
from tests.common import fuzz
from tests.helpers import GunicornServer, backend_config

SEED = int(os.environ.get("FUZZ_SEED", "20261124"))
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([A-Za-z_]+)>")
# Destructive requests go last, so that earlier ones still find the records they aim at.
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}


def routes(app) -> list[tuple[str, str, str]]:
    """(rule, method, endpoint) for every route, safest methods first; logout at the very end."""
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.rule, method, rule.endpoint))
    return sorted(out, key=lambda r: ("logout" in r[0], _METHOD_ORDER.get(r[1], 1), r[0], r[1]))


def realm(path: str) -> str:
    if path.startswith("/api/management/") and not path.endswith("/auth/login"):
        return "management"
    if path.startswith("/api/devices/") and "/authentication/" not in path and "/download/" not in path:
        return "devices"
    return "none"


def query_names(app) -> dict[str, list[str]]:
    """Query argument names per rule, from the app's OpenAPI document."""
    spec = app.extensions["mender"].api.spec.to_dict()
    names: dict[str, list[str]] = {}
    for path, ops in spec.get("paths", {}).items():
        rule = re.sub(r"\{([^}]+)\}", r"<\1>", path)
        for op in ops.values():
            if isinstance(op, dict):
                for p in op.get("parameters", []):
                    if isinstance(p, dict) and p.get("in") == "query":
                        names.setdefault(rule, []).append(p["name"])
    return names


def build_path(rule: str, endpoint: str, values: dict, attack: str | None = None, with_value: str = "") -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name == attack:
            return with_value
        return values.get(f"{endpoint}:{name}") or values.get(name) or "x"
    return _CONVERTER.sub(sub, rule)


class Fuzzer:
    def __init__(self, world: fuzz.World, seed: int):
        self.world = world
        self.rng = random.Random(seed)
        self.failures: list[str] = []
        self.count = 0

    def headers_for(self, path: str, extra: dict | None = None) -> dict:
        headers = {}
        kind = realm(path)
        if kind == "management":
            headers.update(self.world.operator.headers)
        elif kind == "devices":
            headers.update(self.world.device.headers)
        headers.update(extra or {})
        return headers

    def send(self, method: str, path: str, query: bytes = b"", headers: dict | None = None,
             body: tuple[str, bytes] | None = None, label: str = "") -> None:
        kwargs: dict = {"headers": self.headers_for(path.split("?")[0], headers)}
        if query:  # raw bytes, as a server puts them in the environ (the test client would re-encode a str)
            kwargs["environ_overrides"] = {"QUERY_STRING": query.decode("latin-1")}
        if body is not None:
            kwargs["data"] = body[1]
            kwargs.setdefault("content_type", body[0])
        if "Content-Type" in kwargs["headers"]:
            kwargs.pop("content_type", None)
        self.count += 1
        try:
            r = self.world.client.open(path, method=method, **kwargs)
        except Exception as exc:  # the app (or its WSGI guard) let an exception out
            self.failures.append(f"{method} {path[:120]} {label}: raised {exc!r}"[:400])
            return
        problem = check(r.status_code, dict(r.headers), r.get_data())
        if problem:
            self.failures.append(f"{method} {path[:120]} {label}: {problem}"[:400])

    def fuzz_route(self, rule: str, method: str, endpoint: str, qnames: list[str]) -> None:
        values = self.world.values
        params = _CONVERTER.findall(rule)
        segments = fuzz.HOSTILE_SEGMENTS + fuzz.random_segments(self.rng, 3)
        for name in params:
            for seg in segments:
                self.send(method, build_path(rule, endpoint, values, name, seg), label=f"<{name}>={seg[:40]!r}")
        path = build_path(rule, endpoint, values)
        if not params:  # no parameter: attack the last segment instead
            for seg in segments:
                self.send(method, path.rstrip("/") + "/" + seg, label=f"extra segment {seg[:40]!r}")
        queries = self.rng.sample(fuzz.HOSTILE_QUERIES, 2)
        for name in qnames or self.rng.sample(fuzz.COMMON_QUERY_NAMES, 3):
            value = self.rng.choice(fuzz.HOSTILE_VALUES)
            queries.append(name.encode() + b"=" + value.encode("latin-1"))
        for q in queries:
            self.send(method, path, query=q, label=f"query {q[:60]!r}")
        for headers in self.rng.sample(fuzz.HOSTILE_HEADERS, 6):
            self.send(method, path, headers=headers, label=f"headers {str(headers)[:80]}")
        if method in BODY_METHODS:
            bodies = self.rng.sample(fuzz.HOSTILE_BODIES, 1) + fuzz.hostile_json_bodies(self.rng, 2)
            for body in bodies:
                self.send(method, path, body=body, label=f"body {body[1][:60]!r}")
        if method != "GET":
            self.world.refresh_tokens()


def check(status: int, headers: dict, body: bytes) -> str | None:
    """What is wrong with a response to hostile input, or None."""
    if status >= 500:
        return f"{status} {body[:200]!r}"
    rid = headers.get("X-MEN-RequestID") or headers.get("x-men-requestid")
    if not rid:
        return f"{status} without X-MEN-RequestID"
    bad = bad_header(headers.items())
    if bad:
        return f"{status} unsendable header {bad}"
    if status >= 400 and body:
        if not headers.get("Content-Type", "").startswith("application/json"):
            return f"{status} {headers.get('Content-Type')} body {body[:120]!r}"
        try:
            doc = json.loads(body)
        except ValueError:
            return f"{status} body is not JSON: {body[:120]!r}"
        if not (isinstance(doc, dict) and doc.get("error") and doc.get("request_id") == rid):
            return f"{status} error body without error/request_id: {body[:200]!r}"
    return None


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def world(request, tmp_path_factory):
    cfg = backend_config(request.param, str(tmp_path_factory.mktemp(f"fuzz-{request.param}")))
    # the login limit would turn a fuzzer's re-login into 429s: it has its own tests
    cfg["USERADM_RATE_LIMIT_LOGIN"] = ""
    app = create_app(cfg)
    yield fuzz.build_world(app)
    ctx = app.extensions["mender"]
    ctx.shutdown()
    ctx.db.close()


def test_every_route_survives_hostile_input(world):
    fuzzer = Fuzzer(world, SEED)
    names = query_names(world.app)
    table = routes(world.app)
    assert len(table) > 100  # the URL map is really walked
    for rule, method, endpoint in table:
        fuzzer.fuzz_route(rule, method, endpoint, names.get(rule, []))
    assert not fuzzer.failures, (f"FUZZ_SEED={SEED}: {len(fuzzer.failures)} of {fuzzer.count} requests failed:\n"
                                 + "\n".join(fuzzer.failures[:40]))


def test_link_header_is_ascii_for_a_non_latin1_path(world):
    """The reported break: a paged list under a non-Latin-1 path answered gunicorn's 500 text/html."""
    r = world.operator.get("/api/management/v1/deployments/deployments/devices/%F0%AA%A4%8B")
    assert r.status_code == 200
    link = r.headers["Link"]
    link.encode("ascii")
    assert "/devices/%F0%AA%A4%8B?page=1&per_page=20>" in link


# --------------------------------------------------------------------------- through a real gunicorn

def raw_request(port: int, request: bytes, timeout: float = 10.0) -> tuple[int, dict, bytes]:
    """Send bytes as they are; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = CaseInsensitiveDict()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return status, headers, body


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A real gunicorn with an operator and an accepted device."""
    from tests.ui.device import HttpDevice
    import requests
    email, password = "fuzz@example.com", "fuzz-correct-horse"
    server = GunicornServer(str(tmp_path_factory.mktemp("fuzz-gunicorn")), workers=1,
                            env={"MENDER_ADMIN_EMAIL": email, "MENDER_ADMIN_PASSWORD": password,
                                 "MENDER_LOG_LEVEL": "warning"}).start()
    try:
        token = requests.post(server.url + "/api/management/v1/useradm/auth/login", auth=(email, password),
                              timeout=10).text
        mgmt = {"Authorization": f"Bearer {token}"}
        device = HttpDevice(server.url, device_type="test-device")
        assert device.auth().status_code == 401
        found = requests.get(server.url + "/api/management/v2/devauth/devices", headers=mgmt, timeout=10).json()[0]
        r = requests.put(f"{server.url}/api/management/v2/devauth/devices/{found['id']}/auth/"
                         f"{found['auth_sets'][0]['id']}/status", json={"status": "accepted"}, headers=mgmt, timeout=10)
        assert r.status_code == 204, r.text
        assert device.auth().status_code == 200
        yield server, token, device
    finally:
        server.stop()


# (realm, method, path): paged lists (they echo the path in Link), by-id routes, the device API
LIVE_ROUTES = [
    ("management", "GET", b"/api/management/v1/deployments/deployments/devices/{}"),
    ("management", "GET", b"/api/management/v2/devauth/devices/{}"),
    ("management", "GET", b"/api/management/v1/inventory/groups/{}/devices"),
    ("management", "GET", b"/api/management/v2/deployments/deployments/releases/{}"),
    ("management", "POST", b"/api/management/v1/deployments/deployments/group/{}"),
    ("devices", "GET", b"/api/devices/v1/deployments/device/deployments/{}"),
    ("devices", "PUT", b"/api/devices/v1/deployments/device/deployments/{}/status"),
    ("none", "POST", b"/api/devices/v1/authentication/{}"),
    ("none", "GET", b"/{}"),
]
# raw bytes on the request line: what no test client sends
LIVE_SEGMENTS = [b"\xf0\xaa\xa4\x8b", b"%F0%AA%A4%8B", b"\xe2\x80\xae", b"\xc0\xaf", b"\xff\xfe", b"%00",
                 b"%0D%0A", b"A" * 5000, b"\x7f", b"%zz"]
LIVE_HEADERS = [
    b"X-MEN-RequestID: \xf0\xaa\xa4\x8b\r\n",
    b"X-MEN-RequestID: " + b"A" * 5000 + b"\r\n",
    b"Content-Type: \xe2\x80\xae/\xff\r\n",
    b"Accept: \xf0\x9f\x92\xa5\r\n",
    b"If-Match: \x01\x02\r\n",
    b"X-Folded: a\r\n  folded\r\n",
    b"X-Bare-CR: a\rb\r\n",
    b"X-Nul: a\x00b\r\n",
    b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    b"Bad Header Name: x\r\n",
    b"Transfer-Encoding: foo\r\n",  # gunicorn: 501 (now 400)
    b"Transfer-Encoding: chunked, gzip\r\n",
    b"SCRIPT_NAME: /elsewhere\r\n",  # gunicorn: 500 from a trusted proxy address (now 400)
    b"X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n",
    b"Expect: 200-nonsense\r\n",
    b"".join(b"X-H%d: v\r\n" % i for i in range(200)),
]


def test_hostile_bytes_through_gunicorn(live):
    server, token, device = live
    auth = {"management": f"Bearer {token}".encode(), "devices": f"Bearer {device.token}".encode(), "none": b""}
    failures, server_rejections = [], 0

    def go(realm_: str, method: str, target: bytes, headers: bytes = b"", host: bytes = b"127.0.0.1") -> None:
        nonlocal server_rejections
        req = method.encode() + b" " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n"
        if auth[realm_]:
            req += b"Authorization: " + auth[realm_] + b"\r\n"
        if method in BODY_METHODS and b"Content-Length" not in headers:
            req += b"Content-Type: application/json\r\nContent-Length: 2\r\n"
        req += headers + b"\r\n" + (b"{}" if method in BODY_METHODS else b"")
        status, hdrs, body = raw_request(server.port, req)
        label = f"{method} {target[:80]!r} {headers[:60]!r} host={host[:30]!r}"
        if b"malformed request" in body:  # refused by gunicorn's own parser, before the app
            server_rejections += 1
        problem = check(status, hdrs, body)
        if problem:
            failures.append(f"{label}: {problem}")

    for realm_, method, template in LIVE_ROUTES:
        for seg in LIVE_SEGMENTS:
            go(realm_, method, template.replace(b"{}", seg))
        target = template.replace(b"{}", b"x")
        for headers in LIVE_HEADERS:
            go(realm_, method, target, headers)
        go(realm_, method, target + b"?page=\xff&per_page=\xf0\xaa\xa4\x8b&%00=%00")
        go(realm_, method, target + b"?x=" + b"A" * 6000)
        go(realm_, method, target, host=b"\xe2\x80\xae\xff")
    assert not failures, "\n".join(failures[:40])
    assert 0 < server_rejections < 200  # both the server's parser and the app were reached


def test_reported_link_header_break_over_gunicorn(live):
    """The reproduction from the issue, on the wire: a non-Latin-1 path on a paged list."""
    server, token, _ = live
    status, headers, body = raw_request(server.port, b"GET /api/management/v1/deployments/deployments/devices/"
                                        b"%F0%AA%A4%8B HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                        b"Authorization: Bearer " + token.encode() + b"\r\n\r\n")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json") and body == b"[]\n"
    assert "/devices/%F0%AA%A4%8B?page=1&per_page=20>" in headers["Link"]
