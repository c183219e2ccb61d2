"""The end-to-end stack: a real gunicorn over HTTPS on 127.0.0.1 with a fresh data dir,
an operator created with the server's CLI, and helpers for the real Mender clients."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import Management, MenderCli, create_user, make_tls_cert
from tests.helpers import GunicornServer

EMAIL = "admin@example.com"
PASSWORD = "e2e-correct-horse"


def _require(binary: str) -> None:
    if shutil.which(binary) is None:
        raise RuntimeError(f"{binary} is missing: scripts/test.sh installs the Debian packages")


@dataclass
class Stack:
    server: GunicornServer
    cert: Path
    mgmt: Management
    cli: MenderCli
    url: str
    data_dir: str


def _require_namespaces() -> None:
    """The client runs in a private mount namespace: root, and a `/` that is a mount point."""
    import os
    if os.geteuid() != 0:
        raise RuntimeError("the end-to-end tests need root (the client runs in a private mount namespace)")
    if not os.path.ismount("/"):
        raise RuntimeError("/ is not a mount point (a plain chroot?): bind-mount the root onto itself first")


def start_stack(base: Path, env: dict | None = None) -> Stack:
    for binary in ("mender", "mender-artifact", "mender-cli", "unshare"):
        _require(binary)
    _require_namespaces()
    base.mkdir(parents=True, exist_ok=True)
    cert, key = make_tls_cert(base)
    data_dir = str(base / "data")
    create_user(data_dir, EMAIL, PASSWORD, env)
    server = GunicornServer(data_dir, env=env, workers=2, certfile=str(cert), keyfile=str(key)).start()
    url = f"https://localhost:{server.port}"
    try:
        mgmt = Management(url, cert, EMAIL, PASSWORD)
        cli = MenderCli(url, cert, base / "cli-home")
        login = cli("login", "--username", EMAIL, "--password", PASSWORD)
        assert login.returncode == 0, login.stdout + login.stderr
    except BaseException:
        server.stop()
        raise
    return Stack(server, cert, mgmt, cli, url, data_dir)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = start_stack(tmp_path_factory.mktemp("e2e"))
    yield s
    s.server.stop()
