"""The UI at fleet scale (issue 20), in Chromium against a real gunicorn with a seeded fleet of
5,000 accepted devices: search, select all matching a filter, add them to a group in ONE request,
deploy to the group in phases and watch the per-phase counts; a 390 px screenshot; no script error
on any page."""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.helpers import GunicornServer
from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, browser_page, create_user_with_cli, login
from tests.ui.device import HttpDevice
from tests.ui.seed import FLEET_TYPE, seed_fleet
from tests.ui.test_browser_deploy import Api, upload_with_api

FLEET = 5000
REAL = 3  # of them, devices with keys that poll and report over HTTP
POLL_TIMEOUT_MS = 30000


def fleet_artifact(directory: str, name: str) -> str:
    payload, out = os.path.join(directory, "payload.txt"), os.path.join(directory, f"{name}.mender")
    with open(payload, "w") as f:
        f.write(f"payload of {name}\n")
    subprocess.run(["/usr/bin/mender-artifact", "write", "module-image", "-T", "single-file", "-n", name,
                    "-t", FLEET_TYPE, "-o", out, "-f", payload], check=True, capture_output=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory):
    """One seeded server for the module: 4,997 devices through the stores' bulk paths, 3 real ones."""
    data_dir = str(tmp_path_factory.mktemp("ui-fleet"))
    create_user_with_cli(data_dir, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    seeded = seed_fleet(data_dir, FLEET - REAL)
    with GunicornServer(data_dir, workers=1) as server:
        api = Api(server.url)
        real = [HttpDevice(server.url, identity={"mac": f"02:f2:00:00:00:{i:02x}", "sn": f"fleet-real-{i}"},
                           device_type=FLEET_TYPE) for i in range(REAL)]
        for d in real:
            api.accept(d)
            d.report_inventory({"device_type": FLEET_TYPE, "artifact_name": "factory-image", "site": "site-0"})
        upload_with_api(api, fleet_artifact(str(tmp_path_factory.mktemp("art")), "fleet-release-1"))
        server.api, server.real, server.seeded = api, real, seeded
        yield server


@pytest.fixture
def fleet_page(browser, fleet_server, screenshot_dir):
    with browser_page(browser, fleet_server.url, screenshot_dir, timeout_ms=20000, console_errors=True) as page:
        yield page


def test_group_5000_in_one_request_then_deploy_in_phases(fleet_page, fleet_server):
    page, api = fleet_page, fleet_server.api
    group_requests = []
    page.on("request", lambda r: group_requests.append((r.method, r.url)) if "/inventory/groups/" in r.url
            and r.method in ("PATCH", "PUT", "DELETE") else None)
    login(page)

    # search: the text box and a filter, both in the URL
    only_fleet = quote(json.dumps([{"scope": "inventory", "attribute": "device_type", "type": "$eq", "value": FLEET_TYPE}]))
    page.goto(f"/#/devices?status=accepted&filters={only_fleet}")
    expect(page.locator("#match-count")).to_have_text("5,000 devices match")
    page.fill("#device-search", "fleet-0001")
    page.click("#device-search-button")
    expect(page.locator("#match-count")).to_have_text("10 devices match")  # fleet-00010 … fleet-00019
    assert "q=fleet-0001" in page.url
    page.fill("#device-search", "")
    page.click("#device-search-button")
    expect(page.locator("#match-count")).to_have_text("5,000 devices match")
    page.select_option("#page-size", "100")
    expect(page.locator("tr[data-device-id]")).to_have_count(100)
    assert "per_page=100" in page.url

    # select all 5,000 matching, add them to a group: one request
    page.check("#select-page")
    expect(page.locator("#selected-count")).to_have_text("100 selected")
    page.click("#select-all-matching")
    expect(page.locator("#selected-count")).to_have_text("5,000 selected")
    page.shot("devices-select-all")
    page.click("#bulk-group")
    page.fill("#bulk-group-name", "bad name")
    expect(page.locator(".modal .field-error")).to_contain_text("Letters, digits")
    page.fill("#bulk-group-name", "fleet-wave")
    page.locator(".modal").get_by_role("button", name="Add to group").click()
    expect(page.locator(".toast", has_text="Added to fleet-wave: 5,000 devices")).to_be_visible(timeout=60000)
    assert group_requests == [("PATCH", fleet_server.url + "/api/management/v2/inventory/groups/fleet-wave/devices")]
    r = api.call("GET", "/api/management/v1/inventory/groups/fleet-wave/devices", params={"per_page": 1})
    assert r.headers["X-Total-Count"] == str(FLEET)

    # the groups page lists it with its size; deploy from there
    page.goto("/#/groups")
    row = page.locator("tr[data-group='fleet-wave']")
    expect(row.locator("td").nth(1)).to_have_text("5,000")
    page.shot("groups")
    row.get_by_role("link", name="Deploy").click()
    page.click("#wizard-next")
    expect(page.locator("#group-picker input[value='fleet-wave']")).to_be_checked()
    expect(page.locator("#target-count")).to_contain_text("5,000 devices will get this deployment")
    page.click("#wizard-next")
    page.check("#deploy-phased")
    expect(page.locator(".phase-size[data-phase='0']")).to_have_text("→ 500 devices")
    expect(page.locator(".phase-size[data-phase='1']")).to_have_text("→ 4,500 devices")
    page.fill(".phase-batch", "0")
    expect(page.locator("#phase-error")).to_contain_text("Phase 1")
    expect(page.locator("#wizard-next")).to_be_disabled()
    page.fill(".phase-batch", "20")
    expect(page.locator("#phase-error")).to_have_text("")
    expect(page.locator(".phase-size[data-phase='0']")).to_have_text("→ 1,000 devices")
    page.shot("deployment-phases-step")
    page.click("#wizard-next")
    expect(page.locator(".wizard-body")).to_contain_text("1: 20% (1,000) now; 2: the rest (4,000) at")
    page.click("#wizard-next")
    expect(page.locator("#deployment-target")).to_have_text("group fleet-wave")
    dep_id = page.url.rsplit("/", 1)[1]

    # the real devices poll and report: phase 1's counts follow
    real = fleet_server.real
    for d in real:
        assert d.next_deployment()["id"] == dep_id
    assert real[0].report(dep_id, "success").status_code == 204
    assert real[1].report(dep_id, "failure").status_code == 204
    assert real[2].report(dep_id, "downloading").status_code == 204
    phase1 = page.locator("#phase-breakdown tbody tr").first
    expect(phase1.locator("[data-key=success]")).to_have_text("1", timeout=POLL_TIMEOUT_MS)
    expect(phase1.locator("[data-key=failure]")).to_have_text("1")
    expect(phase1.locator("[data-key=inprogress]")).to_have_text("1")
    expect(phase1.locator("td").nth(3)).to_have_text("1,000")
    expect(phase1.locator("td").nth(4)).to_have_text("3")
    expect(page.locator("[data-status=pending] .status-count")).to_have_text("4,997")
    # device names as in the device list, ids on hover; attempts per device
    row = page.locator(f"tr[data-device-id='{real[1].id}']")
    expect(row.locator("a.device-link")).to_have_attribute("title", real[1].id)
    expect(row.locator("a.device-link")).not_to_have_text(real[1].id)
    expect(row).to_contain_text("1 of 1")
    page.shot("deployment-phases")

    # abort: the 4,997 that never asked are counted as aborted
    page.click("#abort-deployment")
    page.locator(".modal").get_by_role("button", name="Abort deployment").click()
    expect(page.locator("#deployment-status")).to_have_text("aborted", timeout=POLL_TIMEOUT_MS)
    expect(page.locator("[data-status=aborted] .status-count")).to_have_text("4,998")
    expect(page.locator("[data-status=pending] .status-count")).to_have_text("0")


def test_saved_filter_from_a_search_then_the_wizard_pages_through_the_fleet(fleet_page, fleet_server):
    page = fleet_page
    login(page)
    # a search with the filter builder, saved as a filter; the text box is not a filter
    site3 = quote(json.dumps([{"scope": "inventory", "attribute": "site", "type": "$eq", "value": "site-3"}]))
    page.goto(f"/#/devices?status=accepted&filters={site3}")
    expect(page.locator("#match-count")).to_have_text("999 devices match")  # i % 5 == 3 of 4,997
    page.click("#save-filter")
    page.fill("#filter-name", "site three")
    page.locator(".modal").get_by_role("button", name="Save filter").click()
    expect(page.locator(".toast", has_text='Filter "site three" saved')).to_be_visible()
    page.fill("#device-search", "fleet-0042")
    page.click("#device-search-button")
    expect(page.locator("#match-count")).to_have_text("2 devices match")  # fleet-00423, fleet-00428
    expect(page.locator("#save-filter")).to_be_disabled()

    # the Groups page counts it live; deploy from there: the wizard has it chosen, with its count
    page.goto("/#/groups")
    row = page.locator("tr", has=page.locator("a.filter-link", has_text="site three"))
    expect(row.locator("td").nth(2)).to_have_text("999")
    row.get_by_role("link", name="Deploy").click()
    page.click("#wizard-next")
    expect(page.locator("#filter-picker input[type=radio]:checked")).to_have_count(1)
    expect(page.locator("#target-count")).to_have_text("999 devices match now (devices that match later join too)")

    # picked devices: searched and paged through all 5,000
    page.get_by_label("Selected devices").check()
    picker = page.locator("#device-picker")
    expect(picker.locator(".pager")).to_contain_text("1–10 of 5,000")
    picker.get_by_role("button", name="Next ›").click()
    expect(picker.locator(".pager")).to_contain_text("11–20 of 5,000")
    picker.locator(".pick-search").fill("fleet-0421")
    expect(picker.locator(".pick-item")).to_have_count(10)  # fleet-04210 … fleet-04219
    expect(picker.locator(".pager")).to_have_count(0)
    picker.locator(".pick-item", has_text="fleet-04217").locator("input").check()
    picker.locator(".pick-search").fill("02:f1:00:10:71")  # fleet-04209's MAC (4209 = 0x1071)
    expect(picker.locator(".pick-item")).to_have_count(1)
    picker.locator(".pick-item input").check()
    expect(page.locator("#picked-count")).to_have_text("2 selected")
    expect(page.locator("#target-count")).to_have_text("2 devices will get this deployment")


def test_every_page_without_script_errors_and_390px(fleet_page, fleet_server):
    page = fleet_page
    login(page)
    # a phased deployment to a few seeded devices (they never ask), for its page
    r = fleet_server.api.call("POST", "/api/management/v1/deployments/deployments", json={
        "name": "page check", "artifact_name": "fleet-release-1", "devices": fleet_server.seeded[:4],
        "phases": [{"batch_size": 50}, {"start_ts": "2099-01-01T00:00:00Z"}]})
    assert r.status_code == 201, r.text
    pages = (("/#/", ".stat-cards"), ("/#/devices", "#match-count"), ("/#/groups", "h1"),
             ("/#/artifacts", "h1"), ("/#/deployments", "#deployment-list"),
             ("/#/deployments/new", "#wizard-next"), ("/#/users", "#add-user"),
             ("/#/settings", "#tenant-settings"), (f"/#/devices/{fleet_server.real[0].id}", "h1"),
             ("/#/releases/fleet-release-1", ".artifact"))
    pages += ((f"/#/deployments/{r.headers['Location'].rsplit('/', 1)[1]}", "#phase-breakdown"),)
    for path, ready in pages:
        page.goto(path)
        expect(page.locator(ready).first).to_be_visible()
        expect(page.locator(".loading")).to_have_count(0)
    page.goto("/#/settings")
    page.locator("#user-settings").get_by_role("button", name="+ Add setting").click()
    page.locator("#user-settings .kv-name").last.fill("theme")
    page.locator("#user-settings .kv-value").last.fill("{broken")
    expect(page.locator("#user-settings .field-error")).to_contain_text("not valid JSON")
    page.locator("#user-settings .kv-value").last.fill("dark")
    expect(page.locator("#user-settings .field-error")).to_have_text("")
    page.locator("#user-settings").get_by_role("button", name="Save").click()
    expect(page.locator(".toast", has_text="My settings saved")).to_be_visible()
    page.shot("settings")

    # on a phone: no page is wider than the screen (tables scroll inside their card, the
    # navigation sideways), and the wizard's steps fit
    page.set_viewport_size({"width": 390, "height": 844})
    for path, ready in pages + (("/#/deployments/new", "#wizard-next"),):
        page.goto(path)
        expect(page.locator(ready).first).to_be_visible()
        expect(page.locator(".loading")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide at 390 px"
        if path == "/#/devices":
            page.shot("devices-390px")
    page.click("#wizard-next")
    page.get_by_label("Selected devices").check()
    expect(page.locator("#device-picker .pick-item")).to_have_count(10)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
