"""Seed a fleet straight through the stores' bulk paths (one transaction per store), before the
server starts: thousands of accepted devices with identity and inventory in about a second."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

from common.app import create_app
from devauth.model import AuthSet, Device
from inventory.model import Attribute

FLEET_TYPE = "fleet-board"


def seed_fleet(data_dir: str, count: int, prefix: str = "fleet") -> list[str]:
    """`count` accepted devices (identity mac and sn, inventory device_type FLEET_TYPE, artifact_name,
    site, hostname); returns their ids."""
    umask = os.umask(0o077)
    os.umask(umask)
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
    os.umask(umask)  # create_app tightens the process's umask: not the test process's business
    ctx = app.extensions["mender"]
    ctx.migrate_all()
    devauth, inventory = ctx.services.devauth._store, ctx.services.inventory.store
    now = time.time()
    ids, rows = [], []
    with devauth.transaction():
        for i in range(count):
            device_id = str(uuid.uuid4())
            identity = {"mac": f"02:f1:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:00", "sn": f"{prefix}-{i:05d}"}
            id_data = json.dumps(identity, sort_keys=True, separators=(",", ":"))
            id_hash = hashlib.sha256(id_data.encode()).hexdigest()
            devauth.insert_device(Device(id=device_id, tenant_id="", id_data=id_data, id_hash=id_hash,
                                         status="accepted", created_ts=now, updated_ts=now))
            devauth.insert_auth_set(AuthSet(id=str(uuid.uuid4()), tenant_id="", device_id=device_id, id_hash=id_hash,
                                            pubkey=f"seeded key {i}", status="accepted", ts=now))
            ids.append(device_id)
            rows.append((device_id, [
                Attribute("identity", "mac", identity["mac"]), Attribute("identity", "sn", identity["sn"]),
                Attribute("inventory", "device_type", FLEET_TYPE), Attribute("inventory", "artifact_name", "factory-image"),
                Attribute("inventory", "site", f"site-{i % 5}"), Attribute("inventory", "hostname", f"{prefix}-{i:05d}.lan")]))
    inventory.import_devices("", rows, now, lambda: str(uuid.uuid4()))
    inventory.set_status("", [(i, None) for i in ids], "accepted")
    ctx.db.close()
    return ids
