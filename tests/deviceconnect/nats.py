"""A real nats-server (Debian's package) on a free 127.0.0.1 port, stopped by PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from tests.helpers import free_port, stop_process

NATS_SERVER = "/usr/sbin/nats-server"


class NatsServer:
    def __init__(self, workdir: str):
        if shutil.which(NATS_SERVER) is None and not os.path.exists(NATS_SERVER):
            raise RuntimeError("nats-server is missing: scripts/test.sh installs the Debian package")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.log_path = os.path.join(workdir, f"nats-{self.port}.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "NatsServer":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited: {open(self.log_path).read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, grace=10)
        self._log.close()
        self.proc = None
