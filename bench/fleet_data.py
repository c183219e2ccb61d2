"""What a fleet in the database costs (a script, not a test), on a database seeded by
bench/seed_fleet.py: size on disk per device, the time of migrations that touch the device
table, server startup, and through the running server (real HTTP): a dynamic deployment matching
half the fleet, its statistics and its per-device list, an inventory search with three predicates
and a sort, and the UI's dashboard and device list measured in Chromium.

    .venv/bin/python -m bench.fleet_data --data-dir /tmp/fleet-1m [--runs 20] [--no-browser]

The database is changed only by what a server does (migrations, the operator, the deployment);
the migration timings below run inside a transaction that is rolled back. Only 127.0.0.1 is
targeted; the server is stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

from bench.lib import ROOT, Server, machine
from bench.fleet import EMAIL, PASSWORD, make_artifact

SEARCH = "/api/management/v2/inventory/filters/search"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
THREE = {"page": 1, "per_page": 20,
         "filters": [{"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": "board-3"},
                     {"scope": "inventory", "attribute": "mem_total_kB", "type": "$gte", "value": 1024},
                     {"scope": "tags", "attribute": "site", "type": "$in",
                      "value": ["site-1", "site-2", "site-3", "site-4", "site-5"]}],
         "sort": [{"scope": "inventory", "attribute": "hostname", "order": "desc"}]}


def varied(seed: int, run: int) -> dict:
    """The three-predicate search with other values in every run (a device type, a memory
    threshold, 5 of the 40 sites, picked from the seed and the run's number): no two runs ask the
    same (a cache answering repeats would not help), and each invocation asks other ones."""
    rnd = random.Random(f"{seed}/{run}")
    body = json.loads(json.dumps(THREE))
    body["filters"][0]["value"] = f"board-{rnd.randrange(10)}"
    body["filters"][1]["value"] = rnd.choice([512, 1024, 2048])
    body["filters"][2]["value"] = [f"site-{k}" for k in sorted(rnd.sample(range(40), 5))]
    return body


def exact_totals(data_dir: str, bodies: list[dict]) -> list[dict]:
    """The searches' exact counts (what an estimate is compared with), in-process."""
    from common.app import create_app
    from inventory.query import parse_search_params
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "error", "MENDER_METRICS_ENABLED": False})
    out = []
    with app.app_context():
        for body in bodies:
            query = parse_search_params(body)
            t = time.perf_counter()
            total = app.extensions["mender"].services.inventory.store.search("", query.conds, [], 0, 1)[1]
            out.append({"total": total, "ms": round((time.perf_counter() - t) * 1000, 1)})
    return out


def join_devices(data_dir: str, deployment_id: str, devices: int) -> dict:
    """`devices` of the seeded devices the dynamic deployment's filter matches (groups 0-3: device
    i is in group i % 8) join it, in-process, through the store write a poll's join makes (one
    transaction per device: the device deployment, the deployment's count, its statistics)."""
    from bench.seed_fleet import seeded_device_id
    from common.app import create_app
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "error", "MENDER_METRICS_ENABLED": False})
    svc = app.extensions["mender"].services.deployments
    t = time.perf_counter()
    joined = 0
    with app.app_context():
        dep = svc.store.get_deployment("", deployment_id)
        i = 0
        while joined < devices:
            if i % 8 < 4:
                dd = svc._new_device_deployment(dep, seeded_device_id(i), "board-1", None)
                outcome, _ = svc.store.assign_device("", dep, None, dd)
                joined += outcome == "assigned"
            i += 1
    return {"joined": joined, "s": round(time.perf_counter() - t, 1)}


def pct(values: list[float], p: float) -> float:
    """The nearest-rank percentile (the p95 of 20 runs is the 19th, not the maximum)."""
    values = sorted(values)
    return round(values[max(0, min(len(values), math.ceil(p / 100 * len(values))) - 1)], 1)


def timed(fn, runs: int) -> dict:
    times, last = [], None
    for _ in range(runs):
        t = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "max_ms": round(max(times), 1), "last": last}


def on_disk(data_dir: str) -> dict:
    path = os.path.join(data_dir, "mender.db")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    devices = conn.execute("SELECT count(*) FROM devauth_devices").fetchone()[0]
    rows = conn.execute("SELECT count(*) FROM inventory_attributes").fetchone()[0]
    size = os.path.getsize(path)
    out = {"devices": devices, "inventory_rows": rows, "database_bytes": size,
           "bytes_per_device": round(size / devices) if devices else None}
    # migrations that touch the device table, timed and rolled back: a column added (what devauth's
    # migration 3 does), an index built over every device, every device row rewritten
    for name, sql in (("add_column", "ALTER TABLE devauth_devices ADD COLUMN bench_x TEXT"),
                      ("create_index", "CREATE INDEX bench_idx ON devauth_devices (tenant_id, check_in_time)"),
                      ("rewrite_every_row", "UPDATE devauth_devices SET updated_ts = updated_ts + 0")):
        conn.execute("BEGIN IMMEDIATE")
        t = time.perf_counter()
        conn.execute(sql)
        out[f"migration_{name}_s"] = round(time.perf_counter() - t, 2)
        conn.execute("ROLLBACK")
    conn.close()
    return out


def migrate(data_dir: str) -> float:
    """The server's own pending migrations (e.g. devauth 3 on a database seeded before it), timed."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "migrate"], cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "MENDER_DATA_DIR": data_dir})
    return round(time.perf_counter() - t, 2)


def browser_loads(url: str, runs: int) -> dict:
    from playwright.sync_api import sync_playwright
    from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS
    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=url, viewport={"width": 1360, "height": 900})
        context.set_default_timeout(60000)
        page = context.new_page()
        page.goto("/")
        page.fill("#login-email", EMAIL)
        page.fill("#login-password", PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_selector("#logout")

        finished: list = []
        page.on("requestfinished", lambda request: finished.append(request))

        def load(route: str, ready: str):
            def go():
                page.goto("about:blank")
                finished.clear()
                page.goto(route)
                page.wait_for_selector(ready)
                # the browser's network log: the slowest API requests of this load
                slowest = sorted(((r.timing["responseEnd"], r.method, r.url.split(url, 1)[-1]) for r in finished
                                  if "/api/" in r.url and r.timing.get("responseEnd", -1) >= 0), reverse=True)
                return [f"{ms:.0f} ms {method} {path}" for ms, method, path in slowest[:6]]
            return go

        out["dashboard"] = timed(load("/#/", ".stat-card.stat-accepted .stat-value:not(:text('—'))"), runs)
        out["device_list"] = timed(load("/#/devices?status=accepted", "tr[data-device-id]"), runs)

        # a first visit: the same session in a new context each time, so nothing is cached
        session = context.storage_state()

        def cold():
            fresh = browser.new_context(base_url=url, viewport={"width": 1360, "height": 900}, storage_state=session)
            fresh.set_default_timeout(60000)
            try:
                p = fresh.new_page()
                p.goto("/#/devices?status=accepted")
                p.wait_for_selector("tr[data-device-id]")
            finally:
                fresh.close()
            return []

        out["device_list_first_visit"] = timed(cold, runs)
        for v in out.values():
            v["slowest_requests_last_run"] = v.pop("last")
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--browser-only", action="store_true", help="only the UI's loads in Chromium")
    ap.add_argument("--seed", type=int, default=int(time.time()), help="of the varied searches (default: the time)")
    ap.add_argument("--joined", type=int, default=100_000,
                    help="devices joined to the dynamic deployment before its per-device list is measured again")
    ap.add_argument("--json", help="write the results to this file as well")
    args = ap.parse_args()
    import requests

    report: dict = {"machine": machine(), "seed": args.seed, "load_average_start": os.getloadavg()}
    report["migrate_s"] = migrate(args.data_dir)
    if not args.browser_only:
        report["disk"] = on_disk(args.data_dir)
    print(json.dumps(report), flush=True)
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "useradm", "create-user", "--email", EMAIL,
                    "--password", PASSWORD], cwd=ROOT, capture_output=True,
                   env={**os.environ, "MENDER_DATA_DIR": args.data_dir})
    server = Server("wsgi:app", args.data_dir, workers=args.workers)
    t = time.monotonic()
    with server:
        report["startup_s"] = round(time.monotonic() - t, 2)
        s = requests.Session()
        token = s.post(f"{server.url}/api/management/v1/useradm/auth/login", auth=(EMAIL, PASSWORD), timeout=60).text
        s.headers["Authorization"] = f"Bearer {token}"
        if args.browser_only:
            report["browser"] = browser_loads(server.url, max(5, args.runs // 2))
            report["load_average_end"] = os.getloadavg()
            print(json.dumps(report, indent=1))
            return
        tmp = tempfile.mkdtemp(prefix="fleet-data-")
        artifact = make_artifact(tmp, "fleet-half", "board-1")
        r = s.post(f"{server.url}/api/management/v1/deployments/artifacts", files={"artifact": ("a.mender", artifact)},
                   data={"size": str(len(artifact))}, timeout=120)
        assert r.status_code in (201, 409), r.text

        half = [{"scope": "system", "attribute": "group", "type": "$in", "value": [f"group-{i}" for i in range(4)]}]
        t = time.perf_counter()
        r = s.post(f"{server.url}{DEPLOYMENTS}", json={"name": f"half-{time.time():.0f}", "artifact_name": "fleet-half",
                                                       "filter": half}, timeout=300)
        created_ms = (time.perf_counter() - t) * 1000
        assert r.status_code == 201, r.text
        dep_id = r.headers["Location"].rsplit("/", 1)[1]
        dep = s.get(f"{server.url}{DEPLOYMENTS}/{dep_id}", timeout=60).json()
        report["dynamic_deployment"] = {"create_ms": round(created_ms, 1),
                                        "initial_device_count": dep.get("initial_device_count")}
        t = time.perf_counter()
        r = s.post(f"{server.url}{DEPLOYMENTS}", json={"name": f"all-{time.time():.0f}", "artifact_name": "fleet-half",
                                                       "all_devices": True}, timeout=300)
        report["all_devices_deployment"] = {"status": r.status_code, "ms": round((time.perf_counter() - t) * 1000, 1),
                                            "answer": r.text[:200]}

        def get(path):
            def go():
                r = s.get(server.url + path, timeout=60)
                assert r.status_code == 200, r.text
                return r.headers.get("X-Total-Count")
            return go

        report["statistics"] = timed(get(f"{DEPLOYMENTS}/{dep_id}/statistics"), args.runs)
        report["device_list_first_page"] = timed(get(f"{DEPLOYMENTS}/{dep_id}/devices/list?page=1&per_page=20"),
                                                 args.runs)
        if args.joined:
            # the same after `--joined` devices joined it (a list of that many device rows)
            report["dynamic_deployment"]["join"] = join_devices(args.data_dir, dep_id, args.joined)
            report["statistics_joined"] = timed(get(f"{DEPLOYMENTS}/{dep_id}/statistics"), args.runs)
            report["device_list_first_page_joined"] = timed(
                get(f"{DEPLOYMENTS}/{dep_id}/devices/list?page=1&per_page=20"), args.runs)
            report["device_list_pending_first_page_joined"] = timed(
                get(f"{DEPLOYMENTS}/{dep_id}/devices/list?status=pending&page=1&per_page=20"), args.runs)
        report["deployments_list_first_page"] = timed(get(f"{DEPLOYMENTS}?page=1&per_page=20"), args.runs)
        report["devices_list_first_page"] = timed(get("/api/management/v2/devauth/devices?status=accepted&page=1"
                                                      "&per_page=20"), args.runs)

        def search_body(body):
            def go():
                r = s.post(server.url + SEARCH, json=body, timeout=120)
                assert r.status_code == 200, r.text
                return f"{r.headers.get('X-Total-Count')}{' (estimated)' if r.headers.get('X-Total-Count-Estimated') else ''}"
            return go

        report["search_three_predicates_sorted"] = timed(search_body(THREE), args.runs)
        answers: list[str] = []
        runs = iter(range(args.runs))
        report["search_three_predicates_sorted_varied"] = timed(
            lambda: answers.append(search_body(varied(args.seed, next(runs)))()), args.runs)
        report["search_three_predicates_sorted_varied"]["last"] = answers
        report["search_one_predicate"] = timed(search_body({"page": 1, "per_page": 20, "filters": [
            {"scope": "inventory", "attribute": "artifact_name", "type": "$eq", "value": "release-7"}]}), args.runs)
        accepted = {"scope": "identity", "attribute": "status", "type": "$eq", "value": "accepted"}
        # the UI's device list: accepted devices, first page (a count of the whole fleet)
        report["search_accepted_first_page"] = timed(search_body({"page": 1, "per_page": 20, "filters": [accepted]}),
                                                     args.runs)
        # the whole fleet by an attribute, descending (a walk of its value index)
        report["search_all_sorted"] = timed(search_body({"page": 1, "per_page": 20, "sort": [
            {"scope": "inventory", "attribute": "hostname", "order": "desc"}]}), args.runs)
        if not args.no_browser:
            report["browser"] = browser_loads(server.url, max(5, args.runs // 2))
        # the dynamic deployment is aborted: a later run (or bench/fleet.py's polls) is not
        # measured with one more active deployment matching half the fleet
        r = s.put(f"{server.url}{DEPLOYMENTS}/{dep_id}/status", json={"status": "aborted"}, timeout=300)
        report["dynamic_deployment"]["abort_status"] = r.status_code
        report["server_cpu_s"] = round(server.cpu_seconds(), 1)
    report["search_three_predicates_exact_count"] = exact_totals(args.data_dir, [THREE])[0]
    # the varied searches' answers (X-Total-Count) against their exact counts, the first five
    report["search_varied_exact_counts"] = exact_totals(args.data_dir, [varied(args.seed, k) for k in range(min(5, args.runs))])
    report["load_average_end"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
