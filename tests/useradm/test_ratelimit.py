"""Login rate limiting (Flask-Limiter on the server's database), on every backend."""

from __future__ import annotations

import pytest

from common.clock import FrozenClock
from common.errors import ConfigError
from tests.helpers import Operator
from tests.useradm.conftest import LOGIN, basic


def make(make_app, backend, rate="3/minute", **cfg):
    clock = FrozenClock()
    app = make_app(backend, USERADM_RATE_LIMIT_LOGIN=rate, _CLOCK=clock, **cfg)
    return app, clock, Operator.create(app)


def test_failed_logins_per_email_429_with_retry_after(make_app, backend):
    app, clock, op = make(make_app, backend)
    client = app.test_client()
    for _ in range(3):
        r = client.post(LOGIN, headers=basic(op.email, "wrong-password"), environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert r.status_code == 401
    # from another address, with the right password: the email is locked for the window
    r = client.post(LOGIN, headers=basic(op.email.upper(), op.password), environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    assert r.get_json()["error"] and r.get_json()["request_id"]
    # other users are not affected (from an address without failures)
    other = Operator.create(app, client)
    assert other.token
    # the window ends
    clock.advance(61)
    assert client.post(LOGIN, headers=basic(op.email, op.password)).status_code == 200


def test_failed_logins_per_address(make_app, backend):
    app, clock, op = make(make_app, backend)
    client = app.test_client()
    for i in range(3):
        r = client.post(LOGIN, headers=basic(f"guess{i}@example.com", "x" * 10),
                        environ_base={"REMOTE_ADDR": "192.0.2.1"})
        assert r.status_code == 401
    r = client.post(LOGIN, headers=basic(op.email, op.password), environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    # another address still logs in
    r = client.post(LOGIN, headers=basic(op.email, op.password), environ_base={"REMOTE_ADDR": "192.0.2.2"})
    assert r.status_code == 200


def test_successful_logins_do_not_count(make_app, backend):
    app, clock, op = make(make_app, backend, rate="2/minute")
    for _ in range(5):
        assert op.login().status_code == 200


def test_malformed_headers_count_per_address(make_app, backend):
    app, clock, op = make(make_app, backend, rate="2/minute")
    client = app.test_client()
    for header in ("Basic !!!", "Bearer x"):
        assert client.post(LOGIN, headers={"Authorization": header}).status_code == 401
    assert client.post(LOGIN, headers={"Authorization": "Basic !!!"}).status_code == 429


def test_limit_is_configurable_and_can_be_disabled(make_app, backend):
    app, clock, op = make(make_app, backend, rate="")
    client = app.test_client()
    for _ in range(15):
        assert client.post(LOGIN, headers=basic(op.email, "wrong-password")).status_code == 401
    app, clock, op = make(make_app, backend, rate="1/minute;5/hour")
    client = app.test_client()
    assert client.post(LOGIN, headers=basic(op.email, "wrong-password")).status_code == 401
    assert client.post(LOGIN, headers=basic(op.email, op.password)).status_code == 429


def test_invalid_limit_is_a_config_error(make_app, backend):
    with pytest.raises(ConfigError):
        make_app(backend, USERADM_RATE_LIMIT_LOGIN="often")


def test_counters_are_shared_between_apps_on_one_database(make_app, tmp_path):
    """Two app instances (as two gunicorn workers) on one SQLite file share the counters."""
    data_dir = str(tmp_path / "shared")
    a = make_app("sqlite", MENDER_DATA_DIR=data_dir, USERADM_RATE_LIMIT_LOGIN="2/minute")
    b = make_app("sqlite", MENDER_DATA_DIR=data_dir, USERADM_RATE_LIMIT_LOGIN="2/minute")
    op = Operator.create(a)
    assert a.test_client().post(LOGIN, headers=basic(op.email, "wrong-password")).status_code == 401
    assert b.test_client().post(LOGIN, headers=basic(op.email, "wrong-password")).status_code == 401
    assert a.test_client().post(LOGIN, headers=basic(op.email, op.password)).status_code == 429
    assert b.test_client().post(LOGIN, headers=basic(op.email, op.password)).status_code == 429


def test_other_storage_url(make_app, backend):
    app, clock, op = make(make_app, backend, rate="1/minute", USERADM_RATE_LIMIT_STORAGE_URL="memory://")
    client = app.test_client()
    assert client.post(LOGIN, headers=basic(op.email, "wrong-password")).status_code == 401
    assert client.post(LOGIN, headers=basic(op.email, op.password)).status_code == 429
    store = app.extensions["mender"].services.useradm._store
    assert store.rate_reset() == 0  # nothing went to the database


def test_only_login_is_limited(make_app, backend):
    app, clock, op = make(make_app, backend, rate="1/minute")
    assert "X-RateLimit-Limit" in op.login().headers
    for _ in range(3):
        r = op.get("/api/management/v1/useradm/users/me")
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    r = op.client.get("/api/management/v1/useradm/users/me")  # failed authentication elsewhere: not counted
    assert r.status_code == 401 and "Retry-After" not in r.headers
    assert op.login().status_code == 200


def test_counters_shared_by_gunicorn_workers(tmp_path):
    """A real gunicorn with 3 workers; each attempt on a new connection, so they spread over workers
    (with per-process `memory://` counters this test fails most of the time)."""
    import requests

    from tests.helpers import GunicornServer
    env = {"MENDER_ADMIN_EMAIL": "root@example.com", "MENDER_ADMIN_PASSWORD": "root-password",
           "USERADM_RATE_LIMIT_LOGIN": "4/minute", "MENDER_WORKER_THREADS": "1"}
    with GunicornServer(str(tmp_path / "g"), env=env, workers=3) as server:
        statuses = []
        for _ in range(4):
            r = requests.post(server.url + LOGIN, headers={**basic("root@example.com", "wrong-password"),
                                                           "Connection": "close"}, timeout=10)
            statuses.append(r.status_code)
        assert statuses == [401] * 4, server.log()
        r = requests.post(server.url + LOGIN, headers={**basic("root@example.com", "root-password"),
                                                       "Connection": "close"}, timeout=10)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_behind_a_proxy_on_this_host_one_attacker_does_not_lock_everyone_out(make_app, backend):
    """A reverse proxy on this host with MENDER_TRUSTED_PROXIES left at 0: every request comes
    from 127.0.0.1. Keyed by that address, one attacker's failed logins locked every user out;
    the address is the proxy's last X-Forwarded-For hop then. A client connecting directly (not
    from this host) cannot choose its key with the header, and a trusted proxy's hop counts as before."""
    app, clock, op = make(make_app, backend)
    client = app.test_client()

    def attempt(email, password, peer, forwarded=None):
        headers = basic(email, password)
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        return client.post(LOGIN, headers=headers, environ_base={"REMOTE_ADDR": peer}).status_code

    # the attacker through the local proxy (nginx appends the address it saw)
    assert [attempt(f"guess{i}@example.com", "x" * 10, "127.0.0.1", f"10.9.9.{i}, 203.0.113.5")
            for i in range(4)] == [401, 401, 401, 429]
    # another client through the same proxy logs in
    assert attempt(op.email, op.password, "127.0.0.1", "198.51.100.7") == 200
    # a direct client's header is ignored: keyed by its own address
    assert [attempt(f"direct{i}@example.com", "x" * 10, "192.0.2.44", f"10.8.8.{i}") for i in range(4)] == [
        401, 401, 401, 429]
    # garbage in the header: the peer's address
    assert attempt("junk@example.com", "x" * 10, "127.0.0.1", "not-an-address") == 401


def test_a_trusted_proxy_decides_the_address(make_app, backend):
    """MENDER_TRUSTED_PROXIES=1: the proxy's hop, whatever the client put before it."""
    app, clock, op = make(make_app, backend, MENDER_TRUSTED_PROXIES=1)
    client = app.test_client()
    codes = [client.post(LOGIN, headers={**basic(f"g{i}@example.com", "x" * 10),
                                         "X-Forwarded-For": f"10.7.7.{i}, 203.0.113.9"},
                         environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429]
    r = client.post(LOGIN, headers={**basic(op.email, op.password), "X-Forwarded-For": "198.51.100.8"},
                    environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert r.status_code == 200
