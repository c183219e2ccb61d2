"""Rollout safety on the deployment page in a real browser: a deployment paused by its failure
threshold shows why, its history and the failure insight (the culprit first, its bar linking to the
devices that hold the value); the operator resumes it and starts the next phase early."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

from playwright.sync_api import expect

from tests.ui.conftest import login
from tests.ui.device import HttpDevice
from tests.ui.test_browser_deploy import DEVICE_TYPE, POLL_TIMEOUT_MS, Api, build_artifact, upload_with_api


def test_paused_deployment_history_insight_resume_and_continue(page, ui_server, tmp_path):
    api = Api(ui_server.url)
    devices = []
    for i in range(6):
        device = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
        api.accept(device)
        device.report_inventory({"device_type": DEVICE_TYPE, "artifact_name": "factory-image",
                                 "kernel": "5.10" if i < 2 else "6.1"})
        devices.append(device)
    upload_with_api(api, build_artifact(tmp_path, "ui-rollout-1"))
    r = api.call("POST", "/api/management/v1/deployments/deployments", json={
        "name": "guarded", "artifact_name": "ui-rollout-1", "devices": [d.id for d in devices],
        "failure_threshold": 50, "phases": [{"batch_size": 50}, {"start_ts": "2099-01-01T00:00:00Z"}]})
    assert r.status_code == 201, r.text
    dep_id = r.headers["Location"].rsplit("/", 1)[1]
    # phase 1 holds three devices: the two on kernel 5.10 fail, the third succeeds
    for device in devices[:3]:
        assert device.next_deployment()["id"] == dep_id
        device.report(dep_id, "downloading")
    for device in devices[:2]:
        device.send_log(dep_id, ["writing rootfs", "error: flash write failed at 0x1f00a0"])
        assert device.report(dep_id, "failure").status_code == 204
    assert devices[2].report(dep_id, "success").status_code == 204
    assert devices[3].next_deployment() is None  # paused

    login(page)
    page.goto(f"/#/deployments/{dep_id}")
    expect(page.locator("#paused-banner")).to_contain_text("by its failure threshold")
    expect(page.locator("#rollout-rules")).to_contain_text("pauses when 50 %")
    expect(page.locator("#deployment-history li[data-event=paused]")).to_contain_text("2 of 3 devices in phase 1 failed")
    expect(page.locator("#insight-headline")).to_contain_text("100 % of failures ran kernel 5.10")
    first = page.locator(".insight-row[data-rank='1']")
    expect(first).to_contain_text("kernel = 5.10")
    expect(first).to_contain_text("2 of 2 failed")
    expect(page.locator("#error-lines")).to_contain_text("flash write failed")
    href = first.locator("a.insight-link").get_attribute("href")
    filters = json.loads(unquote(parse_qs(urlsplit(href.replace("#/", "/", 1)).query)["filters"][0]))
    assert filters == [{"scope": "inventory", "attribute": "kernel", "type": "$eq", "value": "5.10"}]
    page.shot("deployment-paused-insight")

    page.click("#resume-deployment")
    expect(page.locator("#paused-banner")).to_have_count(0)
    expect(page.locator("#pause-deployment")).to_be_visible()
    expect(page.locator("#deployment-history li[data-event=resumed]")).to_contain_text("(operator)")
    assert devices[3].next_deployment() is None      # resumed, but phase 2 starts in 2099
    page.click("#continue-deployment")
    page.locator(".modal").get_by_role("button", name="Start next phase").click()
    expect(page.locator("#deployment-history li[data-event=phase_continued]")).to_contain_text("phase 2")
    expect(page.locator("#continue-deployment")).to_have_count(0, timeout=POLL_TIMEOUT_MS)
    assert devices[3].next_deployment()["id"] == dep_id

    first.locator("a.insight-link").click()
    expect(page.locator("tr[data-device-id]")).to_have_count(2, timeout=POLL_TIMEOUT_MS)
    assert page.probe.dialogs == []
