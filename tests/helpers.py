"""Test helpers: backend configuration, a real gunicorn process, small utilities."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mongo_test_url(url: str, db_name: str) -> str:
    """TEST_MONGO_URL with its database replaced by `db_name`, options kept
    (`mongodb://a,b,c/?replicaSet=rs0` → `mongodb://a,b,c/mender_test_x?replicaSet=rs0`)."""
    from urllib.parse import urlsplit, urlunsplit
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db_name, parts.query, parts.fragment))


def backend_config(backend: str, data_dir: str) -> dict:
    """Config for a fresh database on the named backend."""
    cfg = {"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"}
    if backend == "sqlite":
        cfg["MENDER_DB_URL"] = "sqlite:///" + os.path.join(data_dir, "mender.db")
    elif backend == "mongomock":
        import mongomock
        cfg["MENDER_DB_URL"] = "mongodb://mongomock.invalid/mender_test"
        cfg["_MONGO_CLIENT_FACTORY"] = lambda url, **kw: mongomock.MongoClient(url, tz_aware=True)
    elif backend == "mongo":
        cfg["MENDER_DB_URL"] = mongo_test_url(os.environ["TEST_MONGO_URL"], f"mender_test_{uuid.uuid4().hex[:12]}")
        cfg["_DROP_DB"] = True
    else:
        raise ValueError(backend)
    return cfg


def traced_statements(conn, action) -> list[str]:
    """The statements `action` runs on this SQLite connection, as SQLite's trace reports them."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return seen


def once_each(traced: list[str]) -> list[str]:
    """A trace's statements once each: SQLite's trace repeats a statement as it enters each program
    of a trigger it fires (those repeats are one statement; the trigger's writes run inside it)."""
    return [s for i, s in enumerate(traced) if i == 0 or s != traced[i - 1]]


def traced_writes(conn, action) -> list[str]:
    """The statements `action` runs on this SQLite connection that are not plain reads (SELECT,
    PRAGMA, comments), once each, their whitespace collapsed."""
    return [" ".join(s.split()) for s in once_each(traced_statements(conn, action))
            if not s.startswith(("SELECT", "--", "PRAGMA"))]


def stop_process(proc: subprocess.Popen, *, grace: float, group: bool = False) -> None:
    """Stop a child started in a session of its own (`start_new_session=True`): SIGTERM to it, or
    to its whole process group when `group`; SIGKILL to the group if it is still running after
    `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        (os.killpg if group else os.kill)(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GunicornServer:
    """A real gunicorn as scripts/serve.sh starts it, on 127.0.0.1: the public listener at `url`,
    the internal one (`/api/internal/…`, `/metrics`) at `internal_url`; stopped by PID, even when
    a test fails. `app` names another entry point (e.g. tests.ws_app:app, with a test websocket)."""

    def __init__(self, data_dir: str, env: dict | None = None, workers: int = 2,
                 extra_args: list[str] | None = None, certfile: str | None = None, keyfile: str | None = None,
                 app: str | None = None):
        self.port = free_port()
        self.internal_port = free_port()
        self.data_dir = data_dir
        self.scheme = "https" if certfile else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.internal_url = f"{self.scheme}://127.0.0.1:{self.internal_port}"
        os.makedirs(data_dir, exist_ok=True)
        self.log_path = os.path.join(data_dir, "gunicorn.log")
        self.env = dict(os.environ)
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.env.update({"MENDER_DATA_DIR": data_dir, "WEB_CONCURRENCY": str(workers),
                         "MENDER_LOG_LEVEL": "info", "MENDER_INTERNAL_BIND": f"127.0.0.1:{self.internal_port}"})
        self.env.update(env or {})
        self.args = [sys.executable, "-m", "gunicorn", "-c", os.path.join(ROOT, "gunicorn.conf.py"),
                     "--bind", f"127.0.0.1:{self.port}", *(extra_args or [])]
        if certfile:
            self.args += ["--certfile", certfile, "--keyfile", keyfile]
        if app:
            self.args.append(app)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> "GunicornServer":
        # a bound for a hang, not a measurement: under a loaded machine (the whole suite beside
        # benchmarks) the master's startup (create_app, migrations) has taken over 30 s
        self._log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        probe = self.internal_url if self.env.get("MENDER_INTERNAL_BIND") else self.url
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = requests.get(probe + "/api/internal/v1/useradm/alive", timeout=1, verify=False)
                if r.status_code == 204 or (probe == self.url and r.status_code == 404):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s:\n{self.log()}")

    def worker_pids(self) -> list[int]:
        """The workers' process ids (children of the master)."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return sorted(int(x) for x in f.read().split())
        except OSError:
            return []

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, grace=15, group=True)
        self._log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- actors
import base64
import contextlib
import json as _json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa


def generate_device_key(kind: str = "ed25519"):
    """A device private key: 'rsa' (3072, as the real client), 'rsa2048', 'ec256', 'ec384' or 'ed25519'."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if kind == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def sign_body(key, body: bytes) -> str:
    """X-MEN-Signature for a body, as the Mender client computes it."""
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(body, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        sig = key.sign(body, ec.ECDSA(hashes.SHA256()))
    else:
        sig = key.sign(body)
    return base64.b64encode(sig).decode()


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


class Device:
    """A simulated device with its own key pair, speaking the device API through a Flask test client.

    `auth()` sends the auth request exactly as the Go client encodes it (keys in the order
    id_data, tenant_token, pubkey; trailing newline) and keeps the token on success.
    """

    AUTH_PATH = "/api/devices/v1/authentication/auth_requests"

    def __init__(self, client, identity: dict | None = None, key_kind: str = "ed25519", key=None,
                 tenant_token: str = "", device_type: str = "test-device", artifact_name: str = "factory-image"):
        self.client = client
        self.identity = identity or {"mac": "02:00:" + ":".join(f"{b:02x}" for b in os.urandom(4)),
                                     "sn": uuid.uuid4().hex[:12]}
        self.key = key or generate_device_key(key_kind)
        self.tenant_token = tenant_token
        self.device_type = device_type
        self.artifact_name = artifact_name
        self.token: str | None = None
        self.id: str | None = None

    @property
    def pubkey(self) -> str:
        return public_pem(self.key)

    def auth_body(self) -> bytes:
        id_data = _json.dumps(self.identity, sort_keys=True, separators=(",", ":"))
        return (_json.dumps({"id_data": id_data, "tenant_token": self.tenant_token, "pubkey": self.pubkey},
                            separators=(",", ":")) + "\n").encode()

    def auth(self):
        """POST the signed auth request; returns the response (token kept when 200)."""
        body = self.auth_body()
        r = self.client.post(self.AUTH_PATH, data=body, content_type="application/json",
                             headers={"X-MEN-Signature": sign_body(self.key, body),
                                      "Authorization": f"Bearer {self.tenant_token}"})
        if r.status_code == 200:
            self.token = r.get_data(as_text=True)
            claims = _json.loads(base64.urlsafe_b64decode(self.token.split(".")[1] + "=="))
            self.id = claims["sub"]
        return r

    @property
    def headers(self) -> dict:
        assert self.token, "device has no token: call auth() after it is accepted"
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)


_PASSWORD_HASHES: dict[str, str] = {}


@contextlib.contextmanager
def _password_hashed_once():
    """useradm's argon2id hash of an operator's password (~70 ms of CPU, most of a test's own
    setup) made once per test process for each password and reused: a real hash of that password,
    which the login verifies as always, only not salted anew for each test's operator."""
    from useradm import passwords
    real = passwords.hash_password

    def hash_once(password: str) -> str:
        if password not in _PASSWORD_HASHES:
            _PASSWORD_HASHES[password] = real(password)
        return _PASSWORD_HASHES[password]

    passwords.hash_password = hash_once
    try:
        yield
    finally:
        passwords.hash_password = real


class Operator:
    """A logged-in operator (user token), speaking the management API through a Flask test client."""

    LOGIN_PATH = "/api/management/v1/useradm/auth/login"

    def __init__(self, client, email: str, password: str):
        self.client = client
        self.email = email
        self.password = password
        self.token: str | None = None

    @classmethod
    def create(cls, app, client=None, email: str | None = None, password: str = "correct-horse-battery",
               tenant: str = "", roles: list[str] | None = None) -> "Operator":
        """Create a user (with `roles`; None: an administrator) through useradm's service layer
        and log in over HTTP."""
        email = email or f"op-{uuid.uuid4().hex[:8]}@example.com"
        with app.app_context(), _password_hashed_once():
            services = app.extensions["mender"].services
            if tenant and not services.tenantadm.exists(tenant):  # an organization with this very id
                services.tenantadm.create_tenant(tenant, tenant_id=tenant)
            services.useradm.create_user(email, password, tenant=tenant, roles=roles)
        op = cls(client or app.test_client(), email, password)
        op.login()
        return op

    def login(self):
        basic = base64.b64encode(f"{self.email}:{self.password}".encode()).decode()
        r = self.client.post(self.LOGIN_PATH, headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 200, r.data
        self.token = r.get_data(as_text=True)
        return r

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # devauth shortcuts used by every service's tests
    def find_device(self, device: Device) -> dict:
        """The devauth record of a simulated device (by its identity)."""
        r = self.get("/api/management/v2/devauth/devices?per_page=500")
        assert r.status_code == 200, r.data
        for d in r.get_json():
            if d["identity_data"] == device.identity:
                return d
        raise AssertionError(f"device {device.identity} not found")

    def accept(self, device: Device) -> str:
        """Accept the device's pending auth set, authenticate it, and return its id."""
        if device.token is None and device.auth().status_code == 200:
            return device.id
        record = self.find_device(device)
        auth_set = next(a for a in record["auth_sets"] if a["pubkey"].strip() == device.pubkey.strip())
        r = self.put(f"/api/management/v2/devauth/devices/{record['id']}/auth/{auth_set['id']}/status",
                     json={"status": "accepted"})
        assert r.status_code == 204, r.data
        r = device.auth()
        assert r.status_code == 200, r.data
        return device.id


def accepted_device(app, operator: Operator, client=None, **kwargs) -> Device:
    """A device that has authenticated, been accepted by the operator, and holds a token."""
    device = Device(client or operator.client, **kwargs)
    r = device.auth()
    assert r.status_code == 401, r.data
    operator.accept(device)
    return device
