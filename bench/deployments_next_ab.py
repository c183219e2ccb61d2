"""Two versions of the code, the same device polls: server CPU per request of each, in one run.

    .venv/bin/python -m bench.deployments_next_ab OLD_DIR NEW_DIR [--rounds 8 --seconds 3]
        [--a-env NAME=VALUE ...] [--b-env NAME=VALUE ...]

OLD_DIR and NEW_DIR are checkouts of the repository (e.g. `git archive <commit> | tar -x -C DIR`,
with `.venv` linked); each serves its own gunicorn (default gunicorn.conf.py, asgi worker, 1
worker pinned to CPU 0) and its own bare Flask baseline, with the same devices and deployment as
bench/deployments_next.py. Bursts alternate A, B then B, A for every path; the figure is B's CPU
per request over A's in each round (the machine's load moves both bursts of a round alike),
its median and range. Throughput ratios (bench/deployments_next.py) cannot show a change that
the baseline shares; this can. The same checkout twice with a setting apart (`--b-env`, e.g.
MENDER_EVENT_LOOP=asyncio) compares the two settings. Only 127.0.0.1 is targeted; every process is stopped by PID."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import tempfile

import requests

import bench.fleet as fleet
import bench.lib as lib
from bench.fleet import SimDevice, make_artifact, provision
from bench.lib import Server, closed_loop

NEXT = "/api/devices/v2/deployments/device/deployments/next"
BODY = {"device_provides": {"artifact_name": "factory-image", "device_type": "fleet-device"},
        "update_control_map": True}


def _in(code: str, fn, *args, **kwargs):
    """Call fn with the benchmark plumbing pointed at the checkout `code` (its gunicorn.conf.py,
    its working directory for the server and the CLI)."""
    saved = lib.ROOT, fleet.ROOT
    lib.ROOT = fleet.ROOT = code
    try:
        return fn(*args, **kwargs)
    finally:
        lib.ROOT, fleet.ROOT = saved


def _server(code: str, app: str, data_dir: str, env: dict) -> Server:
    server = Server(app, data_dir, workers=1, worker_class="asgi", threads=8, cpus=[0], env=env)
    server.cmd = [part.replace(lib.ROOT, code) for part in server.cmd]
    return _in(code, server.start)


def _setup(code: str, tmp: str, tag: str, env: dict) -> dict:
    data_dir = os.path.join(tmp, tag)
    server = _server(code, "wsgi:app", data_dir, env)
    bare = _server(code, "bench.bare_app:app", data_dir + "-bare", env)
    devices = [SimDevice(i) for i in range(16)]
    token = _in(code, provision, server.url, data_dir, devices)
    for d in devices:
        r = requests.post(server.url + "/api/devices/v1/authentication/auth_requests", data=d.body, timeout=30,
                          headers={"Content-Type": "application/json", "X-MEN-Signature": d.signature})
        assert r.status_code == 200, r.text
        d.token = r.text
    artifact = make_artifact(tmp, "bench-next", "fleet-device")
    headers = {"Authorization": f"Bearer {token}"}
    r = requests.post(server.url + "/api/management/v1/deployments/artifacts", headers=headers, timeout=60,
                      files={"size": (None, str(len(artifact))), "artifact": ("a.mender", artifact)})
    assert r.status_code == 201, r.text
    ids = [json.loads(base64.urlsafe_b64decode(d.token.split(".")[1] + "=="))["sub"] for d in devices[8:]]
    r = requests.post(server.url + "/api/management/v1/deployments/deployments", headers=headers, timeout=60,
                      json={"name": "bench", "artifact_name": "bench-next", "devices": ids})
    assert r.status_code == 201, r.text
    return {"server": server, "bare": bare, "204": devices[:8], "200": devices[8:]}


def _loop_cpu(server: Server) -> float:
    """CPU seconds so far of the worker's event-loop thread (its main thread: task id = pid)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in lib._children(server.proc.pid):
        with open(f"/proc/{pid}/task/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        total += (int(parts[11]) + int(parts[12])) / tick
    return total


def _burst(side: dict, path: str, seconds: float) -> lib.Result:
    server = side["bare" if path == "hello" else "server"]
    loop0 = _loop_cpu(server)
    result = _run(side, path, seconds)
    result.loop_cpu = _loop_cpu(server) - loop0
    return result


def _run(side: dict, path: str, seconds: float) -> lib.Result:
    if path == "hello":
        async def hello(session, i):
            async with session.get(side["bare"].url + "/hello") as resp:
                await resp.read()
                return resp.status
        return asyncio.run(closed_loop("hello", hello, connections=8, seconds=seconds, server=side["bare"]))
    devices = side[path]

    async def poll(session, i):
        d = devices[i % len(devices)]
        async with session.post(side["server"].url + NEXT, headers={"Authorization": f"Bearer {d.token}"},
                                json=BODY) as resp:
            await resp.read()
            return resp.status
    return asyncio.run(closed_loop(path, poll, connections=8, seconds=seconds, server=side["server"],
                                   ok=(int(path),)))


def _env(ap: argparse.ArgumentParser, pairs: list[str]) -> dict:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            ap.error(f"expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a", help="checkout A (the code before)")
    ap.add_argument("b", help="checkout B (the code after)")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--a-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable of A's servers (repeatable)")
    ap.add_argument("--b-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable of B's servers (repeatable)")
    args = ap.parse_args()
    envs = {"A": _env(ap, args.a_env), "B": _env(ap, args.b_env)}
    os.sched_setaffinity(0, {1})
    tmp = tempfile.mkdtemp(prefix="bench-next-ab-")
    sides: dict[str, dict] = {}
    paths = ("hello", "204", "200")
    per: dict[tuple[str, str], list[lib.Result]] = {(s, p): [] for s in "AB" for p in paths}
    try:
        sides["A"] = _setup(os.path.abspath(args.a), tmp, "A", envs["A"])
        sides["B"] = _setup(os.path.abspath(args.b), tmp, "B", envs["B"])
        for n in range(args.rounds):
            for path in paths:
                for side in ("AB" if n % 2 == 0 else "BA"):
                    result = _burst(sides[side], path, args.seconds)
                    assert result.errors == 0, result.statuses
                    per[(side, path)].append(result)
    finally:
        for side in sides.values():
            side["server"].stop()
            side["bare"].stop()
    print(f"{lib.machine()}; {args.rounds} rounds × {args.seconds}s per side and path")
    for side in "AB":
        if envs[side]:
            print(f"{side}: " + " ".join(f"{k}={v}" for k, v in envs[side].items()))
    print("| path | A µs/req (median) | B µs/req (median) | B/A per round: median (range) | A req/s | B req/s "
          "| loop thread A → B µs/req | loop B/A: median (range) |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        a, b = per[("A", path)], per[("B", path)]
        cpu = lambda r: 1e6 * r.server_cpu / max(1, r.requests)  # noqa: E731
        loop = lambda r: 1e6 * r.loop_cpu / max(1, r.requests)  # noqa: E731
        ratios = [cpu(y) / cpu(x) for x, y in zip(a, b)]
        loop_ratios = [loop(y) / loop(x) for x, y in zip(a, b) if loop(x)]
        print(f"| {path} | {statistics.median(map(cpu, a)):.0f} | {statistics.median(map(cpu, b)):.0f} | "
              f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f}) | "
              f"{statistics.median(r.rps for r in a):.0f} | {statistics.median(r.rps for r in b):.0f} | "
              f"{statistics.median(map(loop, a)):.0f} → {statistics.median(map(loop, b)):.0f} | "
              f"{statistics.median(loop_ratios):.3f} ({min(loop_ratios):.3f}–{max(loop_ratios):.3f}) |")


if __name__ == "__main__":
    main()
