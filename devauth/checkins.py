"""Device check-in times, written in batches.

Every authenticated device request counts as a check-in (devauth's `check_in_time` and
inventory's `system/check_in_time`). Written one by one, a fleet's polls turn into a stream of
tiny write transactions that queue behind each other for SQLite's single writer lock (10,000
devices polling every 30 minutes still write ~170 times a second with a once-a-minute debounce).
So a request only records the check-in in memory, and a thread per process writes what has
accumulated every `interval` seconds: one statement per tenant and store.

A check-in time is informational (the UI's "last check-in"); what a process holds when it is
killed outright is lost, bounded by one interval. A graceful stop flushes (gunicorn's
`worker_exit` hook and atexit). `interval` 0 writes synchronously, in the request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)

Writer = Callable[[str, list[str], float], None]  # (tenant, device ids, time)


class CheckIns:
    def __init__(self, write: Writer, interval: float):
        self._write = write
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, float]] = {}  # tenant -> device id -> newest time
        self._writing = 0  # check-ins taken out of _pending by a flush and not yet written
        self._thread_pid: int | None = None
        self._stop = threading.Event()

    def record(self, tenant: str, device_id: str, ts: float) -> None:
        if self.interval <= 0:
            self._write(tenant, [device_id], ts)
            return
        with self._lock:
            self._pending.setdefault(tenant, {})[device_id] = ts
            if self._thread_pid != os.getpid():  # first use in this process (threads do not survive fork)
                self._start()

    def pending(self) -> int:
        """Check-ins recorded and not yet written (including those a flush is writing now)."""
        with self._lock:
            return sum(len(d) for d in self._pending.values()) + self._writing

    def flush(self) -> None:
        """Write every recorded check-in now."""
        with self._lock:
            batch, self._pending = self._pending, {}
            self._writing += sum(len(d) for d in batch.values())
        for tenant, devices in batch.items():
            ids = sorted(devices)
            try:
                self._write(tenant, ids, max(devices.values()))
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the writer thread
                log.exception("check-in write failed; %d devices kept for the next round", len(ids))
                with self._lock:
                    mine = self._pending.setdefault(tenant, {})
                    for device_id, ts in devices.items():
                        mine.setdefault(device_id, ts)
            finally:
                with self._lock:
                    self._writing -= len(devices)

    def _start(self) -> None:
        self._thread_pid = os.getpid()
        self._stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(self._stop,), name="check-in-writer", daemon=True)
        thread.start()
        atexit.register(self.close)

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.flush()

    def close(self) -> None:
        """Stop the writer thread of this process and write what is left."""
        self._stop.set()
        atexit.unregister(self.close)
        self.flush()
