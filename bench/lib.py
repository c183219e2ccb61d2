"""Benchmark plumbing: a gunicorn under test, a closed-loop asyncio load generator, and the
interleaved ratio method (every path against the bare-Flask baseline, in the same run).

Only 127.0.0.1 is ever targeted; every process started here is stopped by PID."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / tick
        except OSError:
            pass
    return total


class Server:
    """gunicorn -c gunicorn.conf.py APP on 127.0.0.1, optionally pinned to some CPUs."""

    def __init__(self, app: str, data_dir: str, *, workers: int = 1, worker_class: str = "asgi",
                 threads: int = 0, cpus: list[int] | None = None, env: dict | None = None,
                 probe: str | None = None):
        bare = app.startswith("bench.bare_app")
        if worker_class == "asgi":  # the same front for the server and the baseline
            app = {"wsgi:app": "asgi:app", "bench.bare_app:app": "bench.bare_app:asgi"}.get(app, app)
        self.port = free_port()
        self.internal_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.internal_url = f"http://127.0.0.1:{self.internal_port}"
        self.probe = probe or ("/hello" if bare else "/api/internal/v1/useradm/alive")
        self.probe_url = (self.url if bare or probe else self.internal_url) + self.probe
        os.makedirs(data_dir, exist_ok=True)
        if not threads:  # the server's default for its database
            from common.config import default_threads
            threads = default_threads({"MENDER_DB_URL": (env or {}).get("MENDER_DB_URL", "")})
        self.env = {**os.environ, "MENDER_DATA_DIR": data_dir, "WEB_CONCURRENCY": str(workers),
                    "MENDER_WORKER_CLASS": worker_class, "MENDER_WORKER_THREADS": str(threads),
                    "MENDER_INTERNAL_BIND": f"127.0.0.1:{self.internal_port}",
                    "MENDER_LOG_LEVEL": "warning", **(env or {})}
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        cmd = [sys.executable, "-m", "gunicorn", "-c", os.path.join(ROOT, "gunicorn.conf.py"),
               "--bind", f"127.0.0.1:{self.port}", app]
        if cpus:
            cmd = ["taskset", "-c", ",".join(map(str, cpus))] + cmd
        self.cmd = cmd
        self.log_path = os.path.join(data_dir, f"gunicorn-{self.port}.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "Server":
        import urllib.request
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.probe_url, timeout=1):
                    return self
            except Exception:
                if self.proc.poll() is not None:
                    raise RuntimeError(open(self.log_path).read())
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start")

    def pids(self) -> list[int]:
        return [self.proc.pid] + _children(self.proc.pid) if self.proc else []

    def cpu_seconds(self) -> float:
        """User+system CPU of the master and its workers so far."""
        return proc_cpu_seconds(self.pids())

    def worker_peak_rss_kib(self) -> dict[int, int]:
        out = {}
        for pid in _children(self.proc.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            out[pid] = int(line.split()[1])
            except OSError:
                pass
        return out

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc:
            self._log.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Result:
    name: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    statuses: dict = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(p / 100 * len(data)))] * 1000


async def closed_loop(name: str, request, *, connections: int, seconds: float,
                      ok: tuple[int, ...] = (200, 204), server: Server | None = None) -> Result:
    """`connections` workers each send requests back to back for `seconds`.
    `request(session, i)` is a coroutine returning the HTTP status."""
    import aiohttp
    result = Result(name)
    connector = aiohttp.TCPConnector(limit=connections)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = server.cpu_seconds() if server else 0.0
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(w: int):
            i = w
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    status = await request(session, i)
                except Exception:
                    status = -1
                result.latencies.append(time.perf_counter() - t0)
                result.requests += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status not in ok:
                    result.errors += 1
                i += connections

        await asyncio.gather(*(worker(w) for w in range(connections)))
        result.seconds = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    result.server_cpu = (server.cpu_seconds() - cpu0) if server else 0.0
    return result


def summarize(results: list[Result], ratios: list[float]) -> dict:
    requests = sum(r.requests for r in results)
    merged = Result("all", latencies=[x for r in results for x in r.latencies])
    return {
        "rps": statistics.median(r.rps for r in results),
        "ratio": statistics.median(ratios) if ratios else 0.0,
        "p50_ms": merged.pct(50), "p95_ms": merged.pct(95), "p99_ms": merged.pct(99),
        "errors": sum(r.errors for r in results), "requests": requests,
        "server_cpu_us_per_req": 1e6 * sum(r.server_cpu for r in results) / max(1, requests),
        "client_cpu_us_per_req": 1e6 * sum(r.client_cpu for r in results) / max(1, requests),
    }


def interleaved(bursts: dict[str, Callable[[], Result]], baseline: str, rounds: int) -> dict[str, dict]:
    """Run every burst once per round, in turn; ratio = rps(path) / rps(baseline) within a
    round; the median over rounds is reported (drift hits every path alike)."""
    per: dict[str, list[Result]] = {k: [] for k in bursts}
    ratios: dict[str, list[float]] = {k: [] for k in bursts}
    for _ in range(rounds):
        got = {k: fn() for k, fn in bursts.items()}
        base = got[baseline].rps or 1e-9
        for k, r in got.items():
            per[k].append(r)
            ratios[k].append(r.rps / base)
    return {k: summarize(per[k], ratios[k]) for k in bursts}


def table(results: dict[str, dict]) -> str:
    rows = ["| path | req/s (median) | ratio to bare Flask | p50 ms | p95 ms | p99 ms | server CPU µs/req | errors |",
            "|---|---|---|---|---|---|---|---|"]
    for k, r in results.items():
        rows.append(f"| {k} | {r['rps']:.0f} | {r['ratio']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                    f"{r['p99_ms']:.1f} | {r['server_cpu_us_per_req']:.0f} | {r['errors']} |")
    return "\n".join(rows)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d')}"
