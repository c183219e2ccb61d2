"""The deployment scenario of issue 10 in a real browser: upload artifacts (with progress), create a
deployment with the wizard, see it reach `finished` while the simulated device reports, abort another."""

from __future__ import annotations

import base64
import subprocess

import requests
from playwright.sync_api import expect

from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, login
from tests.ui.device import HttpDevice

DEVICE_TYPE = "ui-test-board"
POLL_TIMEOUT_MS = 30000  # the deployment page polls every few seconds


class Api:
    """The operator's management API over HTTP with a bearer token (for setting the stage)."""

    def __init__(self, base: str):
        self.base = base
        basic = base64.b64encode(f"{OPERATOR_EMAIL}:{OPERATOR_PASSWORD}".encode()).decode()
        r = requests.post(base + "/api/management/v1/useradm/auth/login", headers={"Authorization": f"Basic {basic}"}, timeout=10)
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.text}"}

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=30, **kw)

    def accept(self, device: HttpDevice) -> None:
        assert device.auth().status_code == 401
        devices = self.call("GET", "/api/management/v2/devauth/devices", params={"status": "pending", "per_page": 500}).json()
        record = next(d for d in devices if d["identity_data"] == device.identity)
        auth_set = record["auth_sets"][0]
        r = self.call("PUT", f"/api/management/v2/devauth/devices/{record['id']}/auth/{auth_set['id']}/status",
                      json={"status": "accepted"})
        assert r.status_code == 204, r.text
        assert device.auth().status_code == 200


def build_artifact(tmp_path, name: str) -> str:
    payload = tmp_path / f"{name}.txt"
    payload.write_text(f"payload of {name}\n")
    out = tmp_path / f"{name}.mender"
    subprocess.run(["/usr/bin/mender-artifact", "write", "module-image", "-T", "single-file", "-n", name,
                    "-t", DEVICE_TYPE, "-o", str(out), "-f", str(payload)], check=True, capture_output=True, timeout=60)
    return str(out)


def test_upload_deploy_until_finished_and_abort_another(page, ui_server, tmp_path):
    api = Api(ui_server.url)
    device = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
    api.accept(device)
    device.report_inventory({"device_type": DEVICE_TYPE, "artifact_name": "factory-image"})
    first, second = build_artifact(tmp_path, "ui-release-1"), build_artifact(tmp_path, "ui-release-2")

    login(page)
    page.goto("/#/artifacts")
    for path in (first, second):
        page.set_input_files("#artifact-file", path)
        page.fill("#artifact-description", "built by the UI test")
        page.click("#upload-button")
        expect(page.locator("#upload-status")).to_have_text("Uploaded")
        assert page.locator("#upload-progress").evaluate("el => el.value") == 100
    expect(page.locator("a.release-link", has_text="ui-release-1")).to_be_visible()
    expect(page.locator("a.release-link", has_text="ui-release-2")).to_be_visible()
    page.shot("releases")
    page.click("a.release-link:has-text('ui-release-1')")
    expect(page.locator(".artifact")).to_contain_text(DEVICE_TYPE)
    expect(page.locator(".artifact")).to_contain_text("single-file")
    page.shot("release")

    # a deployment of release 1 to the selected device, with one retry
    page.get_by_role("button", name="Deploy this release").click()
    expect(page.locator("#deploy-release")).to_have_value("ui-release-1")
    page.click("#wizard-next")
    page.get_by_label("Selected devices").check()
    page.locator(f".device-picker input[value='{device.id}']").check()
    page.click("#wizard-next")
    page.fill("#deploy-retries", "1")
    page.click("#wizard-next")
    expect(page.locator(".wizard-body")).to_contain_text("1 selected device(s)")
    page.shot("deployment-review")
    page.click("#wizard-next")
    expect(page.locator("#deployment-status")).to_be_visible()
    deployment_id = page.url.rsplit("/", 1)[1]

    assigned = device.next_deployment()
    assert assigned and assigned["id"] == deployment_id
    for status in ("downloading", "installing"):
        assert device.report(deployment_id, status).status_code == 204
    expect(page.locator("[data-status=inprogress] .status-count")).to_have_text("1", timeout=POLL_TIMEOUT_MS)
    device.send_log(deployment_id, ["installing ui-release-1", "done"])
    assert device.report(deployment_id, "success").status_code == 204
    expect(page.locator("#deployment-status")).to_have_text("finished", timeout=POLL_TIMEOUT_MS)
    expect(page.locator("[data-status=success] .status-count")).to_have_text("1")
    expect(page.locator(f"tr[data-device-id='{device.id}']")).to_contain_text("success")
    page.shot("deployment-finished")
    page.locator(f"tr[data-device-id='{device.id}']").get_by_role("button", name="View log").click()
    expect(page.locator("#device-log")).to_contain_text("installing ui-release-1")
    page.locator(".modal").get_by_role("button", name="Close").click()
    page.goto(f"/#/devices/{device.id}")
    expect(page.locator("section", has_text="Deployment history").locator("tr", has_text="ui-release-1")).to_contain_text("success")

    # another deployment (release 2, all devices), aborted while the device downloads it
    page.goto("/#/deployments/new?release=ui-release-2")
    page.click("#wizard-next")
    page.get_by_label("All accepted devices").check()
    page.click("#wizard-next")
    page.click("#wizard-next")
    page.click("#wizard-next")
    expect(page.locator("#abort-deployment")).to_be_visible()
    second_id = page.url.rsplit("/", 1)[1]
    assigned = device.next_deployment()
    assert assigned and assigned["id"] == second_id
    assert device.report(second_id, "downloading").status_code == 204
    expect(page.locator("[data-status=inprogress] .status-count")).to_have_text("1", timeout=POLL_TIMEOUT_MS)
    page.click("#abort-deployment")
    page.locator(".modal").get_by_role("button", name="Abort deployment").click()
    expect(page.locator("#deployment-status")).to_have_text("finished", timeout=POLL_TIMEOUT_MS)
    expect(page.locator("[data-status=aborted] .status-count")).to_have_text("1")
    expect(page.locator("#abort-deployment")).to_have_count(0)
    assert device.report(second_id, "installing").status_code == 409  # the device learns it was aborted
    assert device.next_deployment() is None
    assert page.probe.dialogs == []

    page.goto("/#/deployments")
    expect(page.locator("a.deployment-link")).to_have_count(2)
    page.shot("deployments")
    page.goto("/#/")
    expect(page.locator(".stat-accepted .stat-value")).not_to_have_text("0")
    page.shot("dashboard")
