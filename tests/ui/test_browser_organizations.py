"""The web UI and organizations (headless Chromium): the organization's name in the header, its
tenant token in Settings (copy, rotate)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests
from playwright.sync_api import expect

from tests.helpers import ROOT
from tests.ui.conftest import login

ORG_EMAIL = "ops@acme.example.com"
ORG_PASSWORD = "acme-operator-password"


@pytest.fixture(scope="module")
def acme(ui_server):
    """An organization made with the admin CLI on the running server's data."""
    env = {**os.environ, "MENDER_DATA_DIR": ui_server.data_dir, "MENDER_LOG_LEVEL": "warning"}
    r = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "tenantadm", "create-org", "--name", "Acme",
                        "--admin-email", ORG_EMAIL], input=ORG_PASSWORD + "\n", cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())


def test_header_names_the_organization(page, acme):
    login(page)
    expect(page.locator("#org-name")).to_have_text("Default organization")
    page.click("#logout")
    login(page, ORG_EMAIL, ORG_PASSWORD)
    expect(page.locator("#org-name")).to_have_text("Acme")


def test_tenant_token_copy_and_rotate(page, ui_server, acme):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, ORG_EMAIL, ORG_PASSWORD)
    page.goto("/#/settings")
    expect(page.locator("#organization-name")).to_have_text("Acme")
    expect(page.locator("#organization-id")).to_have_text(acme["id"])
    token = page.locator("#tenant-token")
    expect(token).to_have_value(acme["tenant_token"])
    page.click("#copy-tenant-token")
    expect(page.locator(".toast", has_text="Tenant token copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == acme["tenant_token"]
    page.shot("settings-organization")

    page.click("#rotate-tenant-token")
    page.locator(".modal").get_by_role("button", name="Cancel").click()  # asks first
    expect(token).to_have_value(acme["tenant_token"])
    page.click("#rotate-tenant-token")
    page.locator(".modal").get_by_role("button", name="Rotate").click()
    expect(page.locator(".toast", has_text="Tenant token rotated")).to_be_visible()
    expect(token).not_to_have_value(acme["tenant_token"])
    rotated = token.input_value()
    stored = requests.get(f"{ui_server.internal_url}/api/internal/v1/tenantadm/tenants/{acme['id']}", timeout=10).json()
    assert stored["tenant_token"] == rotated
    page.reload()
    expect(page.locator("#tenant-token")).to_have_value(rotated)
