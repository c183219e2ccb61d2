"""Settings → Integrations in a real browser against a real gunicorn: add a signed webhook (the
secret generated in the page), see an event's failed first attempt and its retry succeed in the
recent deliveries, remove the webhook. The receiver is a real HTTP server on loopback."""

from __future__ import annotations

import base64

import pytest
import requests
from playwright.sync_api import expect

from tests.helpers import Device, GunicornServer
from tests.iotmanager.receiver import Receiver
from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, create_user_with_cli, login

HOOKS = "/api/management/v1/iot-manager"


@pytest.fixture(scope="module")
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, receiver):
    """The browser tests' server, allowed to post to loopback (the receiver), retrying quickly."""
    data_dir = str(tmp_path_factory.mktemp("ui-hooks"))
    create_user_with_cli(data_dir, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    env = {"IOT_MANAGER_DOMAIN_SKIPVERIFY": "true", "IOT_MANAGER_WEBHOOKS_POLL_SECONDS": "0.2",
           "IOT_MANAGER_WEBHOOKS_RETRY_BASE_SECONDS": "0.2"}
    with GunicornServer(data_dir, env=env, workers=1) as server:
        yield server


def api_session(server) -> requests.Session:
    basic = base64.b64encode(f"{OPERATOR_EMAIL}:{OPERATOR_PASSWORD}".encode()).decode()
    token = requests.post(server.url + "/api/management/v1/useradm/auth/login",
                          headers={"Authorization": f"Basic {basic}"}, timeout=10).text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def test_add_a_webhook_see_its_deliveries_and_remove_it(page, ui_server, receiver):
    api = api_session(ui_server)
    login(page)
    page.goto("/#/settings")
    page.click("#integrations-link")
    expect(page.locator("h1")).to_have_text("Integrations")
    expect(page.locator("#webhook-list")).to_contain_text("No webhooks")

    page.fill("#webhook-url", "ftp://example.com/hook")
    page.click("#webhook-create")
    expect(page.locator("#webhook-form [role=alert]")).to_have_text("Only http:// and https:// URLs.")
    page.fill("#webhook-url", receiver.url)
    page.fill("#webhook-description", "ops receiver")
    page.click("#webhook-generate")
    secret = page.locator("#webhook-secret").input_value()
    assert len(secret) == 64 and int(secret, 16) >= 0
    page.click("#webhook-create")
    row = page.locator(".webhook-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(receiver.url)
    expect(row).to_contain_text("yes")  # signed
    assert secret not in page.content()  # once sent, the secret is never shown again
    [hook] = api.get(ui_server.url + f"{HOOKS}/integrations", timeout=10).json()
    assert hook["description"] == "ops receiver" and hook["credentials"]["http"]["secret"] == "<omitted>"

    # an event whose first attempt fails: the page shows the retry's success, with both attempts counted
    receiver.behaviour.fail_first = 1
    device = Device(None)
    r = api.post(ui_server.url + "/api/management/v2/devauth/devices",
                 json={"identity_data": device.identity, "pubkey": device.pubkey}, timeout=10)
    assert r.status_code == 201, r.text
    device_id = r.headers["Location"].rsplit("/", 1)[1]
    got = receiver.wait_for(2)
    assert [g.json["data"] for g in got] == [{"id": device_id, "status": "preauthorized"}] * 2
    assert all(g.signature_ok(bytes.fromhex(secret)) for g in got)
    event = page.locator(".event-row", has_text=device_id)
    expect(event).to_contain_text("device-status-changed", timeout=20000)  # the list refreshes itself
    delivery = event.locator(f".delivery[data-integration='{hook['id']}']")
    expect(delivery).to_have_attribute("data-state", "delivered", timeout=20000)
    expect(delivery).to_contain_text("HTTP 200")
    expect(delivery).to_contain_text("2 attempts")
    page.shot("integrations")

    row.get_by_role("button", name="Remove").click()
    page.locator(".modal").get_by_role("button", name="Remove").click()
    expect(page.locator(".webhook-row")).to_have_count(0)
    assert api.get(ui_server.url + f"{HOOKS}/integrations", timeout=10).json() == []
