"""The web UI in a real browser (headless Chromium via Playwright) against a real gunicorn.

Login and logout, users, access tokens and settings. Screenshots go to $UI_SCREENSHOT_DIR.
"""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, login



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
    page.select_option("#token-expiry", "0")  # never
    page.locator(".modal").get_by_role("button", name="Create").click()
    token = page.locator("#new-token").input_value()
    r = requests.get(ui_server.url + "/api/management/v1/useradm/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200 and r.json()["email"] == OPERATOR_EMAIL
    page.locator(".modal").get_by_role("button", name="Done").click()
    # the API says Go's zero time for "never" (as Mender); the page says never, not "Jan 1, 1"
    expect(page.locator("tr", has_text="ci pipeline").locator("td").nth(2)).to_have_text("never")
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
    page.reload()
    expect(page.locator("#id-attribute")).to_have_value("sn")  # kept in the organization settings
    page.shot("settings")


def test_api_docs_work_under_their_content_security_policy(page, ui_server):
    """Swagger UI at /api/docs renders the spec from local assets with no CSP violation, and the
    page may not be framed by anyone."""
    r = requests.get(ui_server.url + "/api/docs", timeout=10)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "'unsafe-eval'" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    page.goto("/api/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Mender-compatible OTA server")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    # the document declares its schemes, so "Authorize" offers bearer tokens and Basic for login
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".auth-container")
    expect(dialog).to_have_count(3)  # ManagementJWT, DeviceJWT, Login
    expect(dialog.filter(has_text="Basic")).to_have_count(1)
    expect(dialog.filter(has_text="bearer")).to_have_count(2)

    # "Try it out" works: Basic on login gives a token, the token as ManagementJWT lists devices
    login_scheme = dialog.filter(has_text="Basic")
    login_scheme.locator("input[type=text]").fill(OPERATOR_EMAIL)
    login_scheme.locator("input[type=password]").fill(OPERATOR_PASSWORD)
    login_scheme.get_by_role("button", name="Authorize").click()
    page.locator(".auth-btn-wrapper .btn-done").first.click()
    token = try_it_out(page, "post", "/api/management/v1/useradm/auth/login")
    assert token.count(".") == 2  # a JWT
    page.locator(".auth-wrapper .authorize").click()
    management = page.locator(".auth-container", has_text="ManagementJWT")
    management.locator("input[type=text]").fill(token)
    management.get_by_role("button", name="Authorize").click()
    page.locator(".auth-btn-wrapper .btn-done").first.click()
    assert try_it_out(page, "get", "/api/management/v1/useradm/users/me").count(OPERATOR_EMAIL) == 1
    # the page fixture fails the test on any CSP violation or script error it saw


def try_it_out(page, method: str, path: str) -> str:
    """Open an operation in Swagger UI, execute it as it stands, expect 200; the response body."""
    block = page.locator(f".opblock-{method}", has=page.locator(f".opblock-summary-path[data-path='{path}']"))
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    response = block.locator(".live-responses-table .response").first
    expect(response.locator(".response-col_status")).to_have_text("200")
    # the body's own block (the headers are a <pre> too, and may be drawn before the body)
    return response.locator(".response-col_description .highlight-code pre").first.inner_text().strip()


def test_a_second_load_takes_every_module_from_the_browser_cache(page):
    """The pages name their static files by content hash (ui/assets.py): after the first load the
    browser neither fetches nor revalidates a module, and the page works."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    sent, cached = {}, set()
    cdp.on("Network.requestWillBeSent", lambda e: sent.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
    cdp.on("Network.responseReceived",
           lambda e: cached.add(e["requestId"]) if e["response"].get("fromDiskCache") else None)
    login(page)
    page.goto("/#/devices")
    page.wait_for_selector("h1:text('Devices')")
    first = {i: u for i, u in sent.items() if "/ui/static/js/" in u}
    # the pages are modules loaded when first shown
    assert any("/ui/static/js/pages/devices.js?v=" in u for u in first.values())
    assert not any("/ui/static/js/pages/users.js" in u for u in first.values())
    page.goto("about:blank")
    sent.clear()
    cached.clear()
    page.goto("/#/devices")
    page.wait_for_selector("#logout")
    second = {i: u for i, u in sent.items() if "/ui/static/" in u}
    assert second, "the page's static files were not requested at all"
    assert all("?v=" in u for u in second.values()), second
    assert {i for i in second if i not in cached} == set(), sorted(second.values())
