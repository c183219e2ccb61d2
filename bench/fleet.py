"""Fleet simulator: N devices, each with its own key, doing what the Mender client does.

1. Enrolment: every device authenticates and sends its inventory, as on its first start,
   a bounded number at a time (measured: throughput, latency, errors).
2. The steady mix, measured for --duration seconds: each device polls for deployments every
   30 min, sends its inventory every 8 h and renews its token every week (Mender's defaults),
   divided by --compress, each timer at a random phase as in a fleet whose devices came up
   at different times. At a third of the run, a deployment to 10 % of the fleet: each chosen
   device downloads the artifact and reports downloading → installing → success on its next poll.

Reports sustained requests/s, latency per endpoint, errors, its own CPU and the server's, and,
in the same run, a bare Flask endpoint under the same gunicorn settings (the baseline) and the
server's closed-loop poll capacity.

The simulator shares the machine with the server, so it measures its own share: its CPU per
request, and its event loop's lag (a callback scheduled every 10 ms, how late it runs), per 5 s
window beside the latencies. A request sent, or an answer read, while the loop is that late
counts the loop's delay as the server's: a window's p99 within its lag p99 is not the server's.

    .venv/bin/python -m bench.fleet --devices 10000 --compress 100 --duration 60

Only 127.0.0.1 is targeted; every process started here is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import multiprocessing
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from bench.http1 import Pool, request_bytes
from bench.lib import ROOT, Server, closed_loop, machine
from common.config import default_threads, default_workers, load_config
from bench.seed_fleet import seeded_identity, seeded_key

POLL_S, INVENTORY_S, AUTH_S = 1800.0, 28800.0, 604800.0  # Mender client defaults
PER_DEVICE_RATE = 1 / POLL_S + 1 / INVENTORY_S + 1 / AUTH_S  # ≈ 5.92e-4 requests/s
EMAIL, PASSWORD = "bench@example.com", "bench-password-1"
AUTH_PATH = "/api/devices/v1/authentication/auth_requests"
NEXT_PATH = "/api/devices/v2/deployments/device/deployments/next"
INVENTORY_PATH = "/api/devices/v1/inventory/device/attributes"
JSON = ("Content-Type", "application/json")


class SimDevice:
    def __init__(self, i: int, seeded: bool = False):
        """Device i, with a fresh key, or (`seeded`) as bench/seed_fleet.py put it in the database."""
        self.i = i
        self.key = seeded_key(i) if seeded else ed25519.Ed25519PrivateKey.generate()
        self.identity = seeded_identity(i)
        pub = self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.pubkey = pub
        self.body = (json.dumps({"id_data": json.dumps(self.identity, sort_keys=True, separators=(",", ":")),
                                 "tenant_token": "", "pubkey": pub}, separators=(",", ":")) + "\n").encode()
        self.signature = base64.b64encode(self.key.sign(self.body)).decode()
        self.token = ""
        self.artifact = "factory-image"
        self._requests: dict[str, tuple[tuple, bytes]] = {}

    def request(self, kind: str, key: tuple, build) -> bytes:
        """The request of `kind` as bytes, built again only when `key` (its token, its artifact) changed."""
        got = self._requests.get(kind)
        if got is None or got[0] != key:
            got = self._requests[kind] = (key, build())
        return got[1]


class LoopLag:
    """How late the event loop runs a callback scheduled every `interval` seconds, bucketed per
    5 s window from `t0` (the Stats' clock). When the loop is idle the wait itself rounds up to
    the millisecond (epoll's resolution), so the floor is ~0-1 ms."""

    def __init__(self, t0: float, interval: float = 0.01):
        self.t0, self.interval = t0, interval
        self.lags: dict[int, list[float]] = defaultdict(list)
        self._handle = None

    def start(self) -> "LoopLag":
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)
        return self

    def _tick(self) -> None:
        now = self._loop.time()  # time.monotonic, the clock of the windows
        self.lags[int((now - self.t0) // 5)].append(max(0.0, now - self._due))
        self._due = now + self.interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        if self._handle:
            self._handle.cancel()

    def summary(self, values: list[float]) -> dict:
        return {"loop_lag_p50_ms": round(pct(values, 50), 1), "loop_lag_p99_ms": round(pct(values, 99), 1),
                "loop_lag_max_ms": round(max(values, default=0.0) * 1000, 1)}


class GcTime:
    """The garbage collector's pauses while installed (they hold the loop too): how many, their total and the longest."""

    def __init__(self):
        self.count, self.total, self.longest, self._t = 0, 0.0, 0.0, 0.0
        self.full = 0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            took = time.perf_counter() - self._t
            self.count, self.total, self.longest = self.count + 1, self.total + took, max(self.longest, took)
            self.full += info["generation"] == 2

    def start(self) -> "GcTime":
        gc.callbacks.append(self)
        return self

    def stop(self) -> None:
        if self in gc.callbacks:
            gc.callbacks.remove(self)

    def summary(self) -> dict:
        return {"client_gc_collections": self.count, "client_gc_ms": round(self.total * 1000, 1),
                "client_gc_longest_ms": round(self.longest * 1000, 1), "client_gc_full_collections": self.full}


class Stats:
    def __init__(self):
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.codes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.count = 0
        self.t0 = time.monotonic()
        self.timeline: dict[int, list[float]] = defaultdict(list)  # 5-second bucket of the answer -> latencies

    def add(self, endpoint: str, seconds: float, status: int, ok: bool) -> None:
        self.timeline[int((time.monotonic() - self.t0) // 5)].append(seconds)
        self.lat[endpoint].append(seconds)
        self.codes[endpoint][status] += 1
        self.count += 1
        if not ok:
            self.errors[endpoint] += 1


class Target:
    """The server the devices talk to: its address, and the pool of keep-alive connections they
    share (bench/http1.py; at most 512 open, as the aiohttp connector the simulator used)."""

    def __init__(self, url: str, pool: Pool):
        parts = urlsplit(url)
        self.url, self.host, self.port, self.pool = url, parts.netloc, parts.port, pool


async def call(target: Target, stats: Stats, endpoint: str, data: bytes, ok=(200, 204), port: int | None = None):
    """One request (its bytes whole), timed from the wait for a connection to the answer's last byte."""
    t0 = time.perf_counter()
    try:
        status, body = await target.pool.request(port or target.port, data)
    except Exception:
        status, body = -1, b""
    stats.add(endpoint, time.perf_counter() - t0, status, status in ok)
    return status, body


def _json(value) -> bytes:
    return json.dumps(value).encode()  # as aiohttp's json=: the default separators


def _bearer(d: SimDevice) -> tuple[str, str]:
    return ("Authorization", f"Bearer {d.token}")


def provision(url: str, data_dir: str, devices: list[SimDevice], env: dict | None = None,
              preauthorize: bool = True) -> str:
    """Create the operator (CLI; kept if it exists), preauthorize every device (bulk API; not
    when they were seeded accepted), return the user token."""
    import requests
    env = {**os.environ, "MENDER_DATA_DIR": data_dir, **(env or {})}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "useradm", "create-user", "--email", EMAIL,
                    "--password", PASSWORD], cwd=ROOT, env=env, check=preauthorize, capture_output=True)
    r = requests.post(f"{url}/api/management/v1/useradm/auth/login", auth=(EMAIL, PASSWORD), timeout=30)
    if r.status_code != 200:  # e.g. 429: the login limit counts failed logins from 127.0.0.1 in the database
        raise RuntimeError(f"the operator's login: {r.status_code} {r.text[:300]}")
    token = r.text
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if not preauthorize:
        return token
    for start in range(0, len(devices), 1000):  # the bulk API takes a file of up to 1 MiB
        rows = [{"identity_data": d.identity, "pubkey": d.pubkey} for d in devices[start:start + 1000]]
        r = requests.post(f"{url}/api/management/v2/devauth/preauthorizations", headers=headers, timeout=300,
                          data=json.dumps(rows))
        if r.status_code >= 300:
            raise RuntimeError(f"preauthorize: {r.status_code} {r.text[:500]}")
    return token


def make_artifact(tmp: str, name: str, device_type: str) -> bytes:
    src = os.path.join(tmp, "art")
    os.makedirs(src, exist_ok=True)
    for fname, data in (("dest_dir", "/tmp/fleet\n"), ("filename", "app.conf\n"), ("permissions", "644\n"),
                        ("app.conf", "x" * 8192)):
        with open(os.path.join(src, fname), "w") as f:
            f.write(data)
    out = os.path.join(src, "a.mender")
    subprocess.run(["mender-artifact", "write", "module-image", "-T", "single-file", "-t", device_type, "-n", name,
                    "-o", out] + sum((["-f", os.path.join(src, f)] for f in ("dest_dir", "filename", "permissions",
                                                                              "app.conf")), []),
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


async def authenticate(d: SimDevice, target: Target, stats: Stats) -> bool:
    data = d.request("auth", (), lambda: request_bytes(
        "POST", target.host, AUTH_PATH, (JSON, ("X-MEN-Signature", d.signature)), d.body))
    status, body = await call(target, stats, "auth", data, ok=(200,))
    if status == 200:
        d.token = body.decode()
    return status == 200


def inventory_of(d: SimDevice) -> list[dict]:
    return [{"name": "device_type", "value": "fleet-device"}, {"name": "artifact_name", "value": d.artifact},
            {"name": "mender_client_version", "value": "3.4.0"}, {"name": "os", "value": "fleet-sim"}]


async def put_inventory(d: SimDevice, target: Target, stats: Stats) -> int:
    data = d.request("inventory", (d.token, d.artifact), lambda: request_bytes(
        "PUT", target.host, INVENTORY_PATH, (_bearer(d), JSON), _json(inventory_of(d))))
    status, _ = await call(target, stats, "inventory", data, ok=(200,))
    return status


async def enrol(devices: list[SimDevice], target: Target, stats: Stats, concurrency: int) -> None:
    """Bring the fleet into service: every device authenticates and sends its inventory, as a
    client does on its first start, `concurrency` devices at a time (as fast as the server takes)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(d):
        async with gate:
            if await authenticate(d, target, stats):
                await put_inventory(d, target, stats)

    await asyncio.gather(*(one(d) for d in devices))


async def device_life(d: SimDevice, target: Target, stats: Stats, stop_at: float, scale: float, rng):
    """A device in service: polls every POLL_S, sends its inventory every INVENTORY_S and renews
    its token every AUTH_S (all divided by `scale`), each timer at a random phase, as a fleet
    whose devices came up at different times; installs a deployment when the poll offers one."""
    now = time.monotonic()
    next_poll = now + rng.uniform(0, POLL_S / scale)
    next_inventory = now + rng.uniform(0, INVENTORY_S / scale)
    next_auth = now + rng.uniform(0, AUTH_S / scale)
    while True:
        due = min(next_poll, next_inventory, next_auth)
        if due >= stop_at:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if due == next_auth:
            next_auth += AUTH_S / scale
            await authenticate(d, target, stats)
            continue
        if due == next_inventory:
            next_inventory += INVENTORY_S / scale
            if await put_inventory(d, target, stats) == 401:
                await authenticate(d, target, stats)
            continue
        next_poll += POLL_S / scale * rng.uniform(0.9, 1.1)
        data = d.request("next", (d.token, d.artifact), lambda: request_bytes(
            "POST", target.host, NEXT_PATH, (_bearer(d), JSON), _json({
                "device_provides": {"artifact_name": d.artifact, "device_type": "fleet-device"},
                "update_control_map": True})))
        status, body = await call(target, stats, "next", data)
        if status == 401:
            await authenticate(d, target, stats)
        elif status == 200:
            instr = json.loads(body)
            dep, uri = instr["id"], urlsplit(instr["artifact"]["source"]["uri"])
            st_path = f"/api/devices/v1/deployments/device/deployments/{dep}/status"

            def report(status: str) -> bytes:
                return request_bytes("PUT", target.host, st_path, (_bearer(d), JSON), _json({"status": status}))

            await call(target, stats, "status", report("downloading"))
            download = request_bytes("GET", uri.netloc, f"{uri.path}?{uri.query}" if uri.query else uri.path)
            await call(target, stats, "download", download, ok=(200,), port=uri.port)
            await call(target, stats, "status", report("installing"))
            await authenticate(d, target, stats)  # the real client re-authenticates at commit
            await call(target, stats, "status", report("success"))
            d.artifact = instr["artifact"]["artifact_name"]
            await put_inventory(d, target, stats)  # and reports the new artifact name


class Phase:
    """Requests of one phase, its wall time, and the CPU the load generator and the server used."""

    def __init__(self, server_cpu):
        self.stats = Stats()
        self.operator_ms: dict = {}  # the wave's operator requests, when there is a wave
        self.lag = LoopLag(self.stats.t0).start()
        self.gc = GcTime().start()
        self._server_cpu = server_cpu
        self.t0, self.c0, self.sys0, self.s0 = time.monotonic(), _cpu(), _cpu(system=True), server_cpu()

    def end(self) -> "Phase":
        self.seconds = time.monotonic() - self.t0
        self.lag.stop()
        self.gc.stop()
        self.client_cpu = _cpu() - self.c0
        self.client_sys = _cpu(system=True) - self.sys0
        self.server_cpu = self._server_cpu() - self.s0
        return self

    def report(self) -> dict:
        stats, rate = self.stats, self.stats.count / self.seconds
        return {
            "seconds": round(self.seconds, 1), "requests": stats.count, "rate_rps": round(rate, 1),
            "errors": sum(stats.errors.values()), "fleet_equivalent": int(rate / PER_DEVICE_RATE),
            "server_cpu_share": round(self.server_cpu / self.seconds, 2),
            "client_cpu_share": round(self.client_cpu / self.seconds, 2),
            "client_cpu_us_per_request": round(1e6 * self.client_cpu / max(1, stats.count)),
            "client_sys_us_per_request": round(1e6 * self.client_sys / max(1, stats.count)),
            **self.lag.summary([x for v in self.lag.lags.values() for x in v]), **self.gc.summary(),
            "wave_operator_ms": self.operator_ms,
            "endpoints": {k: {"count": len(v), "p50_ms": round(pct(v, 50), 1), "p95_ms": round(pct(v, 95), 1),
                              "p99_ms": round(pct(v, 99), 1), "max_ms": round(max(v) * 1000, 1),
                              "errors": stats.errors.get(k, 0), "statuses": dict(stats.codes[k])}
                          for k, v in sorted(stats.lat.items())},
            "timeline_5s": [{"t": b * 5, "requests": len(v), "p50_ms": round(pct(v, 50), 1),
                             "p99_ms": round(pct(v, 99), 1), **self.lag.summary(self.lag.lags.get(b, []))}
                            for b, v in sorted(stats.timeline.items())],
        }


async def run_fleet(url: str, devices: list[SimDevice], duration: float, scale: float, wave: float,
                    token: str, artifact: bytes, seed: int, enrol_concurrency: int, server_cpu
                    ) -> tuple[Phase, Phase]:
    """Enrolment, then `duration` seconds of the steady mix with the wave at a third of it."""
    rng = random.Random(seed)
    target = Target(url, Pool(limit=512, keepalive=15.0, timeout=60.0))
    try:
        enrolment = Phase(server_cpu)
        await enrol(devices, target, enrolment.stats, enrol_concurrency)
        enrolment.end()
        print(f"enrolled {len(devices)} devices in {enrolment.seconds:.1f}s", flush=True)

        gc.collect()  # the enrolment's garbage, before the measured run
        # no automatic full collection during the run: with the heap frozen (below), each one still
        # traversed what the run had kept since (its requests' survivors) and held the loop 70-200 ms
        # while freeing nothing (measured with a gc callback: 4-5 a run, 0 objects freed), so every
        # request in flight counted the pause as the server's. The young generations are still
        # collected (the run's cycles are freed as they come); full collections resume after it.
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], 1 << 30)
        try:
            steady = Phase(server_cpu)
            stats = steady.stats
            stop_at = steady.t0 + duration
            tasks = []
            for d in (d for d in devices if d.token):
                tasks.append(asyncio.create_task(device_life(d, target, stats, stop_at, scale, rng)))
                if len(tasks) % 200 == 0:  # a loop iteration per 200 devices' start (10,000 at once: ~0.2 s of lag)
                    await asyncio.sleep(0)
            # the devices, their keys and tasks live as long as the run: a full collection traversed them
            # all (~200,000 objects: 0.1-0.4 s, the loop held) whenever enough survivors had piled up
            gc.freeze()
            if wave > 0:
                await asyncio.sleep(duration / 3)
                steady.operator_ms = await start_wave(url, token, artifact, [d for d in devices if d.token], wave,
                                                      rng)
            await asyncio.gather(*tasks)
        finally:
            gc.set_threshold(*thresholds)
        return enrolment, steady.end()
    finally:
        target.pool.close()


async def start_wave(url: str, token: str, artifact: bytes, targets: list[SimDevice], wave: float, rng) -> dict:
    """The operator's part (aiohttp: two requests, not counted with the devices'): the artifact,
    and a deployment to `wave` of the devices; returns how long each took (ms)."""
    took = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        headers = {"Authorization": f"Bearer {token}"}
        form = aiohttp.FormData()
        form.add_field("size", str(len(artifact)))
        form.add_field("description", "wave")
        form.add_field("artifact", artifact, filename="wave.mender", content_type="application/octet-stream")
        t = time.perf_counter()
        async with session.post(f"{url}/api/management/v1/deployments/artifacts", data=form,
                                headers=headers) as r:
            # 409: uploaded by an earlier run on the same (seeded) database
            assert r.status in (201, 409), await r.text()
        took["artifact_upload_ms"] = round((time.perf_counter() - t) * 1000, 1)
        chosen = rng.sample(targets, max(1, int(len(targets) * wave))) if targets else []
        t = time.perf_counter()
        async with session.post(f"{url}/api/management/v1/deployments/deployments", headers=headers, json={
                "name": "wave", "artifact_name": "fleet-wave", "devices": [_device_id(d) for d in chosen]}) as r:
            assert r.status == 201, await r.text()
        took["deployment_create_ms"] = round((time.perf_counter() - t) * 1000, 1)
    return took


def _cpu(system: bool = False) -> float:
    """The simulator's CPU so far (user + system), or its system part alone (the kernel's: its
    sockets, and on loopback the TCP work of the server's receiving side done in the sender's call)."""
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_stime if system else u.ru_utime + u.ru_stime


def _device_id(d: SimDevice) -> str:
    claims = json.loads(base64.urlsafe_b64decode(d.token.split(".")[1] + "=="))
    return claims["sub"]


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--compress", type=float, default=600.0,
                    help="time compression: intervals are divided by this (600: polls every 3 s)")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of simulated traffic")
    ap.add_argument("--wave", type=float, default=0.10, help="share of the fleet in the deployment wave")
    # the server's own defaults (gunicorn.conf.py, common/asgi.py): the configuration an operator runs
    ap.add_argument("--workers", type=int, default=0,
                    help="gunicorn workers (default: the server's, WEB_CONCURRENCY: 4 × cores on SQLite, "
                         "2 × cores on MongoDB)")
    ap.add_argument("--worker-class", default="asgi", help="asgi (the default model) or gthread")
    ap.add_argument("--threads", type=int, default=0,
                    help="app threads per worker (default: the server's, MENDER_WORKER_THREADS: 2 on SQLite, "
                         "8 on MongoDB)")
    ap.add_argument("--db-url", default="", help="MENDER_DB_URL (default: SQLite in a temp dir)")
    ap.add_argument("--data-dir", help="the server's MENDER_DATA_DIR (default: a fresh temp dir)")
    ap.add_argument("--seeded", type=int, default=0,
                    help="the database holds this many devices seeded by bench/seed_fleet.py: the simulated "
                         "devices are --devices of them picked at random (their keys derived as the seeder's)")
    ap.add_argument("--enrol-concurrency", type=int, default=32,
                    help="devices authenticating and sending inventory at once before the measured run")
    ap.add_argument("--baseline-seconds", type=float, default=10.0)
    ap.add_argument("--json", help="write the results to this file as well")
    args = ap.parse_args()
    server_cfg = load_config({"MENDER_DB_URL": args.db_url}, environ={})
    args.workers = args.workers or default_workers(server_cfg, multiprocessing.cpu_count())
    args.threads = args.threads or default_threads(server_cfg)

    tmp = tempfile.mkdtemp(prefix="fleet-")
    env = {"MENDER_DB_URL": args.db_url} if args.db_url else {}
    print(f"machine: {machine()}", flush=True)
    t = time.monotonic()
    if args.seeded:
        picked = random.Random(7).sample(range(args.seeded), args.devices)
        devices = [SimDevice(i, seeded=True) for i in picked]
    else:
        devices = [SimDevice(i) for i in range(args.devices)]
    print(f"{len(devices)} device keys in {time.monotonic() - t:.1f}s", flush=True)
    artifact = make_artifact(tmp, "fleet-wave", "fleet-device")

    baseline = Server("bench.bare_app:app", os.path.join(tmp, "bare"), workers=args.workers,
                      worker_class=args.worker_class, threads=args.threads)
    with baseline:
        async def hello(session, i):
            async with session.get(baseline.url + "/hello") as r:
                await r.read()
                return r.status
        base = asyncio.run(closed_loop("hello", hello, connections=16, seconds=args.baseline_seconds,
                                       server=baseline))
    print(f"baseline bare Flask: {base.rps:.0f} req/s (p99 {base.pct(99):.1f} ms)", flush=True)

    data_dir = args.data_dir or os.path.join(tmp, "server")
    server = Server("wsgi:app", data_dir, workers=args.workers, worker_class=args.worker_class,
                    threads=args.threads, env=env)
    t = time.monotonic()
    with server:
        print(f"server answering {time.monotonic() - t:.1f}s after its start", flush=True)
        t = time.monotonic()
        token = provision(server.url, data_dir, devices, env, preauthorize=not args.seeded)
        print(f"preauthorized {len(devices)} devices in {time.monotonic() - t:.1f}s", flush=True)
        enrolment, steady = asyncio.run(run_fleet(server.url, devices, args.duration, args.compress, args.wave,
                                                  token, artifact, seed=1, enrol_concurrency=args.enrol_concurrency,
                                                  server_cpu=server.cpu_seconds))

        # closed-loop poll capacity against the same server, for the ratio to the baseline
        polling = [d for d in devices if d.token][:64]

        async def poll(session, i):
            d = polling[i % len(polling)]
            async with session.post(server.url + "/api/devices/v2/deployments/device/deployments/next",
                                    headers={"Authorization": f"Bearer {d.token}"},
                                    json={"device_provides": {"artifact_name": d.artifact,
                                                              "device_type": "fleet-device"}}) as r:
                await r.read()
                return r.status
        cap = asyncio.run(closed_loop("poll", poll, connections=16, seconds=args.baseline_seconds, server=server))

    report = {
        "machine": machine(), "devices": args.devices, "seeded": args.seeded, "compress": args.compress,
        "workers": args.workers, "worker_class": args.worker_class, "threads": args.threads,
        "offered_rate_rps": round(args.devices * PER_DEVICE_RATE * args.compress, 1),
        "baseline_rps": round(base.rps), "poll_capacity_rps": round(cap.rps),
        "poll_ratio_to_baseline": round(cap.rps / base.rps, 2) if base.rps else None,
        "poll_capacity_p99_ms": round(cap.pct(99), 1), "poll_capacity_errors": cap.errors,
        "enrolment": enrolment.report(), "steady": steady.report(),
    }
    print(json.dumps(report, indent=1))
    print("5 s windows of the steady mix: p99 of the answers / the client loop's lag p99, max (ms): " + ", ".join(
        f"{w['t']}s {w['p99_ms']:g} / {w['loop_lag_p99_ms']:g}, {w['loop_lag_max_ms']:g}"
        for w in report["steady"]["timeline_5s"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    st = report["steady"]
    print(f"steady: {st['rate_rps']} req/s of {report['offered_rate_rps']} offered "
          f"(= {st['fleet_equivalent']:,} devices at Mender's intervals), {st['errors']} errors, "
          f"server {st['server_cpu_share']} cores, load generator {st['client_cpu_share']} cores "
          f"({st['client_cpu_us_per_request']} µs a request, {st['client_sys_us_per_request']} of it in the kernel, its loop's lag p50/p99/max "
          f"{st['loop_lag_p50_ms']}/{st['loop_lag_p99_ms']}/{st['loop_lag_max_ms']} ms, "
          f"{st['client_gc_collections']} garbage collections ({st['client_gc_full_collections']} full) {st['client_gc_ms']} ms, the longest {st['client_gc_longest_ms']}); "
          + ", ".join(f"{k} p50/p99 {v['p50_ms']}/{v['p99_ms']} ms" for k, v in st["endpoints"].items()))
    if st["wave_operator_ms"]:
        print("the wave's operator requests: " + ", ".join(f"{k} {v}" for k, v in st["wave_operator_ms"].items()))


if __name__ == "__main__":
    main()
