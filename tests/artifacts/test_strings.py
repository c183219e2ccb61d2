"""Artifact names and metadata strings: printable only, as Mender's reader; and downloads of any
stored name still answer (Content-Disposition encoded per RFC 6266 / 8187)."""

from __future__ import annotations

import io
import json

import pytest

from deployments.artifacts.limits import InvalidArtifact
from deployments.artifacts.parser import parse_artifact
from deployments.artifacts.strings import content_disposition, description_problem, string_problem
from tests.artifacts.helpers import UPLOAD, assert_nothing_left, upload
from tests.artifacts.test_links import fetch
from tests.artifacts.tools import craft

HOSTILE = ["line\r\nbreak", "nul\0byte", "tab\there", "rtl\u200fmark", "bell\x07", "zero\u200bwidth",
           "nbsp\u00a0space", "del\x7f", "lone\ud800surrogate", "para\u2029sep"]


def test_the_rule_is_gos_unicode_isprint():
    for ok in ("app-1.0", "Ärtifact ünïcode", "名前", "emoji-🚀", "a b", "x" * 256, "é" * 128, "!#$%&'()*+,/:;<=>?@[]^`{|}~"):
        assert string_problem(ok, 256) is None, ok
    for bad in HOSTILE:
        assert "not printable" in string_problem(bad, 256), repr(bad)
    assert string_problem("x" * 257, 256) == "is longer than 256 bytes"
    assert string_problem("é" * 129, 256) == "is longer than 256 bytes"
    assert description_problem("two\nlines\r\n\twith tabs, ünïcode") is None
    assert "U+0000" in description_problem("nul\0") and "U+001B" in description_problem("esc\x1b")


def _header_info(name="ok", device_types=("dt",), provides=None, depends=None) -> dict:
    return {"payloads": [{"type": "single-file"}],
            "artifact_provides": {"artifact_name": name, **(provides or {})},
            "artifact_depends": {"device_type": list(device_types), **(depends or {})}}


def _refused(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidArtifact) as exc:
        parse_artifact(io.BytesIO(data))
    assert reason in exc.value.message, exc.value.message


@pytest.mark.parametrize("bad", [h for h in HOSTILE if "\ud800" not in h])  # lone surrogates: below
def test_every_restricted_field_refuses_unprintable_characters(bad):
    _refused(craft(header_info=_header_info(name=bad)), "the artifact name contains a character that is not printable")
    _refused(craft(header_info=_header_info(device_types=("dt", bad))), "artifact_depends.device_type contains")
    _refused(craft(header_info=_header_info(provides={"artifact_group": bad})), "artifact_provides.artifact_group")
    _refused(craft(header_info=_header_info(depends={"artifact_name": [bad]})), "artifact_depends.artifact_name")
    _refused(craft(type_info={"type": "single-file", "artifact_provides": {"k": bad}}),
             "headers/0000/type-info: artifact_provides.k contains")
    _refused(craft(type_info={"type": "single-file", "artifact_provides": {bad: "v"}}),
             "headers/0000/type-info: artifact_provides: a key contains")
    _refused(craft(type_info={"type": "single-file", "artifact_depends": {"k": [bad]}}),
             "artifact_depends.k contains")
    _refused(craft(type_info={"type": "single-file", "clears_artifact_provides": [bad]}),
             "clears_artifact_provides contains")
    if len(bad.split()) == 1 and not any(c in bad for c in "\0\ud800"):  # else the manifest or tar name breaks first
        _refused(craft(files=[(f"f{bad}", b"x")]), "is not allowed")


def test_lengths_follow_mender():
    assert parse_artifact(io.BytesIO(craft(header_info=_header_info(name="n" * 256)))).name == "n" * 256
    _refused(craft(header_info=_header_info(name="n" * 257)), "the artifact name is longer than 256 bytes")
    _refused(craft(header_info=_header_info(device_types=("d" * 257,))), "is longer than 256 bytes")
    meta = parse_artifact(io.BytesIO(craft(type_info={"type": "single-file", "artifact_provides": {"k": "v" * 4096}})))
    assert meta.provides["k"] == "v" * 4096
    _refused(craft(type_info={"type": "single-file", "artifact_provides": {"k": "v" * 4097}}), "longer than 4096")


def test_json_with_lone_surrogates_is_refused():
    raw = json.dumps({"type": "single-file"})[:-1] + ', "x": "\\udc80"}'
    data = craft(header_members=[("header-info", json.dumps(_header_info()).encode()),
                                 ("headers/0000/type-info", raw.encode()),
                                 ("headers/0000/meta-data", b'{"k": "\\ud800"}')])
    _refused(data, "is not valid JSON")


def test_upload_with_a_name_holding_cr_lf_or_nul_is_400(app, operator):
    for name in ("evil\r\nSet-Cookie: x=1", "nul\0name"):
        r = upload(operator, craft(header_info=_header_info(name=name)))
        assert r.status_code == 400 and "not printable" in r.get_json()["error"], r.get_json()
    r = upload(operator, craft("fine"), description="bad\0description")
    assert r.status_code == 400 and r.get_json()["error"].startswith("description:")
    assert_nothing_left(app, operator)
    r = upload(operator, craft("fine"), description="two\nlines")
    assert r.status_code == 201
    r = operator.put(r.headers["Location"], json={"description": "esc\x1b[2J"})
    assert r.status_code == 400 and r.get_json()["error"].startswith("description:")


def test_generate_applies_the_same_rules(app, operator):
    for field, value in (("name", "bad\nname"), ("device_types_compatible", "dt\0x")):
        form = {"name": "ok", "device_types_compatible": "dt", "type": "single_file",
                "args": json.dumps({"dest_dir": "/etc"}), field: value, "file": (io.BytesIO(b"data"), "f.txt")}
        r = operator.post(f"{UPLOAD}/generate", data=form, content_type="multipart/form-data")
        assert r.status_code == 400 and r.get_json()["error"].startswith(field), r.get_json()


def test_content_disposition_of_any_name():
    assert content_disposition("app.mender") == 'attachment; filename="app.mender"'
    assert content_disposition('q"uo\\te.mender') == \
        "attachment; filename=\"q_uo_te.mender\"; filename*=UTF-8''q%22uo%5Cte.mender"
    value = content_disposition("evil\r\nSet-Cookie: x\0ü🚀.mender")
    assert value == ("attachment; filename=\"evil__Set-Cookie: x___.mender\"; "
                     "filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20x%00%C3%BC%F0%9F%9A%80.mender")
    assert value.isascii() and value.isprintable()
    assert content_disposition("\ud800.mender").isprintable()


def test_downloads_of_names_stored_before_the_rule_never_fail(app, operator, monkeypatch):
    """Names a server without the printable rule stored: every download still answers 200."""
    import deployments.artifacts.parser as parser
    monkeypatch.setattr(parser, "string_problem", lambda *a, **kw: None)
    names = ["crlf\r\nname", "nul\0name", "ünïcode-名前"]
    ids = []
    for i, name in enumerate(names):
        r = upload(operator, craft(name, device_types=(f"dt{i}",)))
        assert r.status_code == 201, r.get_json()
        ids.append(r.headers["Location"].rsplit("/", 1)[-1])
    for artifact_id, name in zip(ids, names):
        assert operator.get(f"{UPLOAD}/{artifact_id}").get_json()["name"] == name
        link = operator.get(f"{UPLOAD}/{artifact_id}/download")
        assert link.status_code == 200, link.get_json()
        status, body, headers = fetch(app, link.get_json()["uri"])
        assert status == 200 and body[:7] == b"version"
        assert headers["Content-Disposition"] == content_disposition(f"{name}.mender")
