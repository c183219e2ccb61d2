"""The last line of defence: errors that escape a handler, a hook or the response itself, and
headers no server can send, all end as the JSON 500 with a request id (issue 14)."""

from __future__ import annotations

import pytest
from flask import Response

from tests.common.test_http import assert_error


@pytest.fixture
def guarded(make_app):
    app = make_app("sqlite")

    @app.route("/api/internal/v1/test/bad-header")
    def bad_header():
        return Response("{}", headers={"X-Echo": "\U0002A90B"}, mimetype="application/json")

    @app.route("/api/internal/v1/test/crlf-header")
    def crlf_header():
        response = Response("{}", mimetype="application/json")
        response.headers.add_header("X-Echo", "ok")
        response.headers._list.append(("X-Injected", "a\r\nSet-Cookie: x=1"))  # werkzeug refuses it, a list does not
        return response

    @app.after_request
    def failing_hook(response):
        if response.headers.get("X-Fail-After"):
            raise RuntimeError("after-request hook failed")
        return response

    @app.route("/api/internal/v1/test/hook-fails")
    def hook_fails():
        return Response("{}", mimetype="application/json", headers={"X-Fail-After": "1"})

    class ExplodingResponse(Response):
        def __call__(self, environ, start_response):
            raise RuntimeError("the response itself failed")

    @app.route("/api/internal/v1/test/response-fails")
    def response_fails():
        return ExplodingResponse("{}", mimetype="application/json")

    @app.route("/api/internal/v1/test/file-412")
    def file_412():
        r = Response("<html>page</html>", mimetype="text/html")
        r.status_code = 412
        return r

    return app


@pytest.mark.parametrize("path", ["bad-header", "crlf-header", "hook-fails", "response-fails"])
def test_escaped_errors_are_the_json_500(guarded, path):
    r = guarded.test_client().get(f"/api/internal/v1/test/{path}", headers={"X-MEN-RequestID": "rid-guard"})
    body = assert_error(r, 500)
    assert body == {"error": "internal error", "request_id": "rid-guard"}


def test_non_json_error_bodies_become_json(guarded):
    body = assert_error(guarded.test_client().get("/api/internal/v1/test/file-412"), 412)
    assert body["error"] == "precondition failed"


def test_failed_if_match_on_the_ui_is_json(sqlite_client):
    """Found by the route fuzzer: werkzeug answered a failed `If-Match` on `/` with the HTML page."""
    r = sqlite_client.get("/", headers={"If-Match": '"nope"'})
    assert_error(r, 412)


def test_query_string_that_is_not_utf8_is_400(sqlite_client):
    """Found by the route fuzzer: raw query bytes that are not UTF-8 made werkzeug raise (500)."""
    r = sqlite_client.get("/api/internal/v1/deployments/tenants/default/deployments",
                          environ_overrides={"QUERY_STRING": "x=\xc0\xaf"})
    assert assert_error(r, 400)["error"] == "malformed query string: not UTF-8"
    # raw UTF-8 and percent-encoded garbage are fine
    r = sqlite_client.get("/api/internal/v1/deployments/tenants/default/deployments",
                          environ_overrides={"QUERY_STRING": "search=\xc3\xa9&x=%ff"})
    assert r.status_code == 200


def test_request_id_with_a_trailing_newline_is_replaced(sqlite_client):
    r = sqlite_client.get("/api/internal/v1/useradm/alive", environ_overrides={"HTTP_X_MEN_REQUESTID": "abc\n"})
    assert r.status_code == 204 and r.headers["X-MEN-RequestID"] != "abc\n" and "\n" not in r.headers["X-MEN-RequestID"]


def test_lone_surrogates_in_json_become_replacement_characters(make_app):
    """Found by the route fuzzer: `"\\ud800"` reached SQLite, which cannot encode it (500)."""
    from tests.helpers import Operator
    app = make_app("sqlite")
    op = Operator.create(app)
    r = op.post("/api/management/v1/deployments/deployments", content_type="application/json",
                data='{"name":"a\\ud800b","artifact_name":"x\\udfff","devices":["d"]}')
    assert r.status_code in (201, 422), r.data  # parsed; no artifact named x\ufffd
    r = op.post("/api/management/v2/inventory/filters", content_type="application/json",
                data='{"name":"f\\ud800","terms":[{"scope":"inventory","attribute":"a","type":"$eq","value":"\\udc00"}]}')
    assert r.status_code == 201, r.data
    saved = op.get(r.headers["Location"]).get_json()
    assert saved["name"] == "f\ufffd" and saved["terms"][0]["value"] == "\ufffd"


def test_numbers_out_of_range_are_400(make_app):
    """Found by the route fuzzer: integers past SQLite's 64 bits raised OverflowError (500)."""
    from tests.helpers import Operator
    app = make_app("sqlite")
    op = Operator.create(app)
    for query in ("created_before=99999999999999999999999", "created_after=253402300800"):
        assert_error(op.get(f"/api/management/v1/deployments/deployments?{query}"), 400)
    r = op.post("/api/management/v2/deployments/deployments",
                json={"name": "d", "artifact_name": "a", "filter": [{"scope": "inventory", "attribute": "a",
                                                                     "type": "$eq", "value": "b"}],
                      "max_devices": 2**63})
    assert "max_devices" in assert_error(r, 400)["error"]
    c = app.test_client()
    r = c.post("/api/internal/v1/inventory/tenants/default/devices/status/accepted",
               json=[{"id": "d1", "revision": 2**63}])
    assert "revision" in assert_error(r, 400)["error"]


def test_metrics_method_label_is_bounded(sqlite_client):
    for i in range(5):
        sqlite_client.open("/api/internal/v1/useradm/alive", method=f"X-METHOD-{i}")
    text = sqlite_client.get("/metrics").get_data(as_text=True)
    assert "X-METHOD" not in text and 'method="other"' in text
