"""Inventory benchmark (a script, not a test).

1. Search: 100,000 devices x 30 attributes in SQLite, loaded directly through the store;
   `POST /api/management/v2/inventory/filters/search` (through the Flask app, with a user token)
   with one indexed predicate and with three ANDed predicates: p50/p95 latency.
2. Device inventory PATCH throughput through a real gunicorn, compared with a bare Flask
   endpoint served by the same gunicorn settings, measured in the same run.

The load generator only targets 127.0.0.1 and stops after a fixed duration; every server it
starts is stopped by PID.

    .venv/bin/python bench/inventory_search.py [--devices 100000] [--seconds 10] [--skip-patch]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing import Process, Queue

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common.app import create_app  # noqa: E402
from inventory.model import Attribute  # noqa: E402

SEARCH = "/api/management/v2/inventory/filters/search"
DEVICE_TYPES = [f"board-{i}" for i in range(10)]
ARTIFACTS = [f"release-{i}" for i in range(50)]
KERNELS = [f"5.{i}.0" for i in range(20)]
MEMORY = [float(256 * 2 ** i) for i in range(8)]


def device_attributes(i: int, rnd: random.Random) -> list[Attribute]:
    """30 attributes: identity (2), system (4), inventory (24)."""
    ts = "2026-01-01T00:00:00.000Z"
    attrs = [
        Attribute("identity", "mac", f"02:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00"),
        Attribute("identity", "status", "accepted"),
        Attribute("system", "status", "accepted"),
        Attribute("system", "created_ts", ts),
        Attribute("system", "updated_ts", ts),
        Attribute("system", "group", f"group-{i % 20}"),
        Attribute("inventory", "device_type", rnd.choice(DEVICE_TYPES)),
        Attribute("inventory", "artifact_name", rnd.choice(ARTIFACTS)),
        Attribute("inventory", "kernel", rnd.choice(KERNELS)),
        Attribute("inventory", "mem_total_kB", rnd.choice(MEMORY)),
        Attribute("inventory", "hostname", f"host-{i:06d}"),
        Attribute("inventory", "ipv4_eth0", [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/16"]),
        Attribute("inventory", "cpu_cores", float(rnd.choice([1, 2, 4, 8]))),
    ]
    for k in range(30 - len(attrs)):
        value = rnd.randrange(100)
        attrs.append(Attribute("inventory", f"attr_{k:02d}", f"v{value}" if k % 2 else float(value)))
    return attrs


def load(store, n: int, batch: int = 2000) -> float:
    rnd = random.Random(42)
    start = time.perf_counter()
    for first in range(0, n, batch):
        devices = [(f"{i:08d}-0000-4000-8000-000000000000", device_attributes(i, rnd))
                   for i in range(first, min(n, first + batch))]
        store.import_devices("", devices, time.time(), lambda: "etag")
    store.conn.execute("ANALYZE")
    return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def measure_search(client, headers, make_body, runs: int) -> dict:
    rnd = random.Random(7)
    times, totals = [], []
    for _ in range(runs):
        body = make_body(rnd)
        t = time.perf_counter()
        r = client.post(SEARCH, json=body, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.get_json()
        totals.append(int(r.headers["X-Total-Count"]))
    return {"p50_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2),
            "mean_matches": round(statistics.mean(totals))}


def search_benchmark(data_dir: str, n: int, runs: int) -> dict:
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "error", "MENDER_METRICS_ENABLED": False})
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    existing = ctx.db.conn.execute("SELECT count(*) FROM inventory_devices").fetchone()[0]
    load_seconds = load(ctx.services.inventory.store, n) if existing < n else 0.0
    from tests.helpers import Operator
    operator = Operator.create(app, app.test_client())
    client = app.test_client()

    def p(attribute, op, value, scope="inventory"):
        return {"scope": scope, "attribute": attribute, "type": op, "value": value}

    cases = {
        "one predicate ($eq artifact_name, ~1% match)":
            lambda r: {"filters": [p("artifact_name", "$eq", r.choice(ARTIFACTS))]},
        "one predicate ($eq device_type, ~10% match)":
            lambda r: {"filters": [p("device_type", "$eq", r.choice(DEVICE_TYPES))]},
        "three predicates (device_type $eq, mem_total_kB $gte, artifact_name $in)":
            lambda r: {"filters": [p("device_type", "$eq", r.choice(DEVICE_TYPES)),
                                   p("mem_total_kB", "$gte", r.choice(MEMORY[:4])),
                                   p("artifact_name", "$in", r.sample(ARTIFACTS, 5))]},
        "three predicates, sorted by hostname desc":
            lambda r: {"filters": [p("device_type", "$eq", r.choice(DEVICE_TYPES)),
                                   p("kernel", "$ne", r.choice(KERNELS)),
                                   p("artifact_name", "$in", r.sample(ARTIFACTS, 5))],
                       "sort": [{"scope": "inventory", "attribute": "hostname", "order": "desc"}]},
    }
    results = {name: measure_search(client, operator.headers, body, runs) for name, body in cases.items()}
    rows = ctx.db.conn.execute("SELECT count(*) FROM inventory_attributes").fetchone()[0]
    ctx.db.close()
    return {"devices": n, "attribute_rows": rows, "load_seconds": round(load_seconds, 1), "search": results}


# --------------------------------------------------------------------------- PATCH throughput

BARE_APP = '''
from flask import Flask, Response, request
app = Flask(__name__)

@app.route("/api/devices/v1/inventory/device/attributes", methods=["PUT", "PATCH"])
def attributes():
    request.get_json()
    return Response(status=200)


@app.route("/api/internal/v1/useradm/alive")
def alive():  # what the test helper polls to know the server is up
    return Response(status=204)


from common.asgi import AsgiFront
asgi = AsgiFront(app)  # served as the server is: the same front
'''


def _request_bytes(port: int, token: str, body: bytes) -> bytes:
    return (f"PATCH /api/devices/v1/inventory/device/attributes HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _read_response(sock, buf: bytes) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length framed) from a keep-alive socket."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return status, rest[length:]


def _worker(port: int, requests_: list[bytes], seconds: float, threads: int, out: Queue) -> None:
    """A light load generator: prebuilt requests on raw keep-alive sockets to 127.0.0.1 only."""
    import socket

    stop = time.monotonic() + seconds
    counts, errors = [0] * threads, [0] * threads

    def run(k: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        buf, i = b"", k
        try:
            while time.monotonic() < stop:
                sock.sendall(requests_[i % len(requests_)])
                i += threads
                status, buf = _read_response(sock, buf)
                if status == 200:
                    counts[k] += 1
                else:
                    errors[k] += 1
        finally:
            sock.close()

    pool = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((sum(counts), sum(errors)))


def load_generate(base_url: str, tokens, bodies, seconds: float, procs: int = 1, threads: int = 8) -> dict:
    assert base_url.startswith("http://127.0.0.1:"), "the load generator only targets the loopback"
    port = int(base_url.rsplit(":", 1)[1])
    requests_ = [_request_bytes(port, tokens[i % len(tokens)], bodies[i % len(bodies)])
                 for i in range(max(len(tokens), len(bodies)))]
    out: Queue = Queue()
    workers = [Process(target=_worker, args=(port, requests_, seconds, threads, out)) for _ in range(procs)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    results = [out.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    elapsed = time.perf_counter() - start
    ok = sum(r[0] for r in results)
    return {"requests_per_second": round(ok / elapsed, 1), "ok": ok, "errors": sum(r[1] for r in results)}


def device_tokens(data_dir: str, count: int) -> list[str]:
    """Real device tokens: devices authenticate, an operator accepts them (through the Flask app)."""
    from tests.helpers import Operator, accepted_device
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "error"})
    client = app.test_client()
    operator = Operator.create(app, client)
    tokens = [accepted_device(app, operator, client).token for _ in range(count)]
    app.extensions["mender"].db.close()
    return tokens


def inventory_body(i: int, changing: bool) -> bytes:
    attrs = [{"name": "device_type", "value": "raspberrypi4"}, {"name": "artifact_name", "value": "release-1"},
             {"name": "mender_client_version", "value": "3.4.0"}, {"name": "kernel", "value": "5.10.0"},
             {"name": "ipv4_eth0", "value": ["192.168.1.10/24"]}, {"name": "mem_total_kB", "value": "3884084"}]
    attrs += [{"name": f"rootfs_attr_{k}", "value": f"value-{k}"} for k in range(14)]
    if changing:
        attrs.append({"name": "uptime", "value": str(i)})
    return json.dumps(attrs).encode()


def patch_benchmark(seconds: float, workers: int) -> dict:
    from tests.helpers import GunicornServer
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        tokens = device_tokens(data_dir, 50)
        same = [inventory_body(0, False)]
        changing = [inventory_body(i, True) for i in range(1000)]
        env = {"MENDER_LOG_LEVEL": "warning", "MENDER_METRICS_ENABLED": "false"}
        with GunicornServer(data_dir, env=env, workers=workers) as server:
            load_generate(server.url, tokens, same, 5)  # warm up
            results["inventory PATCH, unchanged inventory"] = load_generate(server.url, tokens, same, seconds)
            results["inventory PATCH, one attribute changes"] = load_generate(server.url, tokens, changing, seconds)
            results["inventory PATCH, unchanged inventory (again)"] = load_generate(server.url, tokens, same,
                                                                                   seconds)
        bare_dir = os.path.join(tmp, "bare")
        os.makedirs(bare_dir)
        with open(os.path.join(bare_dir, "bench_bare_app.py"), "w") as f:
            f.write(BARE_APP)
        bare = GunicornServer(data_dir, env={**env, "PYTHONPATH": bare_dir}, workers=workers,
                              app="bench_bare_app:asgi")
        with bare:
            load_generate(bare.url, tokens, same, 5)
            results["bare Flask endpoint"] = load_generate(bare.url, tokens, same, seconds)
    base = results["bare Flask endpoint"]["requests_per_second"] or 1
    for key in list(results):
        results[key]["ratio_to_bare"] = round(results[key]["requests_per_second"] / base, 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-patch", action="store_true")
    parser.add_argument("--data-dir", help="keep (and reuse) the search data set here instead of a temporary one")
    args = parser.parse_args()
    report = {}
    if not args.skip_search:
        if args.data_dir:
            report["search"] = search_benchmark(args.data_dir, args.devices, args.runs)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                report["search"] = search_benchmark(tmp, args.devices, args.runs)
        print(json.dumps(report["search"], indent=2), flush=True)
    if not args.skip_patch:
        report["patch"] = patch_benchmark(args.seconds, args.workers)
        print(json.dumps(report["patch"], indent=2), flush=True)


if __name__ == "__main__":
    main()
