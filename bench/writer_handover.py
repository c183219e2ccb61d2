"""The SQLite writer lock across processes: how many write transactions several processes commit
per second between them, against the same threads in one process.

Within a process the writer lock is handed from thread to thread by a `threading.Lock`; between
processes by an `flock` on a file beside the database. A gunicorn server runs 2 x cores worker
processes, so with 4 workers three hand-overs in four cross a process boundary. This benchmark
runs the same number of writer threads (and the same busy threads, running Python as a worker's
polls and event loop do) first in one process, then spread over `--processes` processes, round
after round, and reports the writes per second of each and their ratio: 1.0 means a hand-over
between processes costs no more than one within a process.

Each write is one statement with a trigger, what a status report writes (bench/writer_lock.py's
`trigger` shape). Besides the rate, each writer records how long it waited for the lock; the
report gives their median and 99th percentile.

    .venv/bin/python -m bench.writer_handover --rounds 5 --seconds 2 --processes 4
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time

from bench.writer_lock import SHAPES, _busy, _setup
from common.asgi import SWITCH_INTERVAL
from common.db import SqliteDatabase


def _process(path: str, writers: int, busy: int, seconds: float, offset: int, out) -> None:
    sys.setswitchinterval(SWITCH_INTERVAL)  # as in a worker
    db = SqliteDatabase(path)
    write = SHAPES["trigger"]
    db.conn.execute("SELECT 1").fetchone()
    stop = threading.Event()
    counts = [0] * writers
    waits: list[float] = []
    start = threading.Barrier(writers + busy + 1)

    def writer(w: int) -> None:
        i = offset + w
        mine = []
        start.wait()
        while not stop.is_set():
            t0 = time.perf_counter()
            with db.conn.writer:
                mine.append(time.perf_counter() - t0)
                write(db, i)
            counts[w] += 1
            i += 101
        waits.extend(mine)

    def busy_thread() -> None:
        start.wait()
        _busy(db, stop)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=busy_thread) for _ in range(busy)]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    out.put((sum(counts), waits))


def _round(ctx, path: str, processes: int, writers: int, busy: int, seconds: float):
    out = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(path, writers // processes, busy // processes, seconds,
                                                p * 1000, out)) for p in range(processes)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    total = sum(n for n, _ in results)
    waits = sorted(w for _, ws in results for w in ws)
    return total / seconds, waits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--processes", type=int, default=4, help="worker processes sharing the writes")
    ap.add_argument("--writers", type=int, default=8, help="writer threads in all")
    ap.add_argument("--busy", type=int, default=8, help="busy threads in all")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="writer-handover-")
    path = os.path.join(tmp, "w.db")
    _setup(path).close()
    ctx = multiprocessing.get_context("spawn")
    rates: dict[int, list[float]] = {1: [], args.processes: []}
    waits: dict[int, list[float]] = {1: [], args.processes: []}
    for _ in range(args.rounds):
        for processes in rates:
            rate, w = _round(ctx, path, processes, args.writers, args.busy, args.seconds)
            rates[processes].append(rate)
            waits[processes].extend(w)
    print(f"{args.writers} writer and {args.busy} busy threads in all, {args.rounds} rounds of {args.seconds} s; "
          f"load average {os.getloadavg()[0]:.1f}")
    base = statistics.median(rates[1])
    for processes, r in rates.items():
        w = sorted(waits[processes])
        print(f"{processes} process(es): {statistics.median(r):6.0f} writes/s ({min(r):.0f}-{max(r):.0f}), "
              f"{statistics.median(r) / base:.2f} x; lock wait median {statistics.median(w) * 1e3:.2f} ms, "
              f"p99 {w[int(len(w) * 0.99)] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
