"""Drive the real Mender clients from Debian against a real server: the device daemon in a
private mount namespace (its identity, inventory and artifact_info paths are hard-wired),
mender-artifact and mender-cli. Every process is stopped by PID, even when a test fails."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.helpers import ROOT, stop_process

MENDER = "/usr/bin/mender"
MENDER_ARTIFACT = "/usr/bin/mender-artifact"
MENDER_CLI = "/usr/bin/mender-cli"
POLL = 2  # seconds: the client's update, inventory and retry intervals in the tests


def run(cmd: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed EC P-256 certificate for localhost and 127.0.0.1 (the client checks the host)."""
    cert, key = directory / "server.crt", directory / "server.key"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)]).check_returncode()
    return cert, key


def create_user(data_dir: str, email: str, password: str, env: dict | None = None) -> None:
    """Create an operator with the server's CLI, as an administrator would."""
    full_env = {**os.environ, "MENDER_DATA_DIR": data_dir, **(env or {})}
    r = run([sys.executable, "-m", "flask", "--app", "wsgi", "useradm", "create-user", "--email", email,
             "--password", password], cwd=ROOT, env=full_env)
    assert r.returncode == 0, r.stdout + r.stderr


def create_org(data_dir: str, name: str, email: str, password: str, env: dict | None = None) -> tuple[str, str]:
    """Create an organization and its first user with the server's CLI; (its id, its tenant token)."""
    full_env = {**os.environ, "MENDER_DATA_DIR": data_dir, **(env or {})}
    r = run([sys.executable, "-m", "flask", "--app", "wsgi", "tenantadm", "create-org", "--name", name,
             "--admin-email", email], cwd=ROOT, env=full_env, input=password + "\n")
    assert r.returncode == 0, r.stdout + r.stderr
    fields = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
    return fields["id"], fields["tenant_token"]


class Management:
    """The operator's side, over HTTPS with the server's certificate."""

    def __init__(self, url: str, cert: Path, email: str, password: str):
        self.url, self.cert = url, str(cert)
        self.session = requests.Session()
        self.session.verify = self.cert
        r = self.session.post(f"{url}/api/management/v1/useradm/auth/login", auth=(email, password), timeout=10,
                              verify=self.cert)
        assert r.status_code == 200, r.text
        self.session.headers["Authorization"] = f"Bearer {r.text}"

    def get(self, path, **kw):
        return self.session.get(self.url + path, verify=self.cert, timeout=30, **kw)

    def post(self, path, **kw):
        return self.session.post(self.url + path, verify=self.cert, timeout=60, **kw)

    def put(self, path, **kw):
        return self.session.put(self.url + path, verify=self.cert, timeout=30, **kw)

    def patch(self, path, **kw):
        return self.session.patch(self.url + path, verify=self.cert, timeout=30, **kw)

    def device_by_identity(self, key: str, value: str) -> dict | None:
        r = self.get("/api/management/v2/devauth/devices?per_page=500")
        assert r.status_code == 200, r.text
        return next((d for d in r.json() if d["identity_data"].get(key) == value), None)

    def accept(self, device: dict) -> None:
        auth_set = device["auth_sets"][-1]
        r = self.put(f"/api/management/v2/devauth/devices/{device['id']}/auth/{auth_set['id']}/status",
                     json={"status": "accepted"})
        assert r.status_code == 204, r.text

    def deploy(self, name: str, artifact_name: str, devices: list[str]) -> str:
        r = self.post("/api/management/v1/deployments/deployments",
                      json={"name": name, "artifact_name": artifact_name, "devices": devices})
        assert r.status_code == 201, r.text
        return r.headers["Location"].rsplit("/", 1)[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3, on_timeout=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = on_timeout() if on_timeout else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail}")


class MenderDevice:
    """One real `mender daemon` with a private work dir, identity and config."""

    def __init__(self, workdir: Path, server_url: str, cert: Path, *, device_type: str = "e2e-device",
                 artifact_name: str = "e2e-factory", auth_key_pem: str | None = None,
                 verify_key: Path | None = None, tenant_token: str = ""):
        self.dir = workdir
        self.sn = "e2e-" + secrets.token_hex(6)
        for sub in ("etc", "data", "identity", "inventory"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        conf = {"ServerURL": server_url, "ServerCertificate": str(cert), "TenantToken": tenant_token,
                "UpdatePollIntervalSeconds": POLL, "InventoryPollIntervalSeconds": POLL,
                "RetryPollIntervalSeconds": POLL, "DeviceTypeFile": str(workdir / "data" / "device_type"),
                "DBus": {"Enabled": False}}
        if auth_key_pem:
            key_path = workdir / "etc" / "device-key.pem"
            key_path.write_text(auth_key_pem)
            os.chmod(key_path, 0o600)
            conf["Security"] = {"AuthPrivateKey": str(key_path)}
        if verify_key:
            conf["ArtifactVerifyKey"] = str(verify_key)
        (workdir / "etc" / "mender.conf").write_text(json.dumps(conf, indent=1))
        (workdir / "etc" / "artifact_info").write_text(f"artifact_name={artifact_name}\n")
        (workdir / "data" / "device_type").write_text(f"device_type={device_type}\n")
        self._script(workdir / "identity" / "mender-device-identity",
                     f"echo mac=02:00:{secrets.token_hex(1)}:{secrets.token_hex(1)}:00:01\necho sn={self.sn}\n")
        self._script(workdir / "inventory" / "mender-inventory-e2e",
                     "echo os=e2e-harness\necho network_interfaces=lo\necho network_interfaces=eth-e2e\n")
        self.log_path = workdir / "mender.log"
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def _script(path: Path, body: str) -> None:
        path.write_text("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)

    def _wrapped(self, args: str) -> list[str]:
        w = self.dir
        inner = (f"mount --bind {shlex.quote(str(w / 'etc'))} /etc/mender && "
                 f"mount --bind {shlex.quote(str(w / 'identity'))} /usr/share/mender/identity && "
                 f"mount --bind {shlex.quote(str(w / 'inventory'))} /usr/share/mender/inventory && "
                 f"exec {MENDER} --no-syslog -l debug -c {shlex.quote(str(w / 'etc' / 'mender.conf'))} "
                 f"-b {shlex.quote(str(w / 'data' / 'mender.conf'))} -d {shlex.quote(str(w / 'data'))} {args}")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]

    def start(self) -> "MenderDevice":
        os.makedirs("/etc/mender", exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._wrapped("daemon"), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, grace=10)
        self._log.close()
        self.proc = None

    def check_update_now(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGUSR1)

    def show_artifact(self) -> str:
        r = run(self._wrapped("show-artifact"))
        return r.stdout.strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def single_file_artifact(workdir: Path, name: str, device_type: str, dest_dir: str, payload: bytes,
                         filename: str = "app.conf", extra: list[str] | None = None) -> Path:
    """`mender-artifact write module-image -T single-file`, as an operator builds one."""
    src = workdir / f"src-{name}"
    src.mkdir(parents=True, exist_ok=True)
    (src / "dest_dir").write_text(dest_dir + "\n")
    (src / "filename").write_text(filename + "\n")
    (src / "permissions").write_text("644\n")
    (src / filename).write_bytes(payload)
    out = workdir / f"{name}.mender"
    cmd = [MENDER_ARTIFACT, "write", "module-image", "-T", "single-file", "-t", device_type, "-n", name,
           "-o", str(out), "-f", str(src / "dest_dir"), "-f", str(src / "filename"),
           "-f", str(src / "permissions"), "-f", str(src / filename), *(extra or [])]
    r = run(cmd)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def directory_artifact(workdir: Path, name: str, device_type: str, dest_dir: str, files: dict[str, bytes]) -> Path:
    """`mender-artifact write module-image -T directory`: the module unpacks update.tar into dest_dir."""
    tree, staging = workdir / f"tree-{name}", workdir / f"staging-{name}"
    tree.mkdir(parents=True, exist_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (tree / rel).write_bytes(data)
    run(["tar", "-cf", str(staging / "update.tar"), "-C", str(tree), "."]).check_returncode()
    (staging / "dest_dir").write_text(dest_dir + "\n")
    out = workdir / f"{name}.mender"
    r = run([MENDER_ARTIFACT, "write", "module-image", "-T", "directory", "-t", device_type, "-n", name,
             "-o", str(out), "-f", str(staging / "update.tar"), "-f", str(staging / "dest_dir")])
    assert r.returncode == 0, r.stdout + r.stderr
    return out


class MenderCli:
    """mender-cli 1.9 with a private token cache, trusting the server's certificate."""

    def __init__(self, server_url: str, cert: Path, home: Path):
        self.server = server_url
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "SSL_CERT_FILE": str(cert), "XDG_CACHE_HOME": str(home / "cache"),
                    "HOME": str(home)}

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run([MENDER_CLI, "--server", self.server, *args], timeout=timeout, env=self.env)
