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


def test_test_client_is_internal_unless_told(sqlite_client):
    assert sqlite_client.get("/api/internal/v1/devauth/alive").status_code == 204
    assert sqlite_client.get("/metrics").status_code == 200
    for path in ("/api/internal/v1/devauth/alive", "/metrics", "/api/internal/v1/nowhere"):
        r = sqlite_client.get(path, environ_overrides=PUBLIC_ENV, headers={"X-MEN-RequestID": "rid-9"})
        assert r.status_code == 404 and r.get_json() == {"error": "not found", "request_id": "rid-9"}
    assert sqlite_client.get("/api/openapi.json", environ_overrides=PUBLIC_ENV).status_code == 200
