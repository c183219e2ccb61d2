"""Device configuration in a real browser: the device page shows desired vs reported with a diff,
the operator edits the configuration and deploys it; a simulated device takes the configuration
deployment through its normal poll, downloads the generated mender-configure artifact, reports
success and its applied configuration, and the page shows it in sync. The real mender-client is
covered by tests/e2e/test_deviceconfig.py."""

from __future__ import annotations

import io
import tarfile

from playwright.sync_api import expect

from tests.deviceconnect.live import Mgmt
from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, login


def _meta_data(artifact: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(artifact)) as outer:
        header = outer.extractfile("header.tar").read()
    with tarfile.open(fileobj=io.BytesIO(header)) as inner:
        return inner.extractfile("headers/0000/meta-data").read()


def test_edit_deploy_and_see_the_device_report(page, ui_server):
    mgmt = Mgmt(ui_server.url, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    device = mgmt.device()
    login(page)
    page.goto(f"/#/devices/{device.id}")
    section = page.locator("section.card", has=page.get_by_role("heading", name="Configuration"))
    expect(section).to_contain_text("No configuration")
    expect(section.locator("#config-summary")).to_contain_text("not reported")

    # edit: two keys, one of them multi-line, then save and deploy
    section.locator("#config-edit").click()
    editor = section.locator("#config-editor")
    editor.locator(".cfg-key").first.fill("motd")
    editor.locator(".cfg-val").first.fill("hello\nfrom the browser")
    editor.locator("#config-add").click()
    editor.locator(".cfg-key").nth(1).fill("timezone")
    editor.locator(".cfg-val").nth(1).fill("Europe/Oslo")
    editor.locator("#config-add").click()
    editor.locator(".cfg-key").nth(2).fill("motd")  # a key given twice is refused before sending
    editor.locator(".cfg-val").nth(2).fill("x")
    editor.locator("#config-save-deploy").click()
    expect(editor.locator(".alert-error")).to_contain_text('The key "motd" is given twice.')
    editor.locator(".cfg-row").nth(2).get_by_role("button", name="remove key").click()
    editor.locator("#config-save-deploy").click()

    diff = section.locator("#config-diff")
    expect(diff.locator("tr[data-key=timezone]")).to_have_attribute("data-state", "added")
    expect(diff.locator("tr[data-key=motd]")).to_contain_text("not on device")
    expect(section.locator("#config-deployment")).to_be_visible()
    record = mgmt.get(f"/api/management/v1/deviceconfig/configurations/device/{device.id}").json()
    assert record["configured"] == {"motd": "hello\nfrom the browser", "timezone": "Europe/Oslo"}
    deployment_id = record["deployment_id"]

    # the device polls, downloads the generated artifact, installs and reports
    instructions = device.next_deployment()
    assert instructions["id"] == deployment_id
    assert instructions["artifact"]["artifact_name"] == f"configuration-{deployment_id}"
    r = device.http.get(instructions["artifact"]["source"]["uri"], timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/vnd.mender-artifact"
    assert _meta_data(r.content) == b'{"motd":"hello\\nfrom the browser","timezone":"Europe/Oslo"}'
    for status in ("downloading", "installing", "success"):
        assert device.report(deployment_id, status).status_code == 204
    # it applied the timezone, but its motd differs (a script rewrote it), and it has one key more
    r = device._call("PUT", "/api/devices/v1/deviceconfig/configuration",
                     json={"motd": "hello", "timezone": "Europe/Oslo", "legacy": "1"})
    assert r.status_code == 204, r.text

    section.get_by_role("button", name="Refresh").click()
    section = page.locator("section.card", has=page.get_by_role("heading", name="Configuration"))
    diff = section.locator("#config-diff")
    expect(diff.locator("tr[data-key=timezone]")).to_have_attribute("data-state", "same")
    expect(diff.locator("tr[data-key=motd]")).to_have_attribute("data-state", "changed")
    expect(diff.locator("tr[data-key=legacy]")).to_have_attribute("data-state", "removed")
    expect(section.locator("#config-summary")).to_contain_text("2 of 3 keys differ")
    expect(section.locator("#config-deployment")).to_contain_text("finished")
    page.shot("device-configuration")

    # the device reports what was asked: in sync
    r = device._call("PUT", "/api/devices/v1/deviceconfig/configuration", json=record["configured"])
    assert r.status_code == 204
    section.get_by_role("button", name="Refresh").click()
    section = page.locator("section.card", has=page.get_by_role("heading", name="Configuration"))
    expect(section.locator("#config-summary")).to_contain_text("in sync")
    expect(section.locator("#config-diff tr[data-state=same]")).to_have_count(2)

    # the configuration deployment's page: its type, device and keys; no release, no values
    section.locator("#config-deployment a").click()
    expect(page.locator("#configuration-keys")).to_have_text("motd, timezone")
    expect(page.locator("#configuration-device")).to_have_text(device.id)
    expect(page.locator("main")).not_to_contain_text("Europe/Oslo")
    page.goto("/#/deployments")
    expect(page.locator(f"#deployment-list tr[data-deployment-id='{deployment_id}']")).to_contain_text("configuration")
