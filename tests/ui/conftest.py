"""Browser-test fixtures: a real gunicorn with an operator made by the CLI, and headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.helpers import ROOT, GunicornServer

CHROMIUM = "/usr/bin/chromium"
# The suite shares two cores with parallel workers and servers: a page that renders in 100 ms on an
# idle machine took over 5 s (Playwright's default wait for an assertion) under a load of 15.
expect.set_options(timeout=15000)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OPERATOR_EMAIL = "operator@example.com"
OPERATOR_PASSWORD = "correct-horse-battery-staple"


def create_user_with_cli(data_dir: str, email: str, password: str) -> None:
    env = {**os.environ, "MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"}
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "useradm", "create-user",
                        "--email", email, "--password", password],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    """A gunicorn on a fresh data dir, with one operator created through the admin CLI."""
    data_dir = str(tmp_path_factory.mktemp("ui-data"))
    create_user_with_cli(data_dir, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    with GunicornServer(data_dir, workers=1) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory):
    """Where the tests save screenshots: $UI_SCREENSHOT_DIR (e.g. docs/screenshots) or a temporary dir."""
    target = os.environ.get("UI_SCREENSHOT_DIR") or str(tmp_path_factory.mktemp("screenshots"))
    os.makedirs(target, exist_ok=True)
    return target


class PageProbe:
    """What the page did that it must not: script errors, dialogs (alert/confirm), CSP violations."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", self._dialog)
        page.on("console", self._console)

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message):
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.csp.append(message.text)


@contextmanager
def browser_page(browser, base_url: str, screenshot_dir: str, *, timeout_ms: int = 15000,
                 console_errors: bool = False):
    """A page in a fresh context; on the way out, fails on any script error or CSP violation it saw
    (and with `console_errors`, on any console error but the 401 of the session check before the
    login form shows). `page.shot(name)` saves a screenshot."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = context.new_page()
    page.probe = PageProbe(page)
    errors: list[str] = []
    if console_errors:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and "status of 401" not in m.text else None)

    def shot(name: str) -> None:
        page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())")
        page.screenshot(path=os.path.join(screenshot_dir, f"{name}.png"), full_page=True)

    page.shot = shot
    yield page
    probe = page.probe
    context.close()
    assert probe.errors == [], f"script errors: {probe.errors}"
    assert errors == [], f"console errors: {errors}"
    assert probe.csp == [], f"CSP violations: {probe.csp}"


@pytest.fixture
def page(browser, ui_server, screenshot_dir):
    with browser_page(browser, ui_server.url, screenshot_dir) as page:
        yield page


def login(page, email: str = OPERATOR_EMAIL, password: str = OPERATOR_PASSWORD) -> None:
    page.goto("/")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("form.login-form button[type=submit]")
    page.wait_for_selector("#logout")
