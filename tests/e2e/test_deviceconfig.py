"""deviceconfig end to end with the real clients: mender-client 3.4 and mender-connect 2.1 on one
device (a private D-Bus system bus between them), the tests' `mender-configure` update module
(tests/e2e/mender_configure/, written from the real module's documentation: Mender's is not
packaged in Debian) and its inventory script.

A configuration set through the management API and deployed reaches the device at once:
deviceconfig asks deviceconnect to make the device check for updates (mender-connect runs `mender
check-update`), the client's poll gets the configuration deployment, downloads the generated
`mender-configure` artifact from its signed link, and the module writes the configuration file and
runs the apply scripts. After the deployment the client updates its inventory; the module's
inventory script gets the device token and the client's local proxy URL over D-Bus and PUTs the
applied configuration through the proxy, as on a real device. The management API then shows
reported == desired. A configuration an apply script refuses fails the deployment and is rolled
back, and the report stays the previous one."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from tests.e2e.connect import admitted_connect_device
from tests.e2e.harness import wait_for

TIMEOUT = 90
ASK_AGAIN = 10  # seconds a deployment may stay pending before the test asks for a check-update again
HERE = os.path.dirname(__file__)
MODULE_FILES = os.path.join(HERE, "mender_configure")
MODULES = "/usr/share/mender/modules/v3"
CONFIG_DIR = "/var/lib/mender-configure"
APPLY_DIR = "/usr/lib/mender-configure"
BASE = "/api/management/v1/deviceconfig/configurations/device"


@pytest.fixture(scope="module")
def device(stack, tmp_path_factory):
    """One device with both daemons, the mender-configure module installed (in its namespace:
    the Debian modules plus ours, the apply scripts, the configuration directory), admitted, its
    deviceconnect socket open."""
    base = tmp_path_factory.mktemp("cfg-device")
    modules, apply_dir, state = base / "modules", base / "apply", base / "state"
    shutil.copytree(MODULES, modules)
    shutil.copy2(os.path.join(MODULE_FILES, "mender-configure"), modules)
    (apply_dir / "apply-device-config.d").mkdir(parents=True)
    shutil.copy2(os.path.join(MODULE_FILES, "50-e2e-apply"), apply_dir / "apply-device-config.d")
    state.mkdir()
    for mount_point in (CONFIG_DIR, APPLY_DIR):  # empty mount points, as /etc/mender for the harness
        os.makedirs(mount_point, exist_ok=True)

    def prepare(dev):
        shutil.copy2(os.path.join(MODULE_FILES, "mender-inventory-mender-configure"), dev.dir / "inventory")
        dev.mounts = [(modules, MODULES), (apply_dir, APPLY_DIR), (state, CONFIG_DIR)]
        dev.state = state

    with admitted_connect_device(stack, base, prepare, timeout=TIMEOUT) as dev:
        yield dev


def _deploy(stack, dev, config: dict) -> str:
    r = stack.mgmt.put(f"{BASE}/{dev.id}", json=config)
    assert r.status_code == 204, r.text
    r = stack.mgmt.post(f"{BASE}/{dev.id}/deploy", json={})
    assert r.status_code == 200, r.text
    deployment_id = r.json()["deployment_id"]

    asked = [time.monotonic()]

    def finished():
        r = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{deployment_id}")
        body = r.json() if r.status_code == 200 else {}
        if body.get("status") == "pending" and time.monotonic() - asked[0] > ASK_AGAIN:
            # After a deployment the client restarts its local proxy, so mender-connect reconnects:
            # a deploy in that second finds the device disconnected and asks nothing (the device
            # would get it at its next poll). Ask again, as an operator would.
            stack.mgmt.post(f"/api/management/v1/deviceconnect/devices/{dev.id}/check-update")
            asked[0] = time.monotonic()
        return body.get("status") == "finished" and body

    # no poll is due for an hour (ConnectDevice): only a check-update through mender-connect
    # brings the deployment to the device this fast
    def logs():
        state = stack.mgmt.get(f"/api/management/v1/deviceconnect/devices/{dev.id}").text
        server = [line for line in stack.server.log().splitlines() if "deviceconnect" in line or "deviceconfig" in line
                  or "check" in line]
        return f"deviceconnect state: {state}\n--- server ---\n" + "\n".join(server[-40:]) + "\n" + dev.logs()

    dep = wait_for(finished, TIMEOUT, "the configuration deployment to finish", on_timeout=logs)
    assert dep["type"] == "configuration" and dep["artifact_name"] == f"configuration-{deployment_id}"
    return deployment_id


def _device_file(dev, name: str) -> str | None:
    path = dev.state / name
    return path.read_text() if path.exists() else None


def test_configuration_arrives_and_is_reported_back(stack, device):
    config = {"motd": "hello from the e2e test", "timezone": "Europe/Oslo",
              "banner": "line 1\nline 2 \"quoted\" <tag> & ünïcode"}
    deployment_id = _deploy(stack, device, config)
    stats = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{deployment_id}/statistics").json()
    assert stats["success"] == 1, stats

    # the module wrote the configuration where the apply scripts read it, and they applied it
    assert json.loads(_device_file(device, "device-config.json")) == config
    assert _device_file(device, "motd") == "hello from the e2e test\n"
    assert device.show_artifact() == f"configuration-{deployment_id}"

    # the inventory update after the deployment reported it through the client's proxy
    def reported():
        body = stack.mgmt.get(f"{BASE}/{device.id}").json()
        return body["reported"] == config and body

    body = wait_for(reported, TIMEOUT, "the device to report its configuration", on_timeout=device.logs)
    assert body["configured"] == body["reported"] == config
    assert body["deployment_id"] == deployment_id and body["reported_ts"]


def _reported(stack, device) -> dict:
    """The device's configuration state with a configuration applied and reported: one is applied
    here when no earlier test of this module ran on this process (pytest-xdist may give the
    module's tests to different workers, each with its own stack and device)."""
    body = stack.mgmt.get(f"{BASE}/{device.id}").json()
    if body["reported"]:
        return body
    config = {"motd": "applied first"}
    _deploy(stack, device, config)
    return wait_for(lambda: (lambda b: b["reported"] == config and b)(stack.mgmt.get(f"{BASE}/{device.id}").json()),
                    TIMEOUT, "the device to report its first configuration", on_timeout=device.logs)


def test_a_refused_configuration_fails_and_is_rolled_back(stack, device):
    before = _reported(stack, device)
    applied = json.loads(_device_file(device, "device-config.json"))
    deployment_id = _deploy(stack, device, {**applied, "motd": "must not stay", "fail": "yes"})
    stats = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{deployment_id}/statistics").json()
    assert stats["failure"] == 1, stats
    # the client uploads its log after it reports the failure (mender-client-trace.md 2.6)
    log = wait_for(lambda: (lambda r: r.status_code == 200 and r)(stack.mgmt.get(
        f"/api/management/v1/deployments/deployments/{deployment_id}/devices/{device.id}/log")),
        TIMEOUT, "the deployment log", on_timeout=device.logs)
    assert "fail=yes" in log.text, log.text

    # the module put the previous configuration back and applied it again
    assert json.loads(_device_file(device, "device-config.json")) == applied
    assert _device_file(device, "motd") == f"{applied['motd']}\n"
    after = stack.mgmt.get(f"{BASE}/{device.id}").json()
    assert after["reported"] == before["reported"]
    assert after["configured"] != after["reported"] and after["deployment_id"] == deployment_id

    # setting it right brings the device back in line
    deployment_id = _deploy(stack, device, {"motd": "fixed"})
    body = wait_for(lambda: (lambda b: b["reported"] == {"motd": "fixed"} and b)(
        stack.mgmt.get(f"{BASE}/{device.id}").json()), TIMEOUT, "the new report", on_timeout=device.logs)
    assert body["configured"] == body["reported"]
    assert _device_file(device, "motd") == "fixed\n"
