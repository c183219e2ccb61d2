"""The wave's device writes over HTTP under gunicorn, served as direct routes and through their
Flask views (MENDER_DIRECT_ROUTES=false), in one run with interleaved bursts: the server CPU per
request (the master's and the worker's, from /proc) and the rate.

    .venv/bin/python -m bench.device_writes_http [--rounds 5 --seconds 3]

Bursts: a status report (`downloading`, repeated: a device may repeat its current status), an
inventory upload (PUT of the fleet simulator's four attributes, unchanged after the first), a
re-authentication (Ed25519; each device of that burst only). Both servers run the default
gunicorn.conf.py with one worker pinned to CPU 0, the load generator on CPU 1. In-process figures
of the same requests, with real state changes: bench/device_writes.py."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile

import requests

from bench.fleet import SimDevice, inventory_of, make_artifact, provision
from bench.lib import Server, closed_loop, interleaved, machine, table

AUTH = "/api/devices/v1/authentication/auth_requests"
NEXT = "/api/devices/v1/deployments/device/deployments/next"
STATUS = "/api/devices/v1/deployments/device/deployments/{}/status"
INVENTORY = "/api/devices/v1/inventory/device/attributes"


def _prepare(server: Server, data_dir: str, tmp: str, n: int) -> tuple[list[SimDevice], list[SimDevice], str]:
    """(devices with an assigned deployment, devices for the auth burst, the deployment id)."""
    devices = [SimDevice(i) for i in range(2 * n)]
    token = provision(server.url, data_dir, devices)
    for d in devices:
        r = requests.post(server.url + AUTH, data=d.body, timeout=30,
                          headers={"Content-Type": "application/json", "X-MEN-Signature": d.signature})
        assert r.status_code == 200, r.text
        d.token = r.text
    writers, authers = devices[:n], devices[n:]
    artifact = make_artifact(tmp, "bench-writes", "fleet-device")
    headers = {"Authorization": f"Bearer {token}"}
    r = requests.post(server.url + "/api/management/v1/deployments/artifacts", headers=headers, timeout=60,
                      files={"size": (None, str(len(artifact))), "artifact": ("a.mender", artifact)})
    assert r.status_code == 201, r.text
    ids = [json.loads(base64.urlsafe_b64decode(d.token.split(".")[1] + "=="))["sub"] for d in writers]
    r = requests.post(server.url + "/api/management/v1/deployments/deployments", headers=headers, timeout=60,
                      json={"name": "bench", "artifact_name": "bench-writes", "devices": ids})
    assert r.status_code == 201, r.text
    dep = r.headers["Location"].rsplit("/", 1)[1]
    for d in writers:
        r = requests.get(server.url + NEXT, params={"artifact_name": "factory-image", "device_type": "fleet-device"},
                         headers={"Authorization": f"Bearer {d.token}"}, timeout=30)
        assert r.status_code == 200, r.text
        r = requests.put(server.url + STATUS.format(dep), json={"status": "downloading"},
                         headers={"Authorization": f"Bearer {d.token}"}, timeout=30)
        assert r.status_code == 204, r.text
    return writers, authers, dep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    cpus = None
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})
        cpus = [0]
    tmp = tempfile.mkdtemp(prefix="bench-writes-http-")
    servers = {mode: Server("wsgi:app", os.path.join(tmp, mode), workers=1, cpus=cpus,
                            env={"MENDER_DIRECT_ROUTES": "true" if mode == "direct" else "false"})
               for mode in ("direct", "flask")}
    with servers["direct"], servers["flask"]:
        bursts = {}
        for mode, server in servers.items():
            writers, authers, dep = _prepare(server, os.path.join(tmp, mode), tmp, args.connections)

            def burst(name, request, server=server):
                return lambda: asyncio.run(closed_loop(name, request, connections=args.connections,
                                                       seconds=args.seconds, server=server, ok=(200, 204)))

            async def status(session, i, server=server, writers=writers, dep=dep):
                d = writers[i % len(writers)]
                async with session.put(server.url + STATUS.format(dep), json={"status": "downloading"},
                                       headers={"Authorization": f"Bearer {d.token}"}) as resp:
                    await resp.read()
                    return resp.status

            async def inventory(session, i, server=server, writers=writers):
                d = writers[i % len(writers)]
                async with session.put(server.url + INVENTORY, json=inventory_of(d),
                                       headers={"Authorization": f"Bearer {d.token}"}) as resp:
                    await resp.read()
                    return resp.status

            async def auth(session, i, server=server, authers=authers):
                d = authers[i % len(authers)]
                async with session.post(server.url + AUTH, data=d.body, headers={
                        "Content-Type": "application/json", "X-MEN-Signature": d.signature}) as resp:
                    await resp.read()
                    return resp.status

            bursts[f"status report, {mode}"] = burst("status", status)
            bursts[f"inventory upload, {mode}"] = burst("inventory", inventory)
            bursts[f"auth request, {mode}"] = burst("auth", auth)
        # the ratio column is each burst's rate against the first (the direct status report)
        results = interleaved(bursts, "status report, direct", args.rounds)
    print(f"machine: {machine()}; gunicorn asgi × 1 worker, default threads, server on CPU 0, "
          f"load generator on CPU 1; {args.rounds} rounds × {args.seconds}s; ratio: to the direct status report")
    print(table(results))


if __name__ == "__main__":
    main()
