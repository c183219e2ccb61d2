"""Leftovers of uploads that died, reclaimed while the server runs.

Each process that serves requests runs the storage's sweep every `interval` seconds in a daemon
thread (started by its first request, as threads do not survive gunicorn's fork): the filesystem
removes temp files no live writer holds (storage/filesystem.py), S3 aborts multipart uploads
older than a day. Sweeps of several processes never conflict: a file goes to whoever locks it.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

log = logging.getLogger(__name__)


class PeriodicSweep:
    def __init__(self, sweep: Callable[[], object], interval: float):
        self._sweep = sweep
        self.interval = interval
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        """Start this process's sweeper unless it runs (cheap: called before every request)."""
        if self.interval <= 0 or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            threading.Thread(target=self._run, args=(self._stop,), name="upload-sweeper", daemon=True).start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.run_once()

    def run_once(self) -> None:
        try:
            removed = self._sweep()
            if removed:
                log.info("removed %d leftovers of interrupted uploads", removed)
        except Exception as exc:  # noqa: BLE001 - a storage hiccup must not end the sweeper
            log.warning("sweeping interrupted uploads failed: %r", exc)

    def stop(self) -> None:
        """Stop this process's sweeper thread (a graceful stop, and tests)."""
        self._stop.set()
        self._pid = None
