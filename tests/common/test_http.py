"""HTTP plumbing: error body, request ids, body limits, JSON parsing, paging, docs, metrics."""

import json

import pytest
from flask.views import MethodView
from marshmallow import Schema, fields

from common.api import Blueprint
from common.pagination import PaginationQueryArgsSchema, paging_headers, Page

SERVICES = ["devauth", "inventory", "deployments", "useradm"]


class EchoSchema(Schema):
    name = fields.String(required=True)
    count = fields.Integer()


@pytest.fixture
def echo_app(make_app):
    """An app with a JSON test endpoint, to exercise the shared parsing and error plumbing."""
    app = make_app("sqlite", MENDER_REQUEST_SIZE_LIMIT=16384)
    blp = Blueprint("echo", __name__, url_prefix="/api/internal/v1/echo")

    @blp.route("/")
    class Echo(MethodView):
        @blp.arguments(EchoSchema)
        @blp.response(200)
        def post(self, body):
            return body

    @blp.route("/paged")
    class Paged(MethodView):
        @blp.arguments(PaginationQueryArgsSchema, location="query")
        @blp.response(200)
        def get(self, args):
            page = Page(args["page"], args["per_page"])
            items = list(range(95))[page.skip:page.skip + page.limit]
            return items, 200, paging_headers(page, len(items), total=95)

    app.extensions["mender"].api.register_blueprint(blp)
    return app


def assert_error(resp, status):
    assert resp.status_code == status, resp.data
    body = resp.get_json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]
    assert body["request_id"] == resp.headers["X-MEN-RequestID"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


@pytest.mark.parametrize("service", SERVICES)
def test_alive_and_health(client, service):
    r = client.get(f"/api/internal/v1/{service}/alive")
    assert r.status_code == 204 and r.data == b""
    r = client.get(f"/api/internal/v1/{service}/health")
    assert r.status_code == 204, r.data
    assert r.headers["X-MEN-RequestID"]


def test_unknown_route_is_404_with_error_body(sqlite_client):
    body = assert_error(sqlite_client.get("/api/management/v1/nothing-here"), 404)
    assert body["error"] == "not found"


def test_wrong_method_is_405_with_error_body(sqlite_client):
    r = sqlite_client.delete("/api/internal/v1/devauth/alive")
    assert_error(r, 405)
    assert "GET" in r.headers["Allow"]


def test_request_id_is_echoed_or_generated(sqlite_client):
    r = sqlite_client.get("/api/internal/v1/inventory/alive", headers={"X-MEN-RequestID": "abc-123"})
    assert r.headers["X-MEN-RequestID"] == "abc-123"
    r1 = sqlite_client.get("/api/internal/v1/inventory/alive")
    r2 = sqlite_client.get("/api/internal/v1/inventory/alive")
    assert r1.headers["X-MEN-RequestID"] != r2.headers["X-MEN-RequestID"]
    # a hostile id is replaced, not echoed
    r = sqlite_client.get("/api/internal/v1/inventory/alive", headers={"X-MEN-RequestID": "x" * 500})
    assert r.headers["X-MEN-RequestID"] != "x" * 500


def test_valid_json(echo_app):
    r = echo_app.test_client().post("/api/internal/v1/echo/", json={"name": "a", "count": 2})
    assert r.status_code == 200 and r.get_json() == {"name": "a", "count": 2}


@pytest.mark.parametrize("body,status", [
    (b'{"name": ', 400),                       # truncated
    (b"[" * 5000 + b"]" * 5000, 400),         # nested far beyond the recursion limit
    (b'{"name": "\xff\xfe"}', 400),          # not UTF-8
    (b'{"name": 5}', 400),                     # wrong type
    (b'{"name": "a", "extra": 1}', 400),       # unknown field
    (b'{}', 400),                              # missing field
    (b'"just a string"', 400),
])
def test_malformed_json_is_400(echo_app, body, status):
    r = echo_app.test_client().post("/api/internal/v1/echo/", data=body, content_type="application/json")
    assert_error(r, status)


def test_validation_error_names_the_field(echo_app):
    r = echo_app.test_client().post("/api/internal/v1/echo/", json={"name": "a", "count": "many"})
    assert "count" in assert_error(r, 400)["error"]


def test_wrong_content_type_is_415(echo_app):
    r = echo_app.test_client().post("/api/internal/v1/echo/", data=b'{"name":"a"}', content_type="text/plain")
    assert_error(r, 415)


def test_oversized_body_is_413(echo_app):
    big = json.dumps({"name": "a" * 20000})
    r = echo_app.test_client().post("/api/internal/v1/echo/", data=big, content_type="application/json")
    assert_error(r, 413)


def _chunked(client, path, body: bytes, **kw):
    # what gunicorn hands over for a chunked body: no Content-Length, the input terminated by the server
    import io
    return client.open(path, input_stream=io.BytesIO(body), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked", **kw.pop("headers", {})},
                       environ_overrides={"wsgi.input_terminated": True}, **kw)


@pytest.mark.parametrize("size,status", [(20000, 413), (16385, 413), (16384, 200), (16383, 200)])
def test_chunked_body_over_the_limit_is_413(echo_app, size, status):
    # a body without Content-Length is cut by Werkzeug at the limit: it must not be parsed as truncated JSON (400);
    # one of exactly the limit is accepted, as it is with a Content-Length
    body = json.dumps({"name": "a" * (size - 12)}).encode()
    assert len(body) == size
    r = _chunked(echo_app.test_client(), "/api/internal/v1/echo/", body, method="POST")
    if status == 413:
        assert_error(r, 413)
    else:
        assert r.status_code == 200 and r.get_json()["name"] == "a" * (size - 12)


def test_chunked_device_poll_over_the_limit_is_413(make_app):
    from tests.helpers import Operator, accepted_device
    app = make_app("sqlite", MENDER_REQUEST_SIZE_LIMIT=16384)
    client = app.test_client()
    device = accepted_device(app, Operator.create(app, client), client)
    body = json.dumps({"device_provides": {"device_type": "x", "artifact_name": "y", "pad": "a" * 20000}}).encode()
    r = _chunked(client, "/api/devices/v2/deployments/device/deployments/next", body, method="POST",
                 headers=device.headers)
    assert_error(r, 413)


def test_paging_headers(echo_app):
    c = echo_app.test_client()
    r = c.get("/api/internal/v1/echo/paged?page=2&per_page=10")
    assert r.get_json() == list(range(10, 20))
    assert r.headers["X-Total-Count"] == "95"
    link = r.headers["Link"]
    assert 'page=1&per_page=10>; rel="first"' in link
    assert 'page=1&per_page=10>; rel="prev"' in link
    assert 'page=3&per_page=10>; rel="next"' in link
    assert 'page=10&per_page=10>; rel="last"' in link
    r = c.get("/api/internal/v1/echo/paged?page=10&per_page=10")
    assert r.get_json() == list(range(90, 95)) and 'rel="next"' not in r.headers["Link"]


@pytest.mark.parametrize("query", ["per_page=501", "per_page=0", "page=0", "page=x", "per_page=10000"])
def test_bad_paging_is_400(echo_app, query):
    r = echo_app.test_client().get(f"/api/internal/v1/echo/paged?{query}")
    body = assert_error(r, 400)
    assert query.split("=")[0] in body["error"]


def test_openapi_document_and_offline_ui(sqlite_client):
    r = sqlite_client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    assert "/api/internal/v1/devauth/health" in doc["paths"]
    html = sqlite_client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        assert sqlite_client.get(f"/api/docs/static/{asset}").status_code == 200


def test_metrics_count_requests_by_route_template(sqlite_client):
    sqlite_client.get("/api/internal/v1/deployments/alive")
    sqlite_client.get("/api/internal/v1/deployments/alive")
    text = sqlite_client.get("/metrics").get_data(as_text=True)
    line = [l for l in text.splitlines() if l.startswith("mender_http_requests_total{")
            and 'route="/api/internal/v1/deployments/alive"' in l and 'status="204"' in l]
    assert line and float(line[0].rsplit(" ", 1)[1]) >= 2
    assert "mender_http_request_duration_seconds_bucket" in text


def test_the_wsgi_layer_refuses_transfer_codings_other_than_chunked(sqlite_client):
    """Under a WSGI worker class (gthread) no ASGI front checks the framing: the Guard does."""
    for value in ("gzip, chunked", "deflate,chunked", "gzip"):
        r = sqlite_client.post("/api/management/v1/useradm/auth/login", data=b"x",
                               headers={"Transfer-Encoding": value, "X-MEN-RequestID": "rid-5"})
        assert r.status_code == 501 and r.headers["Connection"] == "close"
        assert r.get_json() == {"error": "unsupported transfer coding: only chunked", "request_id": "rid-5"}
