"""Roles and the audit log in the web UI (real gunicorn, headless Chromium): a custom role limited
to a device group, a user given a role with the picker, the audit log with its filter and CSV
export, and what a read-only user is shown (disabled controls with the reason)."""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from tests.ui.conftest import login

OBSERVER_EMAIL = "observer@example.com"
OBSERVER_PASSWORD = "observer-password-1"


def test_roles_users_and_the_audit_log(page, browser, ui_server):
    login(page)
    page.goto("/#/roles")
    expect(page.locator("tr", has_text="RBAC_ROLE_OBSERVER")).to_be_visible()
    page.click("#new-role")
    page.fill("#role-name", "lab-readers")
    page.fill("#role-description", "read the lab devices")
    page.check("#role-set-ReadDevices")
    page.fill("#role-scope-ReadDevices", "lab")
    page.locator(".modal").get_by_role("button", name="Create role").click()
    row = page.locator("tr", has_text="lab-readers")
    expect(row).to_contain_text("limited to groups: lab")

    page.goto("/#/users")
    page.click("#add-user")
    page.fill("#new-user-email", OBSERVER_EMAIL)
    page.fill("#new-user-password", OBSERVER_PASSWORD)
    page.uncheck("#new-user-roles-RBAC_ROLE_PERMIT_ALL")
    page.check("#new-user-roles-RBAC_ROLE_OBSERVER")
    page.locator(".modal").get_by_role("button", name="Add user").click()
    expect(page.locator("tr", has_text=OBSERVER_EMAIL)).to_contain_text("RBAC_ROLE_OBSERVER")

    page.goto("/#/auditlog")
    expect(page.locator("tr", has_text="lab-readers")).to_contain_text("create")
    page.select_option("#audit-type", "user")
    page.locator("#audit-filters").get_by_role("button", name="Filter").click()
    expect(page.locator("tr", has_text=OBSERVER_EMAIL)).to_be_visible()
    expect(page.locator("tr", has_text="lab-readers")).to_have_count(0)
    href = page.locator("#audit-export").get_attribute("href")
    assert href.startswith("/api/management/v1/auditlogs/logs/export?") and "object_type=user" in href
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = requests.get(ui_server.url + href, cookies={"JWT": cookies["JWT"]}, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv") and OBSERVER_EMAIL in r.text
    page.shot("auditlog")

    # a read-only user: the controls it cannot use are disabled, saying why
    context = browser.new_context(base_url=ui_server.url)
    other = context.new_page()
    try:
        login(other, OBSERVER_EMAIL, OBSERVER_PASSWORD)
        other.goto("/#/users")
        expect(other.locator("#add-user")).to_be_disabled()
        expect(other.locator("#add-user-reason")).to_contain_text("ManageUsers")
        expect(other.locator("tr", has_text=OBSERVER_EMAIL)).to_be_visible()
        other.goto("/#/roles")
        expect(other.locator("#new-role")).to_be_disabled()
        other.goto("/#/auditlog")
        expect(other.locator("tr", has_text="lab-readers")).to_be_visible()
    finally:
        context.close()
