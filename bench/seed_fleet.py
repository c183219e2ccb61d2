"""Seed a fleet into the database (a script, not a test): N accepted devices, each with its auth
set (an Ed25519 key derived from its number, so `bench/fleet.py --seeded` can sign as it) and a
realistic inventory (30 attributes: identity, system with a group, inventory, two tags), through
the stores' bulk paths (devauth's and inventory's `import_devices`), batch by batch.

    .venv/bin/python -m bench.seed_fleet --data-dir /tmp/fleet-1m --devices 1000000
    .venv/bin/python -m bench.seed_fleet --db-url mongodb://host/mender --devices 1000000

Repeatable: devices that exist are skipped (by identity in devauth, by id in inventory), so an
interrupted run is finished by running it again; `--start` seeds a further range.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from bench.inventory_search import ARTIFACTS, DEVICE_TYPES, KERNELS, MEMORY  # noqa: E402
from devauth import crypto  # noqa: E402
from devauth.model import ACCEPTED, AuthSet, Device  # noqa: E402
from inventory.model import Attribute  # noqa: E402

GROUPS = [f"group-{i}" for i in range(8)]
SITES = [f"site-{i}" for i in range(40)]


def seeded_key(i: int) -> ed25519.Ed25519PrivateKey:
    """Device i's private key (derived from i: the fleet simulator signs with the same)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mender-seed-fleet/%d" % i).digest())


def seeded_identity(i: int) -> dict:
    """Device i's identity data (as bench/fleet.py's simulated device i)."""
    return {"mac": f"02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            "sn": f"fleet-{i}"}


def seeded_device_id(i: int) -> str:
    """Device ids in seeding order: the stores' B-trees are appended to, as a fleet growing over time."""
    return str(uuid.UUID(int=(0x5EED << 112) | i))


def seeded_pubkey(i: int) -> str:
    return seeded_key(i).public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def inventory_attributes(i: int, identity: dict, rnd: random.Random, ts: str) -> list[Attribute]:
    """30 attributes: identity (mac, sn, status), system (status, created/updated, group),
    inventory (21, as a Mender client reports), tags (2)."""
    attrs = [Attribute("identity", k, v) for k, v in identity.items()]
    attrs += [
        Attribute("identity", "status", ACCEPTED),
        Attribute("system", "status", ACCEPTED),
        Attribute("system", "created_ts", ts),
        Attribute("system", "updated_ts", ts),
        Attribute("system", "group", GROUPS[i % len(GROUPS)]),
        Attribute("tags", "site", rnd.choice(SITES)),
        Attribute("tags", "owner", f"team-{i % 5}"),
        Attribute("inventory", "device_type", rnd.choice(DEVICE_TYPES)),
        Attribute("inventory", "artifact_name", rnd.choice(ARTIFACTS)),
        Attribute("inventory", "kernel", rnd.choice(KERNELS)),
        Attribute("inventory", "mem_total_kB", rnd.choice(MEMORY)),
        Attribute("inventory", "hostname", f"host-{i:07d}"),
        Attribute("inventory", "ipv4_eth0", [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/8"]),
        Attribute("inventory", "cpu_cores", float(rnd.choice([1, 2, 4, 8]))),
        Attribute("inventory", "mender_client_version", "3.4.0"),
    ]
    for k in range(30 - len(attrs)):
        value = rnd.randrange(100)
        attrs.append(Attribute("inventory", f"attr_{k:02d}", f"v{value}" if k % 2 else float(value)))
    return attrs


def batch(start: int, stop: int, tenant: str, now: float, rnd: random.Random):
    """The devauth (device, auth set) pairs and the inventory (id, attributes) of devices start..stop-1."""
    from common.clock import rfc3339_ms
    ts = rfc3339_ms(now)
    pairs, inventory = [], []
    for i in range(start, stop):
        identity = seeded_identity(i)
        device_id = seeded_device_id(i)
        id_hash = crypto.identity_hash(identity)
        device = Device(id=device_id, tenant_id=tenant, id_data=crypto.canonical_json(identity), id_hash=id_hash,
                        status=ACCEPTED, created_ts=now, updated_ts=now)
        auth_set = AuthSet(id=str(uuid.UUID(int=(0xA5E7 << 112) | i)), tenant_id=tenant, device_id=device_id,
                           id_hash=id_hash, pubkey=seeded_pubkey(i), status=ACCEPTED, ts=now)
        pairs.append((device, auth_set))
        inventory.append((device_id, inventory_attributes(i, identity, rnd, ts)))
    return pairs, inventory


def seed(ctx, devices: int, start: int = 0, tenant: str = "", batch_size: int = 5000,
         progress=None) -> dict:
    """Seed devices start..start+devices-1 through the app context's stores; the counts and rate."""
    ctx.ensure_migrated()
    devauth_store = ctx.services.devauth._store
    inventory_store = ctx.services.inventory.store
    rnd = random.Random(start)
    t0 = time.perf_counter()
    created = 0
    for first in range(start, start + devices, batch_size):
        last = min(start + devices, first + batch_size)
        now = ctx.clock.now()
        pairs, inventory = batch(first, last, tenant, now, rnd)
        # devauth first: a device accepted there without its inventory is finished by a rerun,
        # which imports the inventory of every id of the batch (existing ones are skipped)
        created += len(devauth_store.import_devices(tenant, pairs))
        inventory_store.import_devices(tenant, inventory, now, lambda: uuid.uuid4().hex)
        if progress:
            progress(last - start, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    return {"devices": devices, "created": created, "seconds": round(seconds, 1),
            "devices_per_second": round(devices / seconds) if seconds else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=0, help="number of the first device (to add a further range)")
    ap.add_argument("--data-dir", help="MENDER_DATA_DIR (SQLite database and files)")
    ap.add_argument("--db-url", help="MENDER_DB_URL (e.g. mongodb://host/mender); default SQLite in --data-dir")
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    if not args.data_dir and not args.db_url:
        ap.error("give --data-dir or --db-url")
    from common.app import create_app
    config = {"MENDER_LOG_LEVEL": "error", "MENDER_METRICS_ENABLED": False}
    if args.data_dir:
        config["MENDER_DATA_DIR"] = args.data_dir
    if args.db_url:
        config["MENDER_DB_URL"] = args.db_url
    app = create_app(config)
    ctx = app.extensions["mender"]

    def progress(done, seconds):
        if done % 100_000 < args.batch or done == args.devices:
            print(f"{done:,} devices in {seconds:.0f}s ({done / seconds:,.0f}/s)", flush=True)

    result = seed(ctx, args.devices, args.start, batch_size=args.batch, progress=progress)
    if ctx.db.kind == "sqlite":
        t = time.perf_counter()
        ctx.db.conn.execute("ANALYZE")  # the planner's statistics, as an operator runs after a bulk load
        result["analyze_seconds"] = round(time.perf_counter() - t, 1)
        result["database_bytes"] = sum(os.path.getsize(ctx.db.path + s) for s in ("", "-wal")
                                       if os.path.exists(ctx.db.path + s))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
