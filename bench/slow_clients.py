"""Slow clients against the others: N connections send a request a byte per second (half trickle
their headers, half a 1000-byte body); meanwhile health checks (internal listener) and device polls
(public) run in a closed loop, and their latencies are reported.

    .venv/bin/python -m bench.slow_clients [--slow 8 32 128 --seconds 10 --worker-class asgi]

The server runs as scripts/serve.sh starts it (WEB_CONCURRENCY=2 here), pinned to CPU 0; the load
generator runs on CPU 1. Only 127.0.0.1 is targeted; the server is stopped by PID."""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time

import requests

from bench.fleet import SimDevice, provision
from bench.lib import Server, machine

NEXT = "/api/devices/v2/deployments/device/deployments/next"


class Trickle:
    def __init__(self, port: int, n: int):
        self.socks = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:
                s.sendall((f"POST {NEXT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           f"Content-Length: 1000\r\n\r\n").encode())
                self.socks.append((s, b"{" + b" " * 998 + b"}"))
            else:
                self.socks.append((s, f"GET /api/devices/v1/inventory HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * 900}\r\n\r\n".encode()))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        offset = 0
        while not self.stop.wait(1.0):
            for s, data in self.socks:
                if offset < len(data):
                    try:
                        s.send(data[offset:offset + 1])
                    except OSError:
                        pass
            offset += 1

    def close(self):
        self.stop.set()
        self.thread.join()
        for s, _ in self.socks:
            s.close()


def probe(fn, seconds: float, out: list, errors: list):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            ok = fn()
        except requests.RequestException:
            ok = False
        out.append(time.monotonic() - t0)
        if not ok:
            errors.append(1)


def pct(data, p):
    data = sorted(data)
    return data[min(len(data) - 1, int(p / 100 * len(data)))] * 1000 if data else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slow", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--worker-class", default="asgi")
    ap.add_argument("--threads", type=int, default=0, help="default: 8 (asgi), 4 (gthread)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    threads = args.threads or (8 if args.worker_class == "asgi" else 4)
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="bench-slow-")
    server = Server("wsgi:app", os.path.join(tmp, "server"), workers=args.workers, worker_class=args.worker_class,
                    threads=threads, cpus=[0] if os.cpu_count() >= 2 else None)
    rows = []
    with server:
        device = SimDevice(1)
        provision(server.url, os.path.join(tmp, "server"), [device])
        r = requests.post(server.url + "/api/devices/v1/authentication/auth_requests", data=device.body, timeout=30,
                          headers={"Content-Type": "application/json", "X-MEN-Signature": device.signature})
        assert r.status_code == 200, r.text
        token = r.text
        for n in args.slow:
            trickle = Trickle(server.port, n)
            time.sleep(1.0)
            health, polls, herr, perr = [], [], [], []
            hs, ps = requests.Session(), requests.Session()

            def h():
                return hs.get(server.internal_url + "/api/internal/v1/deployments/health", timeout=10).status_code == 204

            def p():
                return ps.post(server.url + NEXT, timeout=10, headers={"Authorization": f"Bearer {token}"},
                               json={"device_provides": {"device_type": "fleet-device",
                                                         "artifact_name": "factory-image"}}).status_code == 204
            threads_ = [threading.Thread(target=probe, args=(h, args.seconds, health, herr)),
                        threading.Thread(target=probe, args=(p, args.seconds, polls, perr))]
            for t in threads_:
                t.start()
            for t in threads_:
                t.join()
            trickle.close()
            rows.append((n, len(health), len(herr), pct(health, 50), pct(health, 99),
                         len(polls), len(perr), pct(polls, 50), pct(polls, 99)))
            time.sleep(1.0)
    print(f"machine: {machine()}; gunicorn {args.worker_class} × {args.workers} workers, {threads} threads; "
          f"{args.seconds}s per row")
    print("| slow connections | health: requests | failed/timed out (10 s) | p50 ms | p99 ms "
          "| poll: requests | failed | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| {} | {} | {} | {:.1f} | {:.1f} | {} | {} | {:.1f} | {:.1f} |".format(*row))


if __name__ == "__main__":
    main()
