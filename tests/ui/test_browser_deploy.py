"""The deployment scenario of issue 10 in a real browser: upload artifacts (with progress), create a
deployment with the wizard, see it reach `finished` while the simulated device reports, abort another."""

from __future__ import annotations

import base64
import os
import re
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
    page.fill("#device-picker .pick-search", device.identity["mac"])
    page.locator(f"#device-picker input[value='{device.id}']").check()
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
    expect(page.locator("#deployment-status")).to_have_text("all succeeded", timeout=POLL_TIMEOUT_MS)
    expect(page.locator("[data-status=success] .status-count")).to_have_text("1")
    expect(page.locator(f"tr[data-device-id='{device.id}']")).to_contain_text("success")
    expect(page.locator("#deployment-target")).to_have_text("1 device")
    page.shot("deployment-finished")
    page.locator(f"tr[data-device-id='{device.id}']").get_by_role("button", name="View log").click()
    expect(page.locator("#device-log")).to_contain_text("installing ui-release-1")
    page.go_back()  # the browser's Back: the log does not follow the operator to another page
    expect(page.locator("#deployment-status")).to_have_count(0)
    expect(page.locator(".modal")).to_have_count(0)
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
    expect(page.locator("#deployment-target")).to_have_text("all devices")
    second_id = page.url.rsplit("/", 1)[1]
    assigned = device.next_deployment()
    assert assigned and assigned["id"] == second_id
    assert device.report(second_id, "downloading").status_code == 204
    expect(page.locator("[data-status=inprogress] .status-count")).to_have_text("1", timeout=POLL_TIMEOUT_MS)
    page.click("#abort-deployment")
    page.locator(".modal").get_by_role("button", name="Abort deployment").click()
    expect(page.locator("#deployment-status")).to_have_text("aborted", timeout=POLL_TIMEOUT_MS)
    expect(page.locator("[data-status=aborted] .status-count")).to_have_text("1")
    expect(page.locator("#abort-deployment")).to_have_count(0)
    assert device.report(second_id, "installing").status_code == 409  # the device learns it was aborted
    assert device.next_deployment() is None
    assert page.probe.dialogs == []

    # a third that fails on its only device: "finished with failures", not a green "finished"
    r = api.call("POST", "/api/management/v1/deployments/deployments",
                 json={"name": "doomed", "artifact_name": "ui-release-2", "devices": [device.id]})
    assert r.status_code == 201, r.text
    third_id = r.headers["Location"].rsplit("/", 1)[1]
    assert device.next_deployment()["id"] == third_id
    assert device.report(third_id, "failure").status_code == 204
    page.goto(f"/#/deployments/{third_id}")
    expect(page.locator("#deployment-status")).to_have_text("finished with failures")

    page.goto("/#/deployments")
    expect(page.locator("a.deployment-link")).to_have_count(3)
    expect(page.locator("tr", has_text="doomed").locator(".badge")).to_have_text("finished with failures")
    page.shot("deployments")
    page.goto("/#/")
    expect(page.locator(".stat-accepted .stat-value")).not_to_have_text("0")
    failed = page.locator("section", has_text="Recent failures").locator("tr", has_text="doomed").locator(".badge")
    expect(failed).to_have_text("finished with failures")
    page.shot("dashboard")
    # the badge stays on one line in the dashboard's narrow columns (it wrapped to "finish ed"),
    # side by side, stacked, and on a phone
    for width in (1360, 1000, 390):
        page.set_viewport_size({"width": width, "height": 900})
        expect(failed).to_be_visible()
        height, font = failed.evaluate("b => [b.getBoundingClientRect().height, parseFloat(getComputedStyle(b).fontSize)]")
        assert height < 2 * font, f"the badge wraps at {width} px"
        if width > 390:  # not cut off by its card either (on a phone the table scrolls sideways)
            assert failed.evaluate("b => b.getBoundingClientRect().right <= b.closest('.table-wrap').getBoundingClientRect().right")
        assert page.evaluate("document.documentElement.scrollWidth") <= width


def upload_with_api(api: Api, path: str) -> None:
    with open(path, "rb") as f:
        size = str(os.path.getsize(path))
        r = api.call("POST", "/api/management/v1/deployments/artifacts",
                     files=[("size", (None, size)), ("artifact", (os.path.basename(path), f, "application/octet-stream"))])
    assert r.status_code == 201, r.text


def test_release_notes_tags_group_and_filter_deployments_and_artifact_deletion(page, ui_server, tmp_path):
    api = Api(ui_server.url)
    for _ in range(2):
        device = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
        api.accept(device)
        device.report_inventory({"device_type": DEVICE_TYPE, "artifact_name": "factory-image"})
        r = api.call("PUT", f"/api/management/v1/inventory/devices/{device.id}/group", json={"group": "canary"})
        assert r.status_code == 204, r.text
    upload_with_api(api, build_artifact(tmp_path, "ui-release-3"))

    login(page)
    page.goto("/#/releases/ui-release-3")
    page.fill("#release-notes", "Fixes the frobnicator")
    page.click("#save-notes")
    expect(page.locator(".toast", has_text="Notes saved")).to_be_visible()
    page.fill("#release-tags", "stable, beta")
    page.click("#save-release-tags")
    expect(page.locator(".toast", has_text="Tags saved")).to_be_visible()
    page.reload()
    expect(page.locator("#release-notes")).to_have_value("Fixes the frobnicator")
    expect(page.locator("#release-tags")).to_have_value(re.compile(r"^(beta, stable|stable, beta)$"))

    # to a group, in two phases
    page.get_by_role("button", name="Deploy this release").click()
    page.fill("#deploy-name", "canary rollout")
    page.click("#wizard-next")
    page.get_by_label("A group").check()
    page.locator("#group-picker input[value='canary']").check()
    expect(page.locator("#target-count")).to_contain_text("2 devices will get this deployment")
    page.click("#wizard-next")
    page.check("#deploy-phased")
    # the default first batch gives a fleet of two a device (10 % of 2 would be none)
    expect(page.locator(".phase-batch")).to_have_value("50")
    expect(page.locator(".phase-size[data-phase='0']")).to_have_text("→ 1 device")
    expect(page.locator(".phase-size[data-phase='1']")).to_have_text("→ 1 device")
    expect(page.locator("#phase-error")).to_have_text("")
    page.click("#wizard-next")
    expect(page.locator(".wizard-body")).to_contain_text("1: 50% (1) now; 2: the rest (1) at")
    page.click("#wizard-next")
    expect(page.locator("#deployment-status")).to_be_visible()
    expect(page.locator("#deployment-target")).to_have_text("group canary")
    group_dep = api.call("GET", f"/api/management/v1/deployments/deployments/{page.url.rsplit('/', 1)[1]}").json()
    assert group_dep["name"] == "canary rollout" and group_dep["artifact_name"] == "ui-release-3"
    assert group_dep.get("groups") == ["canary"]
    assert [p["batch_size"] for p in group_dep["phases"]] == [50, 50]

    # to the devices an inventory filter matches, at most 5
    page.goto("/#/deployments/new?release=ui-release-3")
    page.click("#wizard-next")
    page.get_by_label("Devices matching a filter (dynamic)").check()
    page.fill(".filter-value", DEVICE_TYPE)
    page.click("#wizard-next")
    page.fill("#deploy-max", "5")
    page.click("#wizard-next")
    expect(page.locator(".wizard-body")).to_contain_text(f"inventory.device_type $eq {DEVICE_TYPE}")
    page.click("#wizard-next")
    expect(page.locator("#deployment-status")).to_be_visible()
    expect(page.locator("#deployment-target")).to_have_text("an inventory filter")
    filter_dep = api.call("GET", f"/api/management/v1/deployments/deployments/{page.url.rsplit('/', 1)[1]}").json()
    assert filter_dep["filter"]["terms"] == [{"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": DEVICE_TYPE}]

    # the artifact cannot go while deployments may hand it out; after aborting them it can
    page.goto("/#/releases/ui-release-3")
    page.locator(".artifact").get_by_role("button", name="Delete").click()
    page.locator(".modal").get_by_role("button", name="Delete").click()
    expect(page.locator(".toast", has_text="An active deployment still uses this artifact.")).to_be_visible()
    for dep in (group_dep, filter_dep):
        r = api.call("PUT", f"/api/management/v1/deployments/deployments/{dep['id']}/status", json={"status": "aborted"})
        assert r.status_code == 204, r.text
    page.locator(".artifact").get_by_role("button", name="Delete").click()
    page.locator(".modal").get_by_role("button", name="Delete").click()
    expect(page.locator("h1")).to_have_text("Release not found")
    assert page.probe.dialogs == []
