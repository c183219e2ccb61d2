"""Failure insight benchmark (a script, not a test).

A deployment to 100,000 devices with 30 attributes each (bench/inventory_search.py's fleet) on
SQLite, seeded through the stores' bulk paths (inventory's import_devices; the deployments store's
inserts inside one transaction): 20 % of the devices failed, kernel 5.3.0 fails at 60 % and every
other value at ~15 %; failed devices carry a deployment log. Then the insight, through the service,
with every inventory attribute and with three named ones: wall time p50/max over the rounds,
against a baseline measured in the same run (one scan of the deployment's device deployments: the
least any insight reads), and a check that the culprit ranks first.

    .venv/bin/python -m bench.deployments_insights [--devices 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.inventory_search import device_attributes  # noqa: E402
from common.app import create_app  # noqa: E402
from deployments import model as m  # noqa: E402
from deployments.model import Deployment, DeviceDeployment  # noqa: E402

CULPRIT = "5.3.0"


class _Artifacts:
    """The one artifact the deployment names (the insight never reads artifacts)."""

    def find_by_name(self, tenant, name):
        return []


def seed(app, n: int) -> tuple[str, float]:
    ctx = app.extensions["mender"]
    ctx.migrate_all()
    inventory = ctx.services.inventory.store
    deployments = ctx.services.deployments.store
    rnd = random.Random(42)
    t0 = time.perf_counter()
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(n)]
    kernels = {}
    for first in range(0, n, 2000):
        batch = []
        for i in range(first, min(n, first + 2000)):
            attrs = device_attributes(i, rnd)
            kernels[ids[i]] = next(a.value for a in attrs if a.name == "kernel")
            batch.append((ids[i], attrs))
        inventory.import_devices("", batch, time.time(), lambda: "etag")
    inventory.conn.execute("ANALYZE")

    now = time.time()
    dep = Deployment(id=str(uuid.uuid4()), tenant_id="", name="bench", artifact_name="release-new", created=now,
                     status=m.DEPLOYMENT_INPROGRESS, max_devices=n, checksum=uuid.uuid4().hex,
                     stats={s: 0 for s in m.DEVICE_STATUSES})
    deployments.insert_deployment(dep, ids)
    stats = {m.SUCCESS: 0, m.FAILURE: 0}
    with deployments.transaction():
        for i, device_id in enumerate(ids):
            rate = 0.6 if kernels[device_id] == CULPRIT else 0.15
            status = m.FAILURE if rnd.random() < rate else m.SUCCESS
            stats[status] += 1
            dd = DeviceDeployment(id=str(uuid.uuid4()), tenant_id="", deployment_id=dep.id, device_id=device_id,
                                  created=now, started=now, finished=now, status=status,
                                  device_type=f"board-{i % 10}", previous_artifact=f"release-{i % 50}",
                                  log=status == m.FAILURE)
            deployments.insert_device_deployment(dd)
            if status == m.FAILURE:
                deployments.save_log("", dep.id, device_id, [
                    {"timestamp": "2026-01-01T00:00:00Z", "level": "info", "message": f"step {k}"} for k in range(18)
                ] + [{"timestamp": "2026-01-01T00:00:00Z", "level": "error",
                      "message": f"flash write failed at 0x{rnd.randrange(1 << 24):06x} on /dev/mmcblk{i % 3}p2"},
                     {"timestamp": "2026-01-01T00:00:00Z", "level": "error", "message": "rollback: exit status 1"}])
    deployments.replace_stats("", dep.id, stats)
    deployments.db.conn.execute("ANALYZE")
    return dep.id, time.perf_counter() - t0


def timed(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-insights-") as tmp:
        app = create_app({"MENDER_DATA_DIR": tmp, "MENDER_DB_URL": "sqlite:///" + os.path.join(tmp, "mender.db"),
                          "MENDER_LOG_LEVEL": "warning"})
        ctx = app.extensions["mender"]
        ctx.services.artifacts = _Artifacts()
        dep_id, seeded = seed(app, args.devices)
        svc = ctx.services.deployments
        conn = svc.store.db.conn

        def baseline():
            conn.execute("SELECT device_id, status FROM device_deployments WHERE tenant_id='' AND deployment_id=?",
                         (dep_id,)).fetchall()

        result = svc.insights("", dep_id)
        top = result.breakdowns[0]
        assert (top.attribute, top.value) == ("kernel", CULPRIT), top
        base = timed(baseline, args.rounds)
        every = timed(lambda: svc.insights("", dep_id), args.rounds)
        named = timed(lambda: svc.insights("", dep_id, attributes=["kernel", "attr_00", "cpu_cores"]), args.rounds)
        report = {
            "devices": args.devices, "attributes_per_device": 30, "failed": result.failed,
            "seed_seconds": round(seeded, 1), "load_average": os.getloadavg()[0],
            "baseline_scan_p50_s": round(statistics.median(base), 3),
            "insight_all_attributes_p50_s": round(statistics.median(every), 3),
            "insight_all_attributes_max_s": round(max(every), 3),
            "insight_three_named_p50_s": round(statistics.median(named), 3),
            "ratio_all_to_baseline": round(statistics.median(every) / statistics.median(base), 1),
            "top": {"attribute": top.attribute, "value": top.value, "failure_rate": top.failure_rate,
                    "failure_rate_elsewhere": top.failure_rate_elsewhere, "score": top.score},
            "error_lines": [(e.pattern, e.devices) for e in result.error_lines[:3]],
        }
        print(json.dumps(report, indent=1))
        ctx.shutdown()
        ctx.db.close()


if __name__ == "__main__":
    main()
