"""The remote terminal in a real browser: the device page opens xterm.js on the deviceconnect
websocket (session cookie, same-origin check) to a simulated device; typing a command shows the
device's answer. The real mender-connect is covered by tests/e2e/test_deviceconnect.py."""

from __future__ import annotations

import os
import sqlite3
import time

from playwright.sync_api import expect

from tests.deviceconnect.live import Mgmt
from tests.deviceconnect.simdevice import SimDevice
from tests.ui.conftest import OPERATOR_EMAIL, OPERATOR_PASSWORD, login


def test_terminal_in_the_browser(page, ui_server):
    mgmt = Mgmt(ui_server.url, OPERATOR_EMAIL, OPERATOR_PASSWORD)
    dev = mgmt.device()
    device = SimDevice(ui_server.url, dev.token)
    try:
        deadline = time.monotonic() + 10
        while mgmt.state(dev.id) != "connected" and time.monotonic() < deadline:
            time.sleep(0.05)
        login(page)
        page.goto(f"/#/devices/{dev.id}")
        expect(page.locator("#connection-status")).to_contain_text("connected")
        page.click("#open-terminal")
        frame = page.frame_locator("#terminal-frame")
        expect(frame.locator("#terminal-status")).to_have_text("Connected")
        expect(frame.locator(".xterm-rows")).to_contain_text("sim$")
        frame.locator(".xterm").click()
        page.keyboard.type("echo browser 42")
        page.keyboard.press("Enter")
        expect(frame.locator(".xterm-rows")).to_contain_text("simulated: echo browser 42")
        page.shot("remote-terminal")
        assert b"".join(device.shell_input).endswith(b"echo browser 42\r")
        page.locator(".modal").get_by_role("button", name="Close terminal").click()
        # closing the frame ends the session: the device hears its shell stop
        deadline = time.monotonic() + 10
        while (1, "stop") not in device.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (1, "stop") in device.received

        # the recorded session plays back in the terminal page
        with sqlite3.connect(os.path.join(ui_server.data_dir, "mender.db")) as conn:
            (session_id,) = conn.execute("SELECT id FROM deviceconnect_sessions WHERE device_id = ?",
                                         (dev.id,)).fetchone()
        page.goto(f"/ui/terminal#session={session_id}")
        expect(page.locator("#terminal-status")).to_have_text("End of the recording")
        expect(page.locator(".xterm-rows")).to_contain_text("simulated: echo browser 42")
    finally:
        device.close()
