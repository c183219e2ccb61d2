"""The web UI in a real browser (headless Chromium via Playwright) against a real gunicorn.

Login and logout, device admission (accept, preauthorize one device or a CSV file), and a device
attribute `<img src=x onerror=alert(1)>` shown as text. Screenshots go to $UI_SCREENSHOT_DIR.
"""

from __future__ import annotations

import csv
import json
import re

import requests
from playwright.sync_api import expect

from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, login
from tests.ui.device import HttpDevice

XSS = "<img src=x onerror=alert(1)>"
DEVICE_TYPE = "ui-test-board"


def test_login_rejects_wrong_password_and_logout_ends_the_session(page):
    page.goto("/")
    expect(page.locator("#login-email")).to_be_visible()
    page.shot("login")
    page.fill("#login-email", OPERATOR_EMAIL)
    page.fill("#login-password", "not-the-password")
    page.click("form.login-form button[type=submit]")
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    login(page)
    expect(page.locator("h1")).to_have_text("Dashboard")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["JWT"]["httpOnly"] and cookies["JWT"]["sameSite"] == "Strict"
    assert not cookies["csrf"]["httpOnly"]
    assert page.evaluate("document.cookie").count("JWT=") == 0  # the token is out of the script's reach
    page.click("#logout")
    expect(page.locator("#login-email")).to_be_visible()
    page.reload()
    expect(page.locator("#login-email")).to_be_visible()
    assert "JWT" not in {c["name"] for c in page.context.cookies()}


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


def test_users_access_tokens_and_settings(page, ui_server):
    login(page)
    page.goto("/#/users")
    page.click("#add-user")
    page.fill("#new-user-email", "colleague@example.com")
    page.fill("#new-user-password", "a-long-enough-password")
    page.locator(".modal").get_by_role("button", name="Add user").click()
    expect(page.locator("tr", has_text="colleague@example.com")).to_be_visible()

    page.click("#new-token-button")
    page.fill("#token-name", "ci pipeline")
    page.locator(".modal").get_by_role("button", name="Create").click()
    token = page.locator("#new-token").input_value()
    r = requests.get(ui_server.url + "/api/management/v1/useradm/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200 and r.json()["email"] == OPERATOR_EMAIL
    page.locator(".modal").get_by_role("button", name="Done").click()
    expect(page.locator("tr", has_text="ci pipeline")).to_be_visible()
    page.shot("users")
    page.locator("tr", has_text="ci pipeline").get_by_role("button", name="Revoke").click()
    page.locator(".modal").get_by_role("button", name="Revoke").click()
    expect(page.locator("tr", has_text="ci pipeline")).to_have_count(0)
    r = requests.get(ui_server.url + "/api/management/v1/useradm/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 401

    page.goto("/#/settings")
    page.fill("#id-attribute", "sn")
    page.select_option("#id-scope", "identity")
    page.get_by_role("button", name="Save", exact=True).first.click()
    expect(page.locator(".toast", has_text="Device name attribute saved")).to_be_visible()
    expect(page.locator("#tenant-settings")).to_have_value(re.compile(r'"attribute": "sn"'))
    page.shot("settings")
