"""A device with Debian's mender-client 3.4 *and* mender-connect 2.1, talking over D-Bus as on a
real device: a private system bus (dbus-daemon) with the Mender packages' own policy files, the
client with `"DBus": {"Enabled": true}` (it serves io.mender.AuthenticationManager: mender-connect
asks it for the device token and for the client's local proxy, through which its websocket goes
to the server).

Both daemons run in one private mount namespace (the client's paths are hard-wired). mender-connect
runs `mender check-update` / `mender send-inventory`, which ask systemd for the client's PID
(`systemctl show -p MainPID mender-client`) and signal it: a `systemctl` stand-in on mender-connect's
PATH answers with the PID of this namespace's client, as systemd would on a device.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

from tests.e2e.harness import MENDER, MenderDevice, wait_for
from tests.helpers import stop_process

DBUS_DAEMON = "/usr/bin/dbus-daemon"
MENDER_CONNECT = "/usr/bin/mender-connect"
POLICY_DIR = "/usr/share/dbus-1/system.d"
POLICIES = ("io.mender.AuthenticationManager.conf", "io.mender.UpdateManager.conf")

# Debian's system bus defaults (dbus's system.conf), minus what needs the real /run and systemd
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
{includes}
</busconfig>
"""


# mender-connect starts once the client owns its name on the bus, as systemd orders them on a
# device (mender-connect.service: After=mender-client.service). Started at the same instant, the
# D-Bus proxy mender-connect makes for a name that is being acquired could miss the owner, and then
# every JwtTokenStateChange signal of the client: its websocket never opened (1 device in 15 here).
_WAIT_FOR_CLIENT_ON_BUS = (
    "i=0; until dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus "
    "org.freedesktop.DBus.NameHasOwner string:io.mender.AuthenticationManager 2>/dev/null | grep -q 'boolean true'"
    " || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done")


class SystemBus:
    """A private D-Bus system bus on a socket of its own; stopped by PID."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "system_bus_socket"
        self.config = workdir / "system.conf"
        includes = "\n".join(f"  <include>{POLICY_DIR}/{name}</include>" for name in POLICIES)
        self.config.write_text(_BUS_CONFIG.format(socket=self.socket, includes=includes))
        self.address = f"unix:path={self.socket}"
        self.log_path = workdir / "dbus.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "SystemBus":
        for name in POLICIES:
            if not os.path.exists(os.path.join(POLICY_DIR, name)):
                raise RuntimeError(f"{POLICY_DIR}/{name} is missing: the mender-client package ships it")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([DBUS_DAEMON, f"--config-file={self.config}", "--nofork", "--nopidfile"],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dbus-daemon did not start: {self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10)
            self._log.close()
        self.proc = None


class ConnectDevice(MenderDevice):
    """mender-client (D-Bus on) and mender-connect in one mount namespace, on a private bus."""

    def __init__(self, workdir: Path, server_url: str, cert: Path, bus: SystemBus, poll: int = 3600, **kwargs):
        super().__init__(workdir, server_url, cert, **kwargs)
        conf = json.loads((workdir / "etc" / "mender.conf").read_text())
        conf["DBus"] = {"Enabled": True}
        # long intervals: a poll or an inventory upload the test sees is one mender-connect asked for
        conf["UpdatePollIntervalSeconds"] = conf["InventoryPollIntervalSeconds"] = poll
        (workdir / "etc" / "mender.conf").write_text(json.dumps(conf, indent=1))
        (workdir / "etc" / "mender-connect.conf").write_text(json.dumps({
            "ShellCommand": "/bin/sh", "ShellArguments": ["-i"], "User": "root",
            "Terminal": {"Width": 80, "Height": 24}, "ReconnectIntervalSeconds": 1,
            "Sessions": {"ExpireAfterIdle": 600}}, indent=1))
        self.bus = bus
        shim = workdir / "shim"
        shim.mkdir(exist_ok=True)
        self.pid_file = workdir / "data" / "mender-client.pid"
        self._script(shim / "systemctl", f'echo "MainPID=$(cat {shlex.quote(str(self.pid_file))})"\n')
        self.shim = shim
        self.connect_log_path = workdir / "mender-connect.log"
        self.mounts: list[tuple[Path, str]] = []  # (directory, where it appears in the namespace)

    def _wrapped_both(self) -> list[str]:
        w = self.dir
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        inner = (f"mount --bind {q(w / 'etc')} /etc/mender && "
                 f"mount --bind {q(w / 'identity')} /usr/share/mender/identity && "
                 f"mount --bind {q(w / 'inventory')} /usr/share/mender/inventory && "
                 + "".join(f"mount --bind {q(src)} {q(dst)} && " for src, dst in self.mounts) +
                 f"{{ {MENDER} --no-syslog -l debug -c {q(w / 'etc' / 'mender.conf')} "
                 f"-b {q(w / 'data' / 'mender.conf')} -d {q(w / 'data')} daemon & echo $! > {q(self.pid_file)}; }} && "
                 f"{_WAIT_FOR_CLIENT_ON_BUS} && "
                 f"{{ PATH={q(self.shim)}:$PATH {MENDER_CONNECT} --debug -c {q(w / 'etc' / 'mender-connect.conf')} "
                 f"-b {q(w / 'data' / 'mender-connect-fallback.conf')} daemon > {q(self.connect_log_path)} 2>&1 & }} && "
                 f"wait")
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]

    def start(self) -> "ConnectDevice":
        os.makedirs("/etc/mender", exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address}
        self.proc = subprocess.Popen(self._wrapped_both(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=env)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, grace=15, group=True)
        self._log.close()
        self.proc = None

    def client_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def connect_log(self) -> str:
        return self.connect_log_path.read_text(errors="replace") if self.connect_log_path.exists() else ""

    def logs(self) -> str:
        return "--- mender ---\n" + self.log()[-6000:] + "\n--- mender-connect ---\n" + self.connect_log()[-6000:]


@contextlib.contextmanager
def admitted_connect_device(stack, base: Path, prepare=None, timeout: float = 90):
    """A ConnectDevice on its own system bus: `prepare(dev)` (mounts, files) before it starts, then
    admitted by the operator, with its deviceconnect websocket open. The daemons and the bus are
    stopped on the way out, whatever failed."""
    from tests.e2e.test_real_clients import admit
    bus = SystemBus(base / "bus").start()
    dev = ConnectDevice(base / "device", stack.url, stack.cert, bus)
    try:
        if prepare is not None:
            prepare(dev)
        dev.start()
        dev.id = admit(stack, dev)["id"]

        def connected():
            r = stack.mgmt.get(f"/api/management/v1/deviceconnect/devices/{dev.id}")
            return r.status_code == 200 and r.json()["status"] == "connected"

        wait_for(connected, timeout, "mender-connect's websocket", on_timeout=dev.logs)
        yield dev
    finally:
        dev.stop()
        bus.stop()
