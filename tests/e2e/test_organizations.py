"""Two organizations end to end with the real clients: each mender-client 3.4 daemon carries
its organization's TenantToken, each organization's operator (mender-cli 1.9 and the API) sees
only its own device, and each device installs only its own organization's deployment."""

from __future__ import annotations

from tests.e2e.harness import Management, MenderCli, MenderDevice, create_org, single_file_artifact, wait_for
from tests.e2e.test_real_clients import TIMEOUT, attrs

PASSWORD = "e2e-org-password"


def test_two_organizations_with_real_clients(stack, tmp_path):
    orgs = {}
    for label in ("red", "blue"):
        email = f"ops@{label}.example.com"
        org_id, token = create_org(stack.data_dir, label.title(), email, PASSWORD)
        cli = MenderCli(stack.url, stack.cert, tmp_path / f"cli-{label}")
        login = cli("login", "--username", email, "--password", PASSWORD)
        assert login.returncode == 0, login.stdout + login.stderr
        orgs[label] = {"id": org_id, "mgmt": Management(stack.url, stack.cert, email, PASSWORD), "cli": cli,
                       "device": MenderDevice(tmp_path / f"device-{label}", stack.url, stack.cert,
                                          tenant_token=token)}
    try:
        for org in orgs.values():
            org["device"].start()
        # each organization's operator sees its own device (pending), and only it
        for label, org in orgs.items():
            other = orgs["blue" if label == "red" else "red"]
            mine = wait_for(lambda: org["mgmt"].device_by_identity("sn", org["device"].sn), TIMEOUT,
                            f"{label}'s device", on_timeout=org["device"].log)
            assert mine["status"] == "pending"
            assert org["mgmt"].device_by_identity("sn", other["device"].sn) is None
            assert stack.mgmt.device_by_identity("sn", org["device"].sn) is None  # not the default organization's
            org["record"] = mine
            org["mgmt"].accept(mine)
        for label, org in orgs.items():
            def inventory(org=org):
                r = org["mgmt"].get(f"/api/management/v1/inventory/devices/{org['record']['id']}")
                return r.status_code == 200 and ("inventory", "os") in attrs(r.json())
            wait_for(inventory, TIMEOUT, f"{label}'s inventory", on_timeout=org["device"].log)
            ids = [d["id"] for d in org["mgmt"].get("/api/management/v1/inventory/devices").json()]
            assert ids == [org["record"]["id"]]

        # each organization uploads its own artifact (mender-cli) and deploys it to its device
        for label, org in orgs.items():
            dest = tmp_path / f"dest-{label}"
            dest.mkdir()
            org["dest"], org["artifact"] = dest, f"app-{label}"
            art = single_file_artifact(tmp_path, org["artifact"], "e2e-device", str(dest), f"{label}\n".encode())
            r = org["cli"]("artifacts", "upload", "--no-progress", str(art))
            assert r.returncode == 0, r.stdout + r.stderr
        for label, org in orgs.items():
            other = "app-blue" if label == "red" else "app-red"
            listed = org["cli"]("artifacts", "list")
            assert listed.returncode == 0 and org["artifact"] in listed.stdout and other not in listed.stdout
            # the other organization's artifact cannot be deployed here
            r = org["mgmt"].post("/api/management/v1/deployments/deployments",
                                 json={"name": "wrong", "artifact_name": other, "devices": [org["record"]["id"]]})
            assert r.status_code == 422, r.text
            org["deployment"] = org["mgmt"].deploy(f"deploy-{label}", org["artifact"], [org["record"]["id"]])
            org["device"].check_update_now()
        for label, org in orgs.items():
            def finished(org=org):
                r = org["mgmt"].get(f"/api/management/v1/deployments/deployments/{org['deployment']}")
                return r.status_code == 200 and r.json()["status"] == "finished"
            wait_for(finished, TIMEOUT, f"{label}'s deployment", on_timeout=org["device"].log)
            stats = org["mgmt"].get(f"/api/management/v1/deployments/deployments/{org['deployment']}/statistics").json()
            assert stats["success"] == 1, (stats, org["device"].log()[-3000:])
            deployments = org["mgmt"].get("/api/management/v1/deployments/deployments").json()
            assert [d["id"] for d in deployments] == [org["deployment"]]
        for label, org in orgs.items():
            assert (org["dest"] / "app.conf").read_bytes() == f"{label}\n".encode()
            assert org["device"].show_artifact() == org["artifact"]
        assert stack.mgmt.get("/api/management/v1/deployments/deployments").json() == []
    finally:
        for org in orgs.values():
            org["device"].stop()
