"""Device polls (`deployments/next`, the 204 and the 200 case) against a bare Flask endpoint
served by the same gunicorn settings, measured in one run with interleaved bursts.

    .venv/bin/python -m bench.deployments_next [--rounds 5 --seconds 3 --workers 1]

The server (and the baseline) run pinned to CPU 0, the load generator to CPU 1."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile

import requests

from bench.fleet import SimDevice, make_artifact, provision
from bench.lib import Server, closed_loop, interleaved, machine, table
from common.config import default_threads, load_config

NEXT = "/api/devices/v2/deployments/device/deployments/next"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--worker-class", default="asgi", help="asgi (the default model) or gthread")
    ap.add_argument("--threads", type=int, default=0,
                    help="app threads per worker (default: the server's, MENDER_WORKER_THREADS)")
    ap.add_argument("--db-url", default="")
    args = ap.parse_args()
    args.threads = args.threads or default_threads(load_config({"MENDER_DB_URL": args.db_url}, environ={}))
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})
        cpus = [0]
    else:
        cpus = None
    tmp = tempfile.mkdtemp(prefix="bench-next-")
    env = {"MENDER_DB_URL": args.db_url} if args.db_url else {}
    opts = dict(workers=args.workers, worker_class=args.worker_class, threads=args.threads, cpus=cpus)
    bare = Server("bench.bare_app:app", os.path.join(tmp, "bare"), **opts)
    server = Server("wsgi:app", os.path.join(tmp, "server"), env=env, **opts)
    with bare, server:
        devices = [SimDevice(i) for i in range(2 * args.connections)]
        token = provision(server.url, os.path.join(tmp, "server"), devices)
        for d in devices:
            r = requests.post(server.url + "/api/devices/v1/authentication/auth_requests", data=d.body, timeout=30,
                              headers={"Content-Type": "application/json", "X-MEN-Signature": d.signature})
            assert r.status_code == 200, r.text
            d.token = r.text
        idle, updating = devices[:args.connections], devices[args.connections:]
        artifact = make_artifact(tmp, "bench-next", "fleet-device")
        headers = {"Authorization": f"Bearer {token}"}
        r = requests.post(server.url + "/api/management/v1/deployments/artifacts", headers=headers, timeout=60,
                          files={"size": (None, str(len(artifact))), "artifact": ("a.mender", artifact)})
        assert r.status_code == 201, r.text
        ids = [json.loads(__import__("base64").urlsafe_b64decode(d.token.split(".")[1] + "=="))["sub"]
               for d in updating]
        r = requests.post(server.url + "/api/management/v1/deployments/deployments", headers=headers, timeout=60,
                          json={"name": "bench", "artifact_name": "bench-next", "devices": ids})
        assert r.status_code == 201, r.text

        def poller(devs, expect):
            async def request(session, i):
                d = devs[i % len(devs)]
                async with session.post(server.url + NEXT, headers={"Authorization": f"Bearer {d.token}"},
                                        json={"device_provides": {"artifact_name": "factory-image",
                                                                  "device_type": "fleet-device"},
                                              "update_control_map": True}) as resp:
                    await resp.read()
                    return resp.status if resp.status == expect else -resp.status
            return lambda: asyncio.run(closed_loop(f"next-{expect}", request, connections=args.connections,
                                                   seconds=args.seconds, server=server, ok=(expect,)))

        async def hello(session, i):
            async with session.get(bare.url + "/hello") as resp:
                await resp.read()
                return resp.status

        bursts = {
            "bare Flask /hello": lambda: asyncio.run(closed_loop("hello", hello, connections=args.connections,
                                                                 seconds=args.seconds, server=bare)),
            "next → 204 (nothing pending)": poller(idle, 204),
            "next → 200 (deployment pending)": poller(updating, 200),
        }
        results = interleaved(bursts, "bare Flask /hello", args.rounds)
    print(f"machine: {machine()}; gunicorn {args.worker_class} × {args.workers} worker(s), "
          f"{args.threads} threads, server on CPU 0, load generator on CPU 1; {args.rounds} rounds × {args.seconds}s")
    print(table(results))


if __name__ == "__main__":
    main()
