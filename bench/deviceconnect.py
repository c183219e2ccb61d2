"""deviceconnect at scale: idle device connections held, memory per connection, and the terminal
round trip through the relay against a same-machine baseline.

1. N devices (own Ed25519 key each) are preauthorized and authenticate; `--active` of them
   (1,000) open their deviceconnect websocket and answer like mender-connect's shell: every
   keystroke message comes back as output.
2. Terminal round trip with those devices connected: `--sessions` operators, each with a session
   to its own device, type a keystroke and wait for its echo, in a closed loop for `--seconds`;
   the baseline is the same closed loop on an echo websocket served by the same server (the
   test route of tests/ws_app.py), with the same message. Operator and device sockets land in
   whichever worker the kernel hands them to, so most sessions cross workers over the bus.
3. The rest of the fleet connects (N in all); the workers' RSS before and after gives the memory
   per connection; the round trip is measured again with N connected.

    .venv/bin/python -m bench.deviceconnect --devices 10000 --active 1000 --workers 2
    .venv/bin/python -m bench.deviceconnect --nats      # the same over a local nats-server

Only 127.0.0.1 is targeted; every connection is closed and every process stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sqlite3
import sys
import tempfile
import time

import aiohttp
import websockets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.fleet import SimDevice, Stats, authenticate, provision  # noqa: E402
from bench.lib import machine  # noqa: E402
from bench.websockets_idle import rss_kib  # noqa: E402
from deviceconnect import protocol as p  # noqa: E402
from tests.helpers import GunicornServer  # noqa: E402

CONNECT = "/api/devices/v1/deviceconnect/connect"
KEYSTROKE = b"x"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q / 100 * len(values)))] * 1000 if values else 0.0


async def device_responder(ws) -> None:
    """mender-connect's shell, reduced to an echo: a new shell answers, every keystroke comes back."""
    try:
        async for raw in ws:
            msg = p.decode(raw)
            if msg.proto != p.PROTO_SHELL:
                continue
            if msg.typ == p.SHELL_NEW:
                await ws.send(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, msg.sid, {"status": p.Int64(1)})))
            elif msg.typ == p.SHELL_DATA:
                await ws.send(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, msg.sid, {"status": p.Int64(1)},
                                                  msg.body)))
    except websockets.ConnectionClosed:
        pass


async def connect_devices(url: str, devices: list[SimDevice], batch: int, respond: bool, tasks: list) -> list:
    conns = []
    ws_url = url.replace("http://", "ws://") + CONNECT
    for start in range(0, len(devices), batch):
        chunk = devices[start:start + batch]
        opened = await asyncio.gather(*(websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {d.token}"},
                                                           ping_interval=None, compression=None, open_timeout=120,
                                                           max_queue=4) for d in chunk))
        conns += opened
        if respond:
            tasks += [asyncio.get_running_loop().create_task(device_responder(ws)) for ws in opened]
    return conns


def connected_count(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM deviceconnect_devices WHERE status = 'connected'").fetchone()[0]


async def wait_connected(db: str, n: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while connected_count(db) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {connected_count(db)} of {n} devices connected")
        await asyncio.sleep(0.2)


async def terminal_rtt(url: str, token: str, device_ids: list[str], seconds: float) -> list[float]:
    """Closed loop: each operator types one keystroke and waits for it to come back."""
    base = url.replace("http://", "ws://")
    rtts: list[float] = []

    async def operator(device_id: str) -> None:
        async with websockets.connect(f"{base}/api/management/v1/deviceconnect/devices/{device_id}/connect",
                                      additional_headers={"Authorization": f"Bearer {token}"},
                                      ping_interval=None, compression=None) as ws:
            await ws.send(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, "", {"terminal_width": 80,
                                                                               "terminal_height": 24})))
            while p.decode(await ws.recv()).typ != p.SHELL_NEW:
                pass
            frame = p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, "", {}, KEYSTROKE))
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                await ws.send(frame)
                while True:
                    msg = p.decode(await ws.recv())
                    if msg.typ == p.SHELL_DATA:
                        break
                rtts.append(time.perf_counter() - t0)

    await asyncio.gather(*(operator(d) for d in device_ids))
    return rtts


async def echo_rtt(url: str, connections: int, seconds: float) -> list[float]:
    """The baseline: the same closed loop on the same server's echo websocket."""
    target = url.replace("http://", "ws://") + "/api/devices/v1/test/echo"
    frame = p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, "0" * 36, {"user_id": "0" * 36}, KEYSTROKE))
    rtts: list[float] = []

    async def one() -> None:
        async with websockets.connect(target, ping_interval=None, compression=None) as ws:
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                await ws.send(frame)
                await ws.recv()
                rtts.append(time.perf_counter() - t0)

    await asyncio.gather(*(one() for _ in range(connections)))
    return rtts


def row(label: str, rtt: list[float], base: list[float], seconds: float) -> str:
    return (f"| {label} | {len(rtt) / seconds:.0f}/s | {pct(rtt, 50):.2f} / {pct(rtt, 99):.2f} ms | "
            f"{len(base) / seconds:.0f}/s | {pct(base, 50):.2f} / {pct(base, 99):.2f} ms | "
            f"{pct(rtt, 50) / max(pct(base, 50), 1e-9):.1f}× / {pct(rtt, 99) / max(pct(base, 99), 1e-9):.1f}× |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=10_000, help="devices connected in the end")
    ap.add_argument("--active", type=int, default=1_000, help="devices connected for the first round trip")
    ap.add_argument("--sessions", type=int, default=50, help="operator sessions typing at once")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200, help="devices connecting at once")
    ap.add_argument("--nats", action="store_true", help="relay over a local nats-server instead of the embedded bus")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="bench-dc-")
    data_dir = os.path.join(tmp, "data")
    env = {"MENDER_LOG_LEVEL": "warning"}
    nats = None
    if args.nats:
        from tests.deviceconnect.nats import NatsServer
        nats = NatsServer(tmp).start()
        env["DEVICECONNECT_NATS_URI"] = nats.url
    print(f"machine: {machine()}; gunicorn asgi × {args.workers} workers; bus: {'NATS' if nats else 'embedded'}",
          flush=True)
    devices = [SimDevice(i) for i in range(args.devices)]
    server = GunicornServer(data_dir, workers=args.workers, app="tests.ws_app:app", env=env)
    try:
        with server:
            t = time.monotonic()
            token = provision(server.url, data_dir, devices)

            async def enrol() -> None:
                gate = asyncio.Semaphore(32)
                stats = Stats()
                async with aiohttp.ClientSession() as session:
                    async def one(d):
                        async with gate:
                            assert await authenticate(d, server.url, session, stats)
                    await asyncio.gather(*(one(d) for d in devices))

            asyncio.run(enrol())
            print(f"{len(devices)} devices preauthorized and authenticated in {time.monotonic() - t:.0f} s", flush=True)
            db = os.path.join(data_dir, "mender.db")
            from bench.fleet import _device_id
            results = asyncio.run(_measure(args, server, token, devices, db, _device_id))
    finally:
        if nats is not None:
            nats.stop()
    print_results(args, *results)


async def _measure(args, server, token, devices, db, device_id):
    tasks: list = []
    # warm every worker's websocket path, then the memory baseline
    await echo_rtt(server.url, args.workers * 4, 0.5)
    await asyncio.sleep(1)
    rss_before = rss_kib(server.worker_pids())
    t = time.monotonic()
    active = devices[:args.active]
    conns = await connect_devices(server.url, active, args.batch, True, tasks)
    await wait_connected(db, len(active))
    opened_active = time.monotonic() - t
    targets = [device_id(d) for d in active[:args.sessions]]
    rtt_active = await terminal_rtt(server.url, token, targets, args.seconds)
    base_active = await echo_rtt(server.url, args.sessions, args.seconds)
    t = time.monotonic()
    conns += await connect_devices(server.url, devices[args.active:], args.batch, False, tasks)
    await wait_connected(db, len(devices))
    opened_rest = time.monotonic() - t
    await asyncio.sleep(2)
    rss_after = rss_kib(server.worker_pids())
    rtt_all = await terminal_rtt(server.url, token, targets, args.seconds)
    base_all = await echo_rtt(server.url, args.sessions, args.seconds)
    holders = {}
    with sqlite3.connect(db) as conn:
        for (holder, n) in conn.execute("SELECT holder, count(*) FROM deviceconnect_devices"
                                        " WHERE status = 'connected' GROUP BY holder"):
            holders[holder] = n
    for ws in conns:
        ws.transport.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return (opened_active, opened_rest, rss_before, rss_after, rtt_active, base_active, rtt_all, base_all, holders)


def print_results(args, opened_active, opened_rest, rss_before, rss_after, rtt_active, base_active, rtt_all,
                  base_all, holders) -> None:
    n = args.devices
    print()
    print("| devices connected | connected in | workers' RSS before | after | per connection | per worker |")
    print("|---|---|---|---|---|---|")
    print(f"| {n} | {opened_active + opened_rest:.0f} s | {rss_before / 1024:.0f} MiB | {rss_after / 1024:.0f} MiB | "
          f"{(rss_after - rss_before) / n:.1f} KiB | {', '.join(str(v) for v in sorted(holders.values()))} |")
    print()
    print(f"Terminal round trip, {args.sessions} operators typing at once, {args.seconds:.0f} s each:")
    print()
    print("| devices connected | through deviceconnect | p50 / p99 | echo websocket (baseline) | p50 / p99 | ratio p50 / p99 |")
    print("|---|---|---|---|---|---|")
    print(row(str(args.active), rtt_active, base_active, args.seconds))
    print(row(str(n), rtt_all, base_all, args.seconds))


if __name__ == "__main__":
    main()
