"""One real S3 endpoint (Ceph radosgw, started by radosgw.sh beside this file) shared by every
test process.

One instance serves every test process of a machine (or of a root: the state lives under /tmp;
the monitor and the gateway take free ports, so another root's instance does not collide): a
lock file guards a small state file listing the processes using it; the first starts it, the last
one out stops it (by the script's pid files). Holders that died are pruned.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from contextlib import contextmanager

import requests

from tests.helpers import free_port

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "radosgw.sh")
STATE_DIR = f"/tmp/mender-tests-radosgw-{os.getuid()}"
LOCK = STATE_DIR + ".lock"
STATE = os.path.join(STATE_DIR, "state.json")
# TEST_S3_ENDPOINT (with TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY): run the S3 tests against that
# endpoint (any S3: AWS, MinIO, a Ceph cluster) instead of starting the local radosgw
EXTERNAL = os.environ.get("TEST_S3_ENDPOINT", "")
ACCESS_KEY = os.environ.get("TEST_S3_ACCESS_KEY", "CIACCESSKEY") if EXTERNAL else "CIACCESSKEY"
SECRET_KEY = os.environ.get("TEST_S3_SECRET_KEY", "CISECRETKEY") if EXTERNAL else "CISECRETKEY"


@contextmanager
def _locked():
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _read() -> dict:
    try:
        with open(STATE) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return {}


def _write(state: dict) -> None:
    os.makedirs(STATE_DIR, exist_ok=True)
    with open(STATE + ".tmp", "w") as f:
        json.dump(state, f)
    os.replace(STATE + ".tmp", STATE)


def _answers(endpoint: str) -> bool:
    try:
        return requests.get(endpoint, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def _run(action: str, ceph_dir: str, port: int | None = None) -> None:
    env = dict(os.environ, CEPH_DIR=ceph_dir, S3_ACCESS_KEY=ACCESS_KEY, S3_SECRET_KEY=SECRET_KEY)
    if port:
        env["RGW_PORT"] = str(port)
        env["MON_PORT"] = str(free_port())
    r = subprocess.run(["bash", SCRIPT, action], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"radosgw.sh {action} failed:\n{r.stdout}\n{r.stderr}")


def acquire() -> str:
    """Register this process as a user of the shared radosgw (starting it if needed); its endpoint
    (TEST_S3_ENDPOINT's, when set: nothing is started)."""
    if EXTERNAL:
        return EXTERNAL
    with _locked():
        state = _read()
        holders = [p for p in state.get("holders", []) if _alive(p) and p != os.getpid()]
        endpoint = state.get("endpoint")
        ceph_dir = os.path.join(STATE_DIR, "ceph")
        if not endpoint or not _answers(endpoint):
            if state.get("ceph_dir"):
                _run("stop", state["ceph_dir"])
                time.sleep(1)
            port = free_port()
            _run("start", ceph_dir, port)
            endpoint = f"http://127.0.0.1:{port}"
            holders = []
        _write({"endpoint": endpoint, "ceph_dir": ceph_dir, "holders": holders + [os.getpid()]})
        return endpoint


def release() -> None:
    """Unregister; the last live user stops the instance."""
    if EXTERNAL:
        return
    with _locked():
        state = _read()
        holders = [p for p in state.get("holders", []) if _alive(p) and p != os.getpid()]
        if not holders and state.get("ceph_dir"):
            _run("stop", state["ceph_dir"])
            _write({})
        else:
            state["holders"] = holders
            _write(state)
