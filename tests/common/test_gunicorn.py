"""The real process model: gunicorn with several workers, JSON logs, shared metrics, health."""

import json
import socket
import time

import pytest
import requests

from tests.helpers import GunicornServer, free_port

SERVICES = ["devauth", "inventory", "deployments", "useradm"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = GunicornServer(str(tmp_path_factory.mktemp("gunicorn-data")), workers=2)
    srv.start()
    yield srv
    srv.stop()


def test_alive_and_health_on_every_service(server):
    for service in SERVICES:
        for check in ("alive", "health"):
            r = requests.get(f"{server.internal_url}/api/internal/v1/{service}/{check}", timeout=5)
            assert r.status_code == 204, (service, check, r.text)
            assert r.headers["X-MEN-RequestID"]


def test_error_body_over_real_http(server):
    r = requests.get(f"{server.url}/api/nowhere", timeout=5, headers={"X-MEN-RequestID": "rid-1"})
    assert r.status_code == 404 and r.json() == {"error": "not found", "request_id": "rid-1"}


@pytest.mark.parametrize("path", ["/api//internal/v1/useradm/alive", "/api/./internal/v1/useradm/alive",
                                  "/api/management/v1/../../internal/v1/useradm/alive", "//metrics", "/metrics/.",
                                  "/api/management/v1//useradm/users"])
def test_paths_normalising_to_internal_routes_are_404_json_on_the_public_listener(server, path):
    """No 308 with an HTML page naming the internal route (werkzeug's merge_slashes); what an
    internal route normalises to is not served on the public listener."""
    r = requests.get(server.url + path, timeout=5, allow_redirects=False, headers={"X-MEN-RequestID": "rid-2"})
    assert r.status_code == 404 and r.json() == {"error": "not found", "request_id": "rid-2"}


def test_oversized_body_rejected_before_it_is_sent(server):
    """A declared Content-Length over the limit gets 413 without the server waiting for the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /api/management/v1/useradm/auth/login HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{")
        t0 = time.monotonic()
        reply = b""
        while b"request_id" not in reply and time.monotonic() - t0 < 5:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        reply = reply.decode()  # answered with the body never sent: it did not wait for it
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"request_id"' in reply


def test_metrics_are_summed_across_workers(server):
    for _ in range(40):
        requests.get(f"{server.internal_url}/api/internal/v1/inventory/alive", timeout=5)
    text = requests.get(f"{server.internal_url}/metrics", timeout=5).text
    total = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                if l.startswith("mender_http_requests_total{") and "inventory/alive" in l)
    assert total >= 40


def test_logs_are_json_lines_with_request_ids(server):
    requests.get(f"{server.internal_url}/api/internal/v1/useradm/alive", headers={"X-MEN-RequestID": "log-check-1"},
                 timeout=5)
    deadline = time.monotonic() + 10  # the worker writes the access line after answering: wait for it
    while time.monotonic() < deadline and '"log-check-1"' not in server.log():
        time.sleep(0.05)
    lines = [l for l in server.log().splitlines() if l.strip()]
    parsed = [json.loads(l) for l in lines]  # every line, gunicorn's own included, is JSON
    assert any(p.get("logger", "").startswith("gunicorn") for p in parsed)
    access = [p for p in parsed if p.get("event") == "request" and p.get("request_id") == "log-check-1"]
    assert access and access[0]["status"] == 204
    # one access line per request: gunicorn's own would repeat it without the request id
    assert not [p for p in parsed if p.get("logger") == "gunicorn.access"]


def _event_loops(log: str) -> list[str]:
    return [json.loads(line)["event"].split(": event loop ", 1)[1]
            for line in log.splitlines() if ": event loop " in line]


def test_workers_run_on_uvloop_by_default(server):
    import uvloop  # a requirement
    loops = _event_loops(server.log())
    assert len(loops) >= 2 and set(loops) == {"uvloop " + uvloop.__version__}, loops  # a line per worker


def test_mender_event_loop_asyncio(tmp_path):
    """MENDER_EVENT_LOOP=asyncio: asyncio's own loop, uvloop not even imported."""
    with GunicornServer(str(tmp_path / "d"), env={"MENDER_EVENT_LOOP": "asyncio"}, workers=1) as srv:
        r = requests.get(f"{srv.url}/api/nowhere", timeout=30)
        assert r.status_code == 404 and set(r.json()) == {"error", "request_id"}
        assert _event_loops(srv.log()) == ["asyncio"]
        for pid in srv.worker_pids():
            with open(f"/proc/{pid}/maps") as f:
                assert "uvloop" not in f.read()


def test_health_503_fast_when_mongodb_is_unreachable(tmp_path):
    url = f"mongodb://127.0.0.1:{free_port()}/mender"
    # the operation timeout far above the DB timeout: the master's startup migration waited it
    # out before starting a worker (pymongo's timeoutMS replaces server selection's timeout), and
    # the server did not answer within GunicornServer.start's 90 s
    env = {"MENDER_DB_URL": url, "MENDER_DB_TIMEOUT_SECONDS": "1", "MENDER_MONGO_OPERATION_TIMEOUT_SECONDS": "120"}
    with GunicornServer(str(tmp_path / "d"), env=env, workers=1) as srv:
        for service in SERVICES:
            # bounded by MENDER_DB_TIMEOUT_SECONDS (1 s), not pymongo's 30 s server selection: a
            # check that ignored the setting would outlast this client's timeout (no clock read
            # here: the machine's load must not decide the test)
            r = requests.get(f"{srv.internal_url}/api/internal/v1/{service}/health", timeout=15)
            assert r.status_code == 503 and set(r.json()) == {"error", "request_id"}
        assert requests.get(f"{srv.internal_url}/api/internal/v1/devauth/alive", timeout=5).status_code == 204


def test_gunicorn_builds_nothing_for_its_access_line():
    """Any logconfig turns gunicorn's access log on, and its asgi worker then builds an environ
    and a response record on every request for it; the server's logger says it is off (the app
    writes the access line), so that work is skipped."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    from common.logging import GUNICORN_LOGCONFIG, GunicornLogger
    cfg = Config()
    cfg.set("logconfig_dict", GUNICORN_LOGCONFIG)
    # instances without their setup(), which would configure this process's logging
    theirs, ours = Logger.__new__(Logger), GunicornLogger.__new__(GunicornLogger)
    theirs.cfg = ours.cfg = cfg
    assert theirs.access_log_enabled  # gunicorn's own would build it
    assert ours.access_log_enabled is False


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_graceful_stop_closes_idle_keep_alive_connections(tmp_path, tls):
    """SIGTERM with a client's keep-alive connection idle in its pool: the worker closes it and
    exits, over TLS too (asyncio waited up to 30 s there for a close_notify the idle client never
    sends: each stop waited out the whole graceful timeout, then forced the connection)."""
    import os
    import signal

    from tests.e2e.harness import make_tls_cert
    tls_files = dict(zip(("certfile", "keyfile"), map(str, make_tls_cert(tmp_path)))) if tls else {}
    server = GunicornServer(str(tmp_path / "data"), workers=1, **tls_files).start()
    try:
        session = requests.Session()  # kept open: its connection stays in the pool
        r = session.get(f"{server.url}/api/management/v1/useradm/settings", timeout=30,
                        verify=tls_files.get("certfile", True))
        assert r.status_code == 401 and r.headers.get("Connection", "").lower() != "close"
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=120)  # longer than the graceful timeout (30 s): see the log
    finally:
        server.stop()
    log = server.log()
    assert "Worker exiting" in log and "Shutting down: Master" in log, log
    assert "Forcing close" not in log, log
    session.close()
