"""Hostile inputs for the route fuzzer (tests/common/test_fuzz_routes.py) and the world it runs in.

Every value is in its wire form: path segments and query strings percent-encoded or raw bytes as
a client puts them on the request line, header values as the str a WSGI server hands the app
(the bytes on the wire decoded as Latin-1). Seeded: a failure names the seed that reproduces it.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from tests.helpers import Device, Operator, accepted_device

# percent-encoded path segments
HOSTILE_SEGMENTS = [
    "%F0%AA%A4%8B",                 # outside Latin-1 (and the BMP): the Link header once echoed it raw
    "%E2%80%AE", "x%E2%80%8Fy",     # right-to-left override, right-to-left mark
    "%00", "a%00b",                 # NUL
    "%0D%0AX-Injected:%201", "%0A",  # CR/LF: header injection
    "A" * 5000,                     # a 5,000-character segment
    "%C0%AF", "%E0%80%AF",          # overlong UTF-8 for '/'
    "%ED%A0%80", "%FF%FE%FD",       # an encoded surrogate; bytes that are never UTF-8
    "%25", "%zz", "%%41",           # percent-encoded garbage
    "..", "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%7B%22%24gt%22%3A%22%22%7D", "%24where", "%5B%5D",  # {"$gt":""}, $where, []
    "%20", "%09", "%F0%9F%92%A5", "%C3%A9", "-1", "0", "9" * 40, "null",
]

# query strings (bytes, as on the request line)
HOSTILE_QUERIES = [
    b"page=%F0%AA%A4%8B&per_page=%00",
    b"page=99999999999999999999999999&per_page=-1",
    b"page=1&per_page=500&sort=%0D%0A&status=%E2%80%AE",
    b"%zz=%zz&&&==&=&a",
    b"a=\xff\xfe&b=\xc0\xaf&c=%ED%A0%80",
    b"%00=1&%24where=1&a.b=1&inventory%2F%00=%00&sort=%00:asc",
    b"x=" + b"A" * 100_000,
    b"&".join(b"k%d=v" % i for i in range(2000)),
]

# names of query arguments the app's own OpenAPI document does not list but handlers read
COMMON_QUERY_NAMES = ["page", "per_page", "sort", "status", "name", "id", "tenant_id", "artifact_name",
                      "device_type", "group", "has_group", "created_before", "created_after", "search",
                      "tags", "description", "update_type", "x-men-expire", "x-men-signature"]

HOSTILE_VALUES = ["\xf0\xaa\xa4\x8b", "\xe2\x80\xae", "\x00", "A" * 5000, "\xc0\xaf", "\xff", "%zz",
                  '{"$gt":""}', "-1", "9" * 40, "", " ", "true", "1e999", "2026-13-45T99:99:99Z"]


def _latin1(text: str) -> str:
    """A str as a WSGI server hands over header bytes that were this text in UTF-8."""
    return text.encode("utf-8").decode("latin-1")


def _b64(obj) -> str:
    import base64
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# header sets; each replaces or adds headers on an otherwise authenticated request
HOSTILE_HEADERS: list[dict] = [
    {"Authorization": "Bearer " + _latin1("\U0002A90B\u202e")},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer " + "A" * 5000},
    {"Authorization": "Bearer \x00.\x00.\x00"},
    {"Authorization": "Bearer " + _b64({"alg": "none"}) + "." + _b64({"sub": "x", "exp": 9e18}) + "."},
    {"Authorization": "Bearer " + _b64({"alg": "EdDSA", "kid": "../../etc/passwd"}) + "." + _b64([]) + ".AA"},
    {"Authorization": "Basic " + _latin1("é:\u202e")},
    {"Authorization": "Basic %%%%"},
    {"X-MEN-RequestID": _latin1("\U0002A90B")},
    {"X-MEN-RequestID": "A" * 5000},
    {"X-MEN-RequestID": "\x00"},
    {"X-MEN-RequestID": "%0D%0ASet-Cookie: x=1"},
    {"Content-Type": "application/json; charset=" + _latin1("\u202e")},
    {"Content-Type": "multipart/form-data; boundary=" + "a" * 5000},
    {"Content-Type": "multipart/form-data"},
    {"Content-Type": "application/json\x00"},
    {"Content-Type": _latin1("\U0002A90B/\u202e")},
    {"Host": _latin1("évil\u202e")},
    {"Host": "\x00"},
    {"Host": "a" * 5000},
    {"Host": "[::1"},
    {"Host": "localhost:99999"},
    {"Accept": _latin1("\u202e/*")},
    {"Cookie": "JWT=\xff\x00; csrf=" + "a" * 5000},
    {"X-CSRF-Token": "\x00", "Cookie": "csrf=\x00"},
    {"If-Match": "\x00", "If-Unmodified-Since": "Mon, 99 Foo 99999 99:99:99 GMT"},
    {"Range": "bytes=99999999999999999999999-1"},
    {"X-MEN-Signature": _latin1("\u202e") + "=" * 3000},
    {"X-Forwarded-For": _latin1("\u202e"), "X-Forwarded-Proto": "\x00", "X-Forwarded-Host": "a" * 5000},
]

# bodies for methods that take one (content type, bytes)
HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b'\xff\xfe{"name": 1}'),
    ("application/json", b"[" * 100_000),
    ("application/json", b'"\\ud800"'),
]
_NUMBER_FIELDS = ["max_devices", "retries", "batch_size", "expires_in", "page", "per_page", "size", "start_ts",
                  "created_before", "created_after", "limit", "revision", "timestamp", "value", "count"]
_STRING_FIELDS = ["name", "email", "password", "group", "status", "artifact_name", "device_type", "description",
                  "notes", "scope", "attribute", "value", "type", "id", "tenant_id", "id_data", "pubkey",
                  "filter_id", "substate", "message", "level", "timestamp", "current_password", "expires_in"]


def hostile_json_bodies(rng: random.Random, n: int) -> list[tuple[str, bytes]]:
    """JSON objects and arrays whose usual field names hold hostile strings."""
    out = []
    for _ in range(n):
        value = rng.choice(["\x00", "\u202e", "\U0002A90B", "\ud800", "a\r\nb", "A" * 5000, "\u0000" * 10])
        obj = {k: value for k in _STRING_FIELDS}
        number = rng.choice([10**30, -10**30, -1, 2**63, 1.5e308, -0.0, 0.1])
        numbers = {**obj, **{k: number for k in _NUMBER_FIELDS}, "phases": [{"batch_size": number, "start_ts": number}]}
        body = json.dumps(rng.choice([obj, [obj], numbers, [numbers], [{"name": value, "value": value}], [value]]))
        out.append(("application/json", body.encode()))
    return out


def random_segments(rng: random.Random, n: int) -> list[str]:
    """Percent-encoded random byte strings."""
    return [quote(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 48))), safe="") for _ in range(n)]


@dataclass
class World:
    """A tenant with real records, so that the fuzzed requests reach the handlers."""

    app: object
    client: object
    operator: Operator
    device: Device            # authenticates the device API; never a target
    target: Device            # the device whose id fills `device_id` parameters
    values: dict = field(default_factory=dict)  # path parameter -> a real value

    def refresh_tokens(self) -> None:
        """Log in again / re-authenticate when a fuzzed request revoked the tokens (logout, token
        deletion): later requests must still reach the handlers."""
        if self.operator.get("/api/management/v1/useradm/users/me").status_code == 401:
            self.operator.login()
        probe = self.device.request("GET", "/api/devices/v1/deployments/device/deployments/next"
                                    "?artifact_name=a&device_type=test-device")
        if probe.status_code == 401:
            r = self.device.auth()
            if r.status_code != 200:  # decommissioned by a fuzzed request: enrol it again
                self.device = accepted_device(self.app, self.operator, self.client)


def build_world(app) -> World:
    """Operator, a second user, two accepted devices (inventory, group), an artifact, a
    deployment, a saved filter and a personal access token."""
    from tests.artifacts.tools import craft
    client = app.test_client()
    op = Operator.create(app, client)
    other = Operator.create(app, client)
    device = accepted_device(app, op, client)
    target = accepted_device(app, op, client)
    assert target.request("PATCH", "/api/devices/v1/inventory/device/attributes",
                          json=[{"name": "device_type", "value": "test-device"}]).status_code == 200
    assert op.put(f"/api/management/v1/inventory/devices/{target.id}/group",
                  json={"group": "fuzzgroup"}).status_code == 204
    data = craft(name="fuzz-release", device_types=("test-device",))
    r = op.post("/api/management/v1/deployments/artifacts", content_type="multipart/form-data",
                data={"size": str(len(data)), "artifact": (io.BytesIO(data), "a.mender")})
    assert r.status_code == 201, r.data
    artifact_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    r = op.post("/api/management/v1/deployments/deployments",
                json={"name": "fuzz", "artifact_name": "fuzz-release", "devices": [target.id]})
    assert r.status_code == 201, r.data
    deployment_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    r = op.post("/api/management/v2/inventory/filters",
                json={"name": "fuzzfilter", "terms": [{"scope": "inventory", "attribute": "device_type",
                                                       "type": "$eq", "value": "test-device"}]})
    assert r.status_code == 201, r.data
    filter_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    r = op.post("/api/management/v1/useradm/settings/tokens", json={"name": "fuzz", "expires_in": 3600})
    assert r.status_code == 200, r.data
    record = op.find_device(target)
    pats = op.get("/api/management/v1/useradm/settings/tokens").get_json()
    values = {
        "deployment_id": deployment_id, "device_id": target.id, "did": target.id, "id": target.id,
        "aid": record["auth_sets"][0]["id"], "artifact_id": artifact_id, "upload_id": str(uuid.uuid4()),
        "tenant_id": "default", "tid": "default", "name": "fuzzgroup", "release_name": "fuzz-release",
        "filter_id": filter_id, "scope": "inventory", "status": "accepted", "filename": "index.css",
        "useradm_users.UserById:id": _user_id(op, other.email),
        "useradm_settings.PersonalAccessTokenById:id": pats[0]["id"],
        "useradm_internal.TenantUserById:user_id": _user_id(op, other.email),
    }
    return World(app, client, op, device, target, values)


def _user_id(op: Operator, email: str) -> str:
    users = op.get("/api/management/v1/useradm/users").get_json()
    return next(u["id"] for u in users if u["email"] == email)
