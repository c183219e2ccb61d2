"""Device admission in a real browser: accept a pending device, preauthorize one device or a CSV
file; a device attribute `<img src=x onerror=alert(1)>` is shown as text."""

from __future__ import annotations

import csv
import json
from urllib.parse import quote

from playwright.sync_api import expect

from tests.ui.conftest import login
from tests.ui.device import HttpDevice

XSS = "<img src=x onerror=alert(1)>"
DEVICE_TYPE = "ui-test-board"


def test_accept_pending_device_and_untrusted_attributes_are_text(page, ui_server):
    device = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
    assert device.auth().status_code == 401  # pending
    login(page)
    page.goto("/#/devices?status=pending")
    row = page.locator("tr", has_text=device.identity["mac"])
    expect(row).to_be_visible()
    page.shot("devices-pending")
    row.get_by_role("button", name="Accept").click()
    expect(page.locator(".toast", has_text="Device accepted")).to_be_visible()
    expect(page.locator("tr", has_text=device.identity["mac"])).to_have_count(0)
    assert device.auth().status_code == 200

    device.report_inventory({"device_type": DEVICE_TYPE, "artifact_name": "factory-image", "hostname": XSS,
                             "kernel": "Linux 6.1.0", "cpu_model": "ARMv8 Cortex-A53"})
    page.goto("/#/devices?status=accepted")
    expect(page.locator(f"tr[data-device-id='{device.id}']")).to_be_visible()
    page.goto(f"/#/devices/{device.id}")
    expect(page.get_by_text(XSS, exact=True)).to_be_visible()
    assert page.locator("img[src='x']").count() == 0
    assert page.probe.dialogs == []
    page.shot("device")


def test_preauthorize_one_device_and_a_csv_file(page, ui_server, tmp_path):
    login(page)
    single = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
    page.goto("/#/devices?status=preauthorized")
    page.get_by_role("button", name="Preauthorize", exact=True).click()
    page.fill("#preauth-identity", json.dumps(single.identity))
    page.fill("#preauth-pubkey", single.pubkey)
    page.locator(".modal").get_by_role("button", name="Preauthorize").click()
    expect(page.locator(".toast", has_text="Device preauthorized")).to_be_visible()
    expect(page.locator("tr", has_text=single.identity["mac"])).to_be_visible()
    assert single.auth().status_code == 200  # a preauthorized device is admitted at once

    batch = [HttpDevice(ui_server.url, device_type=DEVICE_TYPE) for _ in range(2)]
    csv_path = tmp_path / "devices.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["mac", "sn", "pubkey"])
        for d in batch:
            writer.writerow([d.identity["mac"], d.identity["sn"], d.pubkey])
    page.get_by_role("button", name="Import preauthorizations").click()
    page.set_input_files("#preauth-file", str(csv_path))
    page.locator(".modal").get_by_role("button", name="Import").click()
    expect(page.locator(".toast", has_text="Preauthorized 2 device(s)")).to_be_visible()
    for d in batch:
        expect(page.locator("tr", has_text=d.identity["mac"])).to_be_visible()
    page.shot("devices-preauthorized")
    assert batch[0].auth().status_code == 200


def test_group_tags_filters_and_sorting(page, ui_server):
    from tests.ui.test_browser_deploy import Api
    api = Api(ui_server.url)
    devices = [HttpDevice(ui_server.url, device_type=t) for t in ("board-a", "board-b")]
    for d in devices:
        api.accept(d)
        d.report_inventory({"device_type": d.device_type, "artifact_name": "factory-image"})
    first = devices[0]
    login(page)
    page.goto(f"/#/devices/{first.id}")
    page.get_by_role("button", name="Set group").click()
    page.fill("#group-name", "field-units")
    page.locator(".modal").get_by_role("button", name="Save").click()
    expect(page.locator("#device-group")).to_have_text("field-units")
    page.get_by_role("button", name="+ Add tag").click()
    page.locator(".tag-name").last.fill("location")
    page.locator(".tag-value").last.fill("rack 7")
    page.click("#save-tags")
    expect(page.locator(".toast", has_text="Tags saved")).to_be_visible()
    expect(page.locator(".tag-value")).to_have_value("rack 7")

    # a filter on the group finds only that device; a filter on the tag too; a miss shows the empty state
    page.goto("/#/devices?status=accepted")
    page.click("details.filters summary")
    page.get_by_role("button", name="+ Add filter").click()
    page.select_option(".filter-scope", "system")
    page.fill(".filter-attribute", "group")
    page.fill(".filter-value", "field-units")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator("tr[data-device-id]")).to_have_count(1)
    expect(page.locator(f"tr[data-device-id='{first.id}']")).to_be_visible()
    page.select_option(".filter-scope", "tags")
    page.fill(".filter-attribute", "location")
    page.fill(".filter-value", "rack 7")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(f"tr[data-device-id='{first.id}']")).to_be_visible()
    expect(page.locator("tr[data-device-id]")).to_have_count(1)
    page.fill(".filter-value", "nowhere")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.locator(".empty")).to_contain_text("No device matches these filters.")
    page.get_by_role("button", name="Clear").click()

    # sorting by device type, both ways
    only_boards = quote(json.dumps([{"scope": "inventory", "attribute": "device_type", "type": "$in",
                                     "value": ["board-a", "board-b"]}]))
    page.goto(f"/#/devices?status=accepted&sort=inventory:device_type:asc&filters={only_boards}")
    types = page.locator("tr[data-device-id] td:nth-child(3)")
    expect(types).to_have_text(["board-a", "board-b"])
    page.get_by_role("button", name="Device type ▲").click()
    expect(types).to_have_text(["board-b", "board-a"])
    expect(page.get_by_role("button", name="Device type ▼")).to_be_visible()
    page.shot("devices")


def test_bulk_reject_and_decommission(page, ui_server):
    from tests.ui.test_browser_deploy import Api
    api = Api(ui_server.url)
    pending = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
    assert pending.auth().status_code == 401
    login(page)
    page.goto("/#/devices?status=pending")
    row = page.locator("tr", has_text=pending.identity["mac"])
    row.locator("input.row-check").check()
    page.locator(".bulk-bar").get_by_role("button", name="Reject").click()
    expect(page.locator(".toast", has_text="Rejected: 1 device")).to_be_visible()
    page.goto("/#/devices?status=rejected")
    expect(page.locator("tr", has_text=pending.identity["mac"])).to_be_visible()
    assert pending.auth().status_code == 401

    accepted = HttpDevice(ui_server.url, device_type=DEVICE_TYPE)
    api.accept(accepted)
    page.goto(f"/#/devices/{accepted.id}")
    page.get_by_role("button", name="Decommission").click()
    page.locator(".modal").get_by_role("button", name="Decommission").click()
    expect(page.locator(".toast", has_text="Device decommissioned")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Devices")
    assert api.call("GET", f"/api/management/v2/devauth/devices/{accepted.id}").status_code == 404
    assert accepted.auth().status_code == 401  # it must be admitted again


def test_paging_through_pending_devices(page, ui_server):
    marker = "pager-test"
    for i in range(22):
        d = HttpDevice(ui_server.url, identity={"mac": f"02:aa:00:00:00:{i:02x}", "batch": marker})
        assert d.auth().status_code == 401
    only_batch = quote(json.dumps([{"scope": "identity", "attribute": "batch", "type": "$eq", "value": marker}]))
    login(page)
    page.goto(f"/#/devices?status=pending&filters={only_batch}")
    expect(page.locator(".pager")).to_contain_text("1–20 of 22")
    expect(page.locator("tr[data-device-id]")).to_have_count(20)
    page.locator(".pager").get_by_role("button", name="Next ›").click()
    expect(page.locator(".pager")).to_contain_text("21–22 of 22")
    expect(page.locator("tr[data-device-id]")).to_have_count(2)
    assert "page=2" in page.url


def test_bulk_accept_tag_and_decommission_all_matching_one_request_each(page, ui_server):
    from tests.ui.test_browser_deploy import Api
    marker, count = "bulk-test", 21  # one more than a page
    devices = [HttpDevice(ui_server.url, identity={"mac": f"02:bb:00:00:00:{i:02x}", "batch": marker})
               for i in range(count)]
    for d in devices:
        assert d.auth().status_code == 401
    writes = []  # every management write but searches
    page.on("request", lambda r: writes.append((r.method, r.url.split("/api/management/")[1]))
            if "/api/management/" in r.url and r.method != "GET" and not r.url.endswith("/filters/search") else None)
    only_batch = quote(json.dumps([{"scope": "identity", "attribute": "batch", "type": "$eq", "value": marker}]))

    def select_all_matching(status: str) -> None:
        page.goto(f"/#/devices?status={status}&filters={only_batch}")
        expect(page.locator("#match-count")).to_have_text(f"{count} devices match")
        page.check("#select-page")
        page.click("#select-all-matching")
        expect(page.locator("#selected-count")).to_have_text(f"{count} selected")
        writes.clear()

    login(page)
    select_all_matching("pending")
    page.locator(".bulk-bar").get_by_role("button", name="Accept").click()
    expect(page.locator(".toast", has_text=f"Accepted: {count} devices")).to_be_visible()
    assert writes == [("PUT", "v2/devauth/devices/status")]
    expect(page.locator(".toast")).to_have_count(1)  # one summary, never a toast per device
    assert all(d.auth().status_code == 200 for d in devices)

    select_all_matching("accepted")
    page.click("#bulk-tag")
    page.fill("#bulk-tag-name", "rack")
    page.fill("#bulk-tag-value", "r7")
    page.locator(".modal").get_by_role("button", name="Apply").click()
    expect(page.locator(".toast", has_text=f"Tagged rack: {count} devices")).to_be_visible()
    assert writes == [("PATCH", "v2/inventory/devices/tags")]
    page.goto(f"/#/devices/{devices[-1].id}")
    expect(page.locator(".tag-value")).to_have_value("r7")

    select_all_matching("accepted")
    page.locator(".bulk-bar").get_by_role("button", name="Decommission").click()
    page.locator(".modal").get_by_role("button", name="Decommission").click()
    expect(page.locator(".toast", has_text=f"Decommissioned: {count} devices")).to_be_visible()
    assert writes == [("DELETE", "v2/devauth/devices")]
    expect(page.locator(".empty")).to_be_visible()
    assert all(d.auth().status_code == 401 for d in devices)
