"""Names are printable text (issue 14): where Mender restricts a string field (group names, release
tags, release notes) and the names an operator reads (attribute and tag names, deployment,
filter and token names), control, bidirectional-format and other invisible characters are a 400."""

from __future__ import annotations

import io

import pytest

from common.text import escape_controls, is_printable
from tests.artifacts.tools import craft
from tests.common.test_http import assert_error

HOSTILE = ["a\x00b", "a\nb", "trailing\n", "a\rb", "\x1b[31mred", "a\u202eb", "a\u200fb", "a\u2028b", "\ufeffbom"]


@pytest.mark.parametrize("text,ok", [("plain", True), ("é日本 ünïcödé 💥", True), ("a b", True),
                                     ("a\u00a0b", True), ("a\x00", False), ("a\n", False),
                                     ("\u202e", False), ("\ue000", False), ("\U000e0001", False)])
def test_is_printable(text, ok):
    assert is_printable(text) is ok


def test_is_printable_lets_newlines_through_on_request():
    assert is_printable("line 1\nline 2\r\n\tend", allow_newlines=True)
    assert not is_printable("line\x00", allow_newlines=True)


def test_group_names(operator, device_factory):
    device = device_factory()
    for name in HOSTILE + ["has space", "dot.ted"]:
        r = operator.put(f"/api/management/v1/inventory/devices/{device.id}/group", json={"group": name})
        assert_error(r, 400)
    assert operator.put(f"/api/management/v1/inventory/devices/{device.id}/group",
                        json={"group": "Good_group-1"}).status_code == 204


def test_attribute_and_tag_names(operator, device_factory):
    device = device_factory()
    path = "/api/devices/v1/inventory/device/attributes"
    for name in HOSTILE:
        r = device.request("PATCH", path, json=[{"name": name, "value": "v"}])
        assert "name: only printable characters" in assert_error(r, 400)["error"], name
        r = operator.put(f"/api/management/v1/inventory/devices/{device.id}/tags", json=[{"name": name, "value": "v"}])
        assert_error(r, 400)
    ok = [{"name": "rootfs-image.version", "value": "v\nwith newline"}, {"name": "név 名前", "value": "x"}]
    assert device.request("PATCH", path, json=ok).status_code == 200
    names = {a["name"] for a in operator.get(f"/api/management/v1/inventory/devices/{device.id}").get_json()["attributes"]}
    assert {"rootfs-image.version", "név 名前"} <= names


def test_release_tags_and_notes(operator):
    data = craft(name="printable-release")
    r = operator.post("/api/management/v1/deployments/artifacts", content_type="multipart/form-data",
                      data={"size": str(len(data)), "artifact": (io.BytesIO(data), "a.mender")})
    assert r.status_code == 201, r.data
    release = "/api/management/v2/deployments/deployments/releases/printable-release"
    for tag in HOSTILE:
        assert_error(operator.put(release + "/tags", json=[tag]), 400)
    assert operator.put(release + "/tags", json=["stable", "v1.2"]).status_code == 204
    for notes in ["a\x00b", "\x1b[2J", "a\u202eb"]:
        assert_error(operator.patch(release, json={"notes": notes}), 400)
    assert operator.patch(release, json={"notes": "First line.\nSecond line, 日本."}).status_code == 204
    assert operator.get(release).get_json()["notes"] == "First line.\nSecond line, 日本."


def test_deployment_filter_and_token_names(operator):
    for name in HOSTILE:
        r = operator.post("/api/management/v1/deployments/deployments",
                          json={"name": name, "artifact_name": "a", "devices": ["d"]})
        assert "name" in assert_error(r, 400)["error"]
        r = operator.post("/api/management/v2/inventory/filters",
                          json={"name": name, "terms": [{"scope": "inventory", "attribute": "a", "type": "$eq",
                                                         "value": "b"}]})
        assert_error(r, 400)
        assert_error(operator.post("/api/management/v1/useradm/settings/tokens", json={"name": name}), 400)


def test_emails_with_a_trailing_newline(operator):
    r = operator.post("/api/management/v1/useradm/users", json={"email": "new@example.com\n", "password": "12345678x"})
    assert_error(r, 400)


@pytest.mark.parametrize("text,shown", [("plain é 日本", "plain é 日本"), ("a\r\nb", "a\\r\\nb"), ("\x1b[2J", "\\x1b[2J"),
                                        ("C:\\tmp", "C:\\\\tmp"), ("\\n", "\\\\n"), ("a\u2028b\u202e", "a\\u2028b\\u202e"),
                                        ("\x85\x00", "\\x85\\x00"), ("\U000e0001", "\\U000e0001"), ("a\tb", "a\\tb")])
def test_escape_controls_makes_one_unambiguous_line(text, shown):
    assert escape_controls(text) == shown
    assert is_printable(escape_controls(text))
