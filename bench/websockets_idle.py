"""Idle websocket connections held by one server, and the memory each costs: N clients connect
to a test echo route (tests/ws_app.py) and stay idle; the workers' RSS is read before and after,
and health checks are timed while the connections are held.

    .venv/bin/python -m bench.websockets_idle [--connections 10000 --workers 2]

Only 127.0.0.1 is targeted; every connection is closed and the server stopped by PID."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time

import requests
import websockets

from bench.lib import machine

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.helpers import GunicornServer  # noqa: E402


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def hold(url: str, n: int, batch: int) -> list:
    conns = []
    for start in range(0, n, batch):
        conns += await asyncio.gather(*(websockets.connect(url, ping_interval=None, compression=None,
                                                           open_timeout=60, max_queue=1)
                                        for _ in range(start, min(n, start + batch))))
    return conns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        server = GunicornServer(os.path.join(tmp, "data"), workers=args.workers, app="tests.ws_app:app",
                                env={"MENDER_LOG_LEVEL": "warning"})
        with server:
            url = server.url.replace("http://", "ws://") + "/api/devices/v1/test/echo"
            # one connection per worker first, so the baseline includes the websocket code paths
            asyncio.run(_touch(url, args.workers * 4))
            time.sleep(1)
            before = rss_kib(server.worker_pids())

            async def run():
                t0 = time.monotonic()
                conns = await hold(url, args.connections, args.batch)
                opened = time.monotonic() - t0
                await asyncio.sleep(2)
                after = rss_kib(server.worker_pids())
                lat = []
                loop = asyncio.get_running_loop()
                for _ in range(50):
                    t = time.monotonic()
                    r = await loop.run_in_executor(None, lambda: requests.get(
                        server.internal_url + "/api/internal/v1/deployments/health", timeout=10))
                    assert r.status_code == 204
                    lat.append(time.monotonic() - t)
                await conns[0].send("still there?")
                echoed = await conns[0].recv()
                await conns[-1].send("last")
                echoed_last = await conns[-1].recv()
                for c in conns:
                    c.transport.close()
                return opened, after, sorted(lat), echoed == "still there?" and echoed_last == "last"

            opened, after, lat, ok = asyncio.run(run())
    n = args.connections
    print(f"machine: {machine()}; gunicorn asgi × {args.workers} workers")
    print("| idle websockets held | opened in | workers' RSS before | after | per connection "
          "| health p50 / p99 while held | echo on first and last |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {n} | {opened:.1f} s | {before / 1024:.0f} MiB | {after / 1024:.0f} MiB | "
          f"{(after - before) / n:.1f} KiB | {lat[len(lat) // 2] * 1000:.1f} / {lat[-1] * 1000:.1f} ms | "
          f"{'ok' if ok else 'FAILED'} |")


async def _touch(url: str, n: int) -> None:
    for _ in range(n):
        async with websockets.connect(url, ping_interval=None, compression=None) as ws:
            await ws.send("x")
            await ws.recv()


if __name__ == "__main__":
    main()
