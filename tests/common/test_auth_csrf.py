"""The double-submit CSRF check of common.auth: cookie-authenticated writes must echo the csrf cookie."""

import pytest
from flask import Blueprint, jsonify

from common import permissions
from common.auth import current_identity
from common.identity import Identity
from common.errors import Unauthorized


def _authenticate(token: str) -> Identity:
    if token != "good-token":
        raise Unauthorized("invalid token")
    return Identity(subject="user-1", is_user=True, token_id="t1")


@pytest.fixture
def probe_client(make_app, monkeypatch):
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):  # a test route: the table must name it
        monkeypatch.setitem(permissions.ROUTES, f"{method} {PATH}", permissions.BASIC_ONLY)
    app = make_app("sqlite")
    app.extensions["mender"].authenticators["management"] = _authenticate
    blp = Blueprint("csrf_probe", __name__, url_prefix="/api/management/v1/probe")

    @blp.route("/", methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
    def probe():
        return jsonify({"subject": current_identity().subject})

    app.register_blueprint(blp)
    return app.test_client()


PATH = "/api/management/v1/probe/"
WRITES = ["POST", "PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("method", WRITES)
def test_cookie_write_without_csrf_header_is_forbidden(probe_client, method):
    probe_client.set_cookie("JWT", "good-token")
    probe_client.set_cookie("csrf", "abc123")
    r = probe_client.open(PATH, method=method)
    assert r.status_code == 403
    body = r.get_json()
    assert body["error"] == "missing or invalid CSRF token" and body["request_id"]


@pytest.mark.parametrize("method", WRITES)
def test_cookie_write_with_matching_header_passes(probe_client, method):
    probe_client.set_cookie("JWT", "good-token")
    probe_client.set_cookie("csrf", "abc123")
    r = probe_client.open(PATH, method=method, headers={"X-CSRF-Token": "abc123"})
    assert r.status_code == 200, r.data
    assert r.get_json() == {"subject": "user-1"}


def test_cookie_write_with_wrong_header_is_forbidden(probe_client):
    probe_client.set_cookie("JWT", "good-token")
    probe_client.set_cookie("csrf", "abc123")
    assert probe_client.post(PATH, headers={"X-CSRF-Token": "abc124"}).status_code == 403
    assert probe_client.post(PATH, headers={"X-CSRF-Token": ""}).status_code == 403
    assert probe_client.post(PATH, headers={"X-CSRF-Token": "ä"}).status_code == 403


def test_cookie_write_without_csrf_cookie_is_forbidden(probe_client):
    # an attacker can send a header but cannot read or set the victim's csrf cookie
    probe_client.set_cookie("JWT", "good-token")
    assert probe_client.post(PATH, headers={"X-CSRF-Token": ""}).status_code == 403
    assert probe_client.post(PATH, headers={"X-CSRF-Token": "anything"}).status_code == 403


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_cookie_reads_need_no_csrf_header(probe_client, method):
    probe_client.set_cookie("JWT", "good-token")
    r = probe_client.open(PATH, method=method)
    assert r.status_code == 200


def test_bearer_clients_are_unaffected(probe_client):
    r = probe_client.post(PATH, headers={"Authorization": "Bearer good-token"})
    assert r.status_code == 200
    # a stray cookie does not change that: the header is what authenticates
    probe_client.set_cookie("JWT", "whatever")
    assert probe_client.delete(PATH, headers={"Authorization": "Bearer good-token"}).status_code == 200


def test_cookie_with_invalid_token_is_still_unauthorized(probe_client):
    probe_client.set_cookie("JWT", "bad-token")
    assert probe_client.get(PATH).status_code == 401
    probe_client.set_cookie("csrf", "x")
    assert probe_client.post(PATH, headers={"X-CSRF-Token": "x"}).status_code == 401


def test_no_token_at_all_is_unauthorized_not_forbidden(probe_client):
    assert probe_client.post(PATH).status_code == 401
