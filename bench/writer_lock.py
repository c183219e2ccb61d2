"""The SQLite writer lock under GIL contention: how many write transactions a process commits per
second with no other thread running Python, and while other threads of it do (what a worker's
polls and its event loop do). Only one thread holds the writer lock at a time; SQLite runs each
statement without the GIL, and the holder has to take it back after every one.

Each write transaction is shaped like a deployment status report: BEGIN IMMEDIATE, an UPDATE of a
row found by its key, an upsert of two counters, a read of the parent row, COMMIT. The busy
threads each loop over a JSON round trip of a poll-sized document and an indexed read. The two
cases alternate, round after round, in the same process (the ratio is what the machine's other
load cannot skew much); every figure is the median over the rounds.

`--shape trigger` writes the same change as one statement: the UPDATE of the row, whose trigger
moves the counters (what deployments' migration 5 does for a status report), committing on its
own; `--shape both` alternates the two shapes, each alone and beside the busy threads.

    .venv/bin/python -m bench.writer_lock --rounds 9 --seconds 1 [--shape both]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

from common.asgi import SWITCH_INTERVAL
from common.db import SqliteDatabase

ROWS = 50_000


def _setup(path: str) -> SqliteDatabase:
    db = SqliteDatabase(path)
    db.migrate("bench", [[
        "CREATE TABLE dd (id INTEGER PRIMARY KEY, dep TEXT NOT NULL, status TEXT NOT NULL, ts REAL)",
        "CREATE INDEX dd_dep_status ON dd (dep, status)",
        "CREATE TABLE stats (dep TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (dep, status)) WITHOUT ROWID",
        "CREATE TABLE deps (id TEXT PRIMARY KEY, name TEXT, n INTEGER NOT NULL DEFAULT 0)",
    ], [
        "ALTER TABLE dd ADD COLUMN moves INTEGER NOT NULL DEFAULT 0",
        "CREATE TRIGGER dd_moves AFTER UPDATE OF moves ON dd WHEN new.status IS NOT old.status BEGIN"
        " INSERT INTO stats VALUES (new.dep, old.status, -1) ON CONFLICT DO UPDATE SET n = n - 1;"
        " INSERT INTO stats VALUES (new.dep, new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1; END",
    ]])
    with db.transaction() as conn:
        if conn.execute("SELECT count(*) FROM dd").fetchone()[0] == 0:
            conn.executemany("INSERT INTO dd (id, dep, status, ts) VALUES (?, ?, 'pending', 0)",
                             [(i, f"dep{i % 50}") for i in range(ROWS)])
            conn.executemany("INSERT INTO deps (id, name) VALUES (?, ?)",
                             [(f"dep{i}", "x" * 200) for i in range(50)])
    return db


def _write(db: SqliteDatabase, i: int) -> None:
    dep = f"dep{i % 50}"
    with db.transaction() as conn:
        conn.execute("UPDATE dd SET status = ?, ts = ? WHERE id = ?", (("downloading", "installing")[i % 2],
                                                                      time.time(), i % ROWS))
        conn.execute("INSERT INTO stats VALUES (?, 'pending', -1), (?, 'downloading', 1)"
                     " ON CONFLICT DO UPDATE SET n = n + excluded.n", (dep, dep))
        conn.execute("SELECT * FROM deps WHERE id = ?", (dep,)).fetchone()


def _write_one_statement(db: SqliteDatabase, i: int) -> None:
    db.conn.execute("UPDATE dd SET status = ?, ts = ?, moves = moves + 1 WHERE id = ?",
                    (("downloading", "installing")[i % 2], time.time(), i % ROWS))


SHAPES = {"report": _write, "trigger": _write_one_statement}


def _busy(db: SqliteDatabase, stop: threading.Event) -> None:
    doc = {"id": "x" * 36, "artifact": {"artifact_name": "a" * 20, "source": {"uri": "u" * 300}},
           "attributes": [{"name": f"n{k}", "value": "v" * 20} for k in range(30)]}
    while not stop.is_set():
        json.loads(json.dumps(doc))
        db.conn.execute("SELECT status FROM dd WHERE id = ?", (7,)).fetchone()


def _round(db: SqliteDatabase, writers: int, busy: int, seconds: float, write=_write) -> float:
    stop = threading.Event()
    counts = [0] * writers

    def writer(w: int) -> None:
        i = w
        while not stop.is_set():
            write(db, i)
            counts[w] += 1
            i += writers

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=_busy, args=(db, stop)) for _ in range(busy)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--writers", type=int, default=6, help="threads writing (a worker's requests that write)")
    ap.add_argument("--busy", type=int, default=3, help="threads running Python meanwhile (polls, the event loop)")
    ap.add_argument("--shape", choices=("report", "trigger", "both"), default="report",
                    help="the write: a transaction of four statements, one statement with a trigger, or both")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="writer-lock-")
    sys.setswitchinterval(SWITCH_INTERVAL)  # as in a worker
    db = _setup(os.path.join(tmp, "w.db"))
    shapes = ("report", "trigger") if args.shape == "both" else (args.shape,)
    rates: dict[tuple[str, int], list[float]] = {(s, b): [] for s in shapes for b in (0, args.busy)}
    for _ in range(args.rounds):
        for shape, busy in rates:
            rates[shape, busy].append(_round(db, args.writers, busy, args.seconds, SHAPES[shape]))
    print(f"{args.writers} writer threads, {args.rounds} rounds of {args.seconds} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    base = statistics.median(rates[shapes[0], 0])
    for (shape, busy), r in rates.items():
        print(f"{shape:8} {busy} busy threads: {statistics.median(r):6.0f} writes/s ({min(r):.0f}-{max(r):.0f}), "
              f"{statistics.median(r) / base:.2f} x")


if __name__ == "__main__":
    main()
