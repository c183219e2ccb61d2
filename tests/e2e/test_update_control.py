"""Update control maps end to end with Debian's mender-client 3.4: a deployment that pauses before
installing holds both devices in `pause_before_installing`; the operator continues the deployment
(one device succeeds) and fails the other device by its own map (it reports `failure`)."""

from __future__ import annotations

import json
import time

from tests.e2e.harness import MenderDevice, single_file_artifact, wait_for
from tests.e2e.test_real_clients import TIMEOUT, admit, upload

MAP_EXPIRY = 12  # seconds: the client refreshes its map from the server every half of it


def device(tmp_path, stack, name: str) -> MenderDevice:
    dev = MenderDevice(tmp_path / name, stack.url, stack.cert)
    conf_path = dev.dir / "etc" / "mender.conf"
    conf = json.loads(conf_path.read_text())
    conf["UpdateControlMapExpirationTimeSeconds"] = MAP_EXPIRY
    conf_path.write_text(json.dumps(conf, indent=1))
    return dev


def test_pause_before_installing_then_continue_and_fail(stack, tmp_path):
    paths = "/api/management/v1/deployments/deployments"
    one, two = device(tmp_path, stack, "one").start(), device(tmp_path, stack, "two").start()
    try:
        ids = [admit(stack, dev)["id"] for dev in (one, two)]
        dest = tmp_path / "dest"
        dest.mkdir()
        name = f"e2e-ucm-{one.sn}"
        upload(stack, single_file_artifact(tmp_path, name, "e2e-device", str(dest), b"held\n"))
        pause = {"priority": 0, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}
        r = stack.mgmt.post(paths, json={"name": f"ucm-{one.sn}", "artifact_name": name, "devices": ids,
                                         "update_control_map": pause})
        assert r.status_code == 201, r.text
        dep_id = r.headers["Location"].rsplit("/", 1)[1]
        for dev in (one, two):
            dev.check_update_now()

        def statuses():
            r = stack.mgmt.get(f"{paths}/{dep_id}/devices")
            return {d["id"]: d["status"] for d in r.json()}

        def both_paused():
            return set(statuses().values()) == {"pause_before_installing"}

        wait_for(both_paused, TIMEOUT, "both devices to pause before installing",
                 on_timeout=lambda: f"{statuses()}\n{one.log()[-3000:]}")
        time.sleep(MAP_EXPIRY * 0.75)  # a map refresh later: still held, nothing installed
        assert both_paused() and not (dest / "app.conf").exists()

        fail = {"priority": 0, "states": {"ArtifactInstall_Enter": {"action": "fail"}}}
        r = stack.mgmt.patch(f"{paths}/{dep_id}/devices/{ids[1]}", json={"update_control_map": fail})
        assert r.status_code == 204, r.text
        go = {"priority": 0, "states": {"ArtifactInstall_Enter": {"action": "continue"}}}
        r = stack.mgmt.patch(f"{paths}/{dep_id}", json={"update_control_map": go})
        assert r.status_code == 204, r.text

        def finished():
            return stack.mgmt.get(f"{paths}/{dep_id}").json()["status"] == "finished"

        wait_for(finished, TIMEOUT + 2 * MAP_EXPIRY, "the deployment to finish",
                 on_timeout=lambda: f"{statuses()}\n{two.log()[-3000:]}")
        assert statuses() == {ids[0]: "success", ids[1]: "failure"}
        assert (dest / "app.conf").read_bytes() == b"held\n"
        assert one.show_artifact() == name and two.show_artifact() == "e2e-factory"
        history = stack.mgmt.get(f"/api/management/v2/deployments/deployments/{dep_id}/history").json()
        assert [e["type"] for e in history].count("update_control_map") == 2
    finally:
        one.stop()
        two.stop()
