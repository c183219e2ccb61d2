"""Uploads through a real gunicorn: chunked bodies (as mender-cli sends them), the real mender-cli,
the size limit on a stream, a dropped connection, and the sweeps of orphaned temp files (at start,
and while running)."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import time

import pytest
import requests

from common.app import create_app
from tests.artifacts.helpers import UPLOAD, read_bytes
from tests.helpers import GunicornServer

MAX_SIZE = 2_000_000
PASSWORD = "correct-horse-battery"
EMAIL = "cli@example.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("gunicorn-artifacts"))
    # upload threads enough for the sweep test's six uploads in flight from one address, whichever
    # worker accepts them
    env = {"DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE": str(MAX_SIZE), "DEPLOYMENTS_STORAGE_SWEEP_INTERVAL_SECONDS": "1",
           "MENDER_UPLOADS_PER_WORKER": "8", "MENDER_UPLOADS_PER_CLIENT": "8"}
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
    with app.app_context():
        app.extensions["mender"].ensure_migrated()
        app.extensions["mender"].services.useradm.create_user(EMAIL, PASSWORD)
    app.extensions["mender"].db.close()
    # two temp files not written to for an hour: one whose writer died, one whose writer (this
    # process, holding its lock as an upload does) is still alive
    temp = os.path.join(data_dir, "artifacts", ".tmp")
    os.makedirs(temp)
    for name in ("dead.part", "live.part"):
        with open(os.path.join(temp, name), "wb") as f:
            f.write(b"x" * 1000)
        os.utime(os.path.join(temp, name), (time.time() - 3600,) * 2)
    writer = os.open(os.path.join(temp, "live.part"), os.O_RDONLY)
    fcntl.flock(writer, fcntl.LOCK_EX)
    srv = GunicornServer(data_dir, env=env, workers=2)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        os.close(writer)


@pytest.fixture(scope="module")
def token(server):
    r = requests.post(server.url + "/api/management/v1/useradm/auth/login", auth=(EMAIL, PASSWORD), timeout=10)
    assert r.status_code == 200
    return r.text


def _list(server, token):
    r = requests.get(server.url + UPLOAD, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200
    return r.json()


def _multipart_chunks(data: bytes, boundary: str = "BOUNDARYxyz", piece: int = 4096):
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nchunked\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"a.mender\"\r\n"
           f"Content-Type: application/octet-stream\r\n\r\n").encode()
    for i in range(0, len(data), piece):
        yield data[i:i + piece]
    yield f"\r\n--{boundary}--\r\n".encode()


def test_startup_sweep_removed_only_dead_temp_files(server):
    temp = os.path.join(server.data_dir, "artifacts", ".tmp")
    assert sorted(os.listdir(temp)) == ["live.part"]
    os.unlink(os.path.join(temp, "live.part"))


def test_chunked_upload(server, token, ma):
    data = read_bytes(ma.rootfs("chunked", size=50_000))
    r = requests.post(server.url + UPLOAD, data=_multipart_chunks(data), timeout=30,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "multipart/form-data; boundary=BOUNDARYxyz"})
    assert r.status_code == 201, r.text
    a = requests.get(server.url + r.headers["Location"], headers={"Authorization": f"Bearer {token}"},
                     timeout=10).json()
    assert a["name"] == "chunked" and a["size"] == len(data) and a["description"] == "chunked"


def test_chunked_upload_over_the_limit_is_413_and_leaves_nothing(server, token, ma):
    before = _list(server, token)
    # what the fixture left (this xdist worker's server may not have run the sweep test, which
    # removes live.part) is not this test's: it compares with what was there before
    temp = os.path.join(server.data_dir, "artifacts", ".tmp")
    files_before = sorted(os.listdir(temp))
    data = read_bytes(ma.rootfs("too-big", size=MAX_SIZE + 50_000, compression="none"))
    r = requests.post(server.url + UPLOAD, data=_multipart_chunks(data), timeout=30,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "multipart/form-data; boundary=BOUNDARYxyz"})
    assert r.status_code == 413 and r.json()["request_id"]
    assert _list(server, token) == before
    assert sorted(os.listdir(temp)) == files_before


def test_the_real_mender_cli_uploads_and_lists(server, ma, tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), HOME=str(tmp_path))
    cli = ["mender-cli", "--server", server.url]
    r = subprocess.run(cli + ["login", "--username", EMAIL, "--password", PASSWORD], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path = ma.single_file("from-cli", device_types=("dt-cli",))
    r = subprocess.run(cli + ["artifacts", "upload", "--no-progress", "--description", "via cli", path], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(cli + ["artifacts", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Name: from-cli" in r.stdout, r.stdout + r.stderr


def test_a_dropped_connection_leaves_nothing_behind(server, token, ma):
    before = _list(server, token)
    data = read_bytes(ma.rootfs("dropped", size=150_000, compression="none"))
    body = b"".join(_multipart_chunks(data))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: multipart/form-data; boundary=BOUNDARYxyz\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode())
        s.sendall(body[: len(body) // 2])
        time.sleep(0.2)  # let the worker start on it, then vanish mid-body
    temp = os.path.join(server.data_dir, "artifacts", ".tmp")
    deadline = time.monotonic() + 30
    while os.listdir(temp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.listdir(temp) == []
    assert _list(server, token) == before
    stored = [f for f in os.listdir(os.path.join(server.data_dir, "artifacts")) if f != ".tmp"]
    assert len(stored) == len(before)
    log = server.log()
    assert "Traceback" not in log and "internal error" not in log


def _workers(server) -> list[int]:
    with open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children") as f:
        return [int(pid) for pid in f.read().split()]


def _start_upload(server, token, data: bytes) -> tuple[socket.socket, bytes]:
    """An upload that sends half its body and then waits (its temp file exists and is locked);
    the socket and the rest of the body."""
    body = b"".join(_multipart_chunks(data))
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    s.sendall(f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
              f"Content-Type: multipart/form-data; boundary=BOUNDARYxyz\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 2])
    return s, body[len(body) // 2:]


def _wait(predicate, what: str, timeout: float = 60.0, poke=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poke:
            poke()
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_uploads_leave_no_temp_bytes_after_the_sweep_interval(server, token, ma):
    """#14: five uploads whose worker is killed leave temp files; the running server's periodic
    sweep (DEPLOYMENTS_STORAGE_SWEEP_INTERVAL_SECONDS=1 here) removes them, and never the temp
    file of an upload in progress, however long it has not been written to."""
    temp = os.path.join(server.data_dir, "artifacts", ".tmp")
    parts = lambda: sorted(f for f in os.listdir(temp) if f.endswith(".part"))  # noqa: E731
    before = _list(server, token)
    # half the body must pass the server's first 256 KiB read of the request for the upload to begin
    data = read_bytes(ma.rootfs("killed", size=1_200_000, compression="none"))
    earlier = set(parts())
    sockets = [_start_upload(server, token, data) for _ in range(5)]
    orphans = _wait(lambda: [f for f in parts() if f not in earlier] if len(set(parts()) - earlier) == 5 else None,
                    "five uploads in progress")
    # each holds what it received so far
    _wait(lambda: all(os.path.getsize(os.path.join(temp, f)) > 0 for f in orphans), "bytes in the temp files")
    old_workers = _workers(server)
    for pid in old_workers:
        os.kill(pid, signal.SIGKILL)
    for s, _ in sockets:
        s.close()
    _wait(lambda: len(set(_workers(server)) - set(old_workers)) == 2, "new workers")
    assert set(orphans) <= set(parts()) and sum(os.path.getsize(os.path.join(temp, f)) for f in orphans) > 0

    live, rest = _start_upload(server, token, data)
    [live_part] = _wait(lambda: [f for f in parts() if f not in orphans and f not in earlier] or None,
                        "the live upload's temp file")
    ancient = time.time() - 3600  # old enough for any age bound: only the lock tells them apart
    for f in parts():
        os.utime(os.path.join(temp, f), (ancient, ancient))

    def poke():  # any request starts a worker's sweeper (threads start in the process that serves)
        requests.get(server.url + "/api/devices/v1/nothing-here", timeout=10)

    _wait(lambda: not set(orphans) & set(parts()), "the sweep of the five orphans", poke=poke)
    assert live_part in parts(), "the sweep removed the temp file of an upload in progress"
    live.sendall(rest)
    response = live.recv(65536).decode(errors="replace")
    live.close()
    assert response.startswith("HTTP/1.1 201"), response
    assert len(_list(server, token)) == len(before) + 1
    assert live_part not in parts()
    assert "Traceback" not in server.log()


def test_every_file_under_the_data_dir_is_private(server, token, ma):
    """After real traffic (logins, an upload through the temp directory, its download link): every
    file under the data dir is 0600 and every directory 0700, the control socket included."""
    import stat
    data = read_bytes(ma.rootfs("modes", size=20_000))
    r = requests.post(server.url + UPLOAD, data=_multipart_chunks(data), timeout=30,
                      headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "multipart/form-data; boundary=BOUNDARYxyz"})
    assert r.status_code == 201, r.text
    link = requests.get(server.url + r.headers["Location"] + "/download", timeout=10,
                        headers={"Authorization": f"Bearer {token}"}).json()["uri"]
    assert requests.get(link, timeout=10).content == data
    seen = {"dirs": 0, "files": 0, "socket": 0}
    for root, dirs, files in os.walk(server.data_dir):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        seen["dirs"] += 1
        for name in files:
            st = os.stat(os.path.join(root, name))
            assert stat.S_IMODE(st.st_mode) & 0o077 == 0, (os.path.join(root, name), oct(st.st_mode))
            seen["socket" if stat.S_ISSOCK(st.st_mode) else "files"] += 1
    assert os.path.exists(os.path.join(server.data_dir, "run", "gunicorn.ctl")) and seen["socket"] == 1
    assert seen["files"] >= 5  # database, WAL, lock, keys, the artifact
