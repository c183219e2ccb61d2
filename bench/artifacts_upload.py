"""Benchmark: upload a 1 GiB artifact through a real gunicorn on loopback.

Reports, in one run: the upload throughput, a plain copy (read + write + fsync) of the same
bytes on the same disk, and the gunicorn worker's peak RSS (VmHWM) before and after.

    .venv/bin/python bench/artifacts_upload.py [--size-mib 1024] [--workdir /tmp/bench]

Needs the `mender-artifact` tool (Debian package) to build the artifact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common.app import create_app  # noqa: E402
from tests.helpers import GunicornServer  # noqa: E402

UPLOAD = "/api/management/v1/deployments/artifacts"
EMAIL, PASSWORD = "bench@example.com", "correct-horse-battery"
CHUNK = 1024 * 1024


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def build_artifact(workdir: str, size_mib: int) -> str:
    image = os.path.join(workdir, "rootfs.img")
    with open(image, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(CHUNK))
    out = os.path.join(workdir, "bench.mender")
    subprocess.run(["mender-artifact", "write", "rootfs-image", "-t", "bench-device", "-n", "bench-1",
                    "--compression", "none", "-f", image, "-o", out], check=True, capture_output=True)
    os.unlink(image)
    return out


def plain_copy(src: str, dst: str) -> float:
    """Seconds to copy src to dst with fsync (what the server's filesystem store does at least)."""
    started = time.perf_counter()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while True:
            data = fin.read(CHUNK)
            if not data:
                break
            fout.write(data)
        fout.flush()
        os.fsync(fout.fileno())
    elapsed = time.perf_counter() - started
    os.unlink(dst)
    return elapsed


def chunks(path: str):
    with open(path, "rb") as f:
        yield (b'--B\r\nContent-Disposition: form-data; name="description"\r\n\r\nbench\r\n'
               b'--B\r\nContent-Disposition: form-data; name="artifact"; filename="bench.mender"\r\n\r\n')
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            yield data
        yield b"\r\n--B--\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--content-length", action="store_true",
                        help="send the body with a Content-Length instead of chunked (mender-cli's way)")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench-artifacts-")
    os.makedirs(workdir, exist_ok=True)
    data_dir = os.path.join(workdir, "data")
    try:
        artifact = build_artifact(workdir, args.size_mib)
        size = os.path.getsize(artifact)
        app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
        with app.app_context():
            app.extensions["mender"].ensure_migrated()
            app.extensions["mender"].services.useradm.create_user(EMAIL, PASSWORD)
        app.extensions["mender"].db.close()
        copy_s = plain_copy(artifact, os.path.join(workdir, "copy.bin"))
        server = GunicornServer(data_dir, workers=1, env={"MENDER_LOG_LEVEL": "warning"})
        server.start()
        try:
            token = requests.post(server.url + "/api/management/v1/useradm/auth/login", auth=(EMAIL, PASSWORD),
                                  timeout=10).text
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=B"}
            requests.get(server.url + UPLOAD, headers=headers, timeout=10)  # warm the worker
            [worker] = worker_pids(server.proc.pid)
            rss_before = vm_hwm_kib(worker)
            started = time.perf_counter()
            if args.content_length:
                body = os.path.join(workdir, "body.bin")
                with open(body, "wb") as f:
                    for piece in chunks(artifact):
                        f.write(piece)
                started = time.perf_counter()
                with open(body, "rb") as f:
                    r = requests.post(server.url + UPLOAD, data=f, headers=headers, timeout=3600)
                os.unlink(body)
            else:  # chunked, as mender-cli sends it
                r = requests.post(server.url + UPLOAD, data=chunks(artifact), headers=headers, timeout=3600)
            upload_s = time.perf_counter() - started
            assert r.status_code == 201, r.text
            rss_after = vm_hwm_kib(worker)
        finally:
            server.stop()
        mib = size / CHUNK
        result = {"artifact_mib": round(mib, 1), "transfer": "content-length" if args.content_length else "chunked",
                  "upload_seconds": round(upload_s, 2), "upload_mib_s": round(mib / upload_s, 1),
                  "plain_copy_seconds": round(copy_s, 2), "plain_copy_mib_s": round(mib / copy_s, 1),
                  "upload_vs_copy": round(copy_s / upload_s, 2),
                  "worker_peak_rss_mib_before": round(rss_before / 1024, 1),
                  "worker_peak_rss_mib_after": round(rss_after / 1024, 1),
                  "worker_peak_rss_growth_mib": round((rss_after - rss_before) / 1024, 1)}
        print(json.dumps(result, indent=2))
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
