"""The internal listener: which connection is internal, and the app's 404 for internal-only paths
on the public one (the in-process test client counts as internal unless a test says otherwise)."""

import pytest

from common.listeners import INTERNAL, PUBLIC, ListenerMap, internal_only, parse_bind

PUBLIC_ENV = {"mender.listener": "public"}


def test_parse_bind():
    assert parse_bind("127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    assert parse_bind("") is None and parse_bind("  ") is None
    for bad in ("8081", "unix:/run/x.sock", "host:0", "host:port", ":80"):
        with pytest.raises(ValueError):
            parse_bind(bad)


def test_classify_by_local_address():
    m = ListenerMap("127.0.0.1:8081")
    assert m.classify(("127.0.0.1", 8081)) == INTERNAL
    assert m.classify(("127.0.0.1", 8080)) == PUBLIC
    assert m.classify(("10.1.2.3", 8081)) == PUBLIC  # same port on another address
    assert m.classify(None) == PUBLIC and m.classify("/run/x.sock") == PUBLIC
    wildcard = ListenerMap("0.0.0.0:9100")
    assert wildcard.classify(("10.1.2.3", 9100)) == INTERNAL
    assert ListenerMap("localhost:8081").classify(("127.0.0.1", 8081)) == INTERNAL
    assert ListenerMap("").classify(("127.0.0.1", 8081)) == PUBLIC  # off: nothing is internal


def test_internal_only_paths():
    assert internal_only("/api/internal/v1/devauth/health") and internal_only("/metrics")
    assert not internal_only("/api/management/v1/useradm/users") and not internal_only("/metricsx")
    # what a proxy or a router merging slashes and resolving dot segments would carry inside
    for path in ("/api//internal/v1/devauth/health", "//api/internal/v1/x", "/api/./internal/v1/x",
                 "/api/management/v1/../../internal/v1/x", "//metrics", "/x/../metrics", "/metrics/."):
        assert internal_only(path), path
    for path in ("/api/management/v1//useradm/users", "/api/devices/v1/../v1/x", "/.metrics", "/api/internalx"):
        assert not internal_only(path), path


def test_test_client_is_internal_unless_told(sqlite_client):
    assert sqlite_client.get("/api/internal/v1/devauth/alive").status_code == 204
    assert sqlite_client.get("/metrics").status_code == 200
    for path in ("/api/internal/v1/devauth/alive", "/metrics", "/api/internal/v1/nowhere"):
        r = sqlite_client.get(path, environ_overrides=PUBLIC_ENV, headers={"X-MEN-RequestID": "rid-9"})
        assert r.status_code == 404 and r.get_json() == {"error": "not found", "request_id": "rid-9"}
    assert sqlite_client.get("/api/openapi.json", environ_overrides=PUBLIC_ENV).status_code == 200


@pytest.mark.parametrize("path", ["/api//internal/v1/devauth/alive", "/api/./internal/v1/devauth/alive",
                                  "/api/management/v1/../../internal/v1/devauth/alive",
                                  "/api/management/v1//useradm/users"])  # `//x`: the test client's netloc
def test_no_redirect_and_no_html_for_merged_slashes_or_dot_segments(sqlite_client, path):
    """werkzeug merged `//` with a 308 whose HTML page named the merged route (an internal one too)."""
    for env in (PUBLIC_ENV, {}):
        r = sqlite_client.get(path, environ_overrides=env, headers={"X-MEN-RequestID": "rid-7"})
        assert r.status_code == 404 and r.get_json() == {"error": "not found", "request_id": "rid-7"}
        assert "Location" not in r.headers


def test_a_routing_redirect_has_an_empty_body(make_app):
    app = make_app("sqlite")
    app.add_url_rule("/probe-slash/", "probe_slash", lambda: ("", 204))
    r = app.test_client().get("/probe-slash", headers={"X-MEN-RequestID": "rid-8"})
    assert r.status_code == 308 and r.headers["Location"].endswith("/probe-slash/")
    assert r.data == b"" and r.headers["X-MEN-RequestID"] == "rid-8"
