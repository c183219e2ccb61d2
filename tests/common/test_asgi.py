"""The process model through a real gunicorn (the asgi worker and common.asgi's front): the two
listeners, real websockets (the `websockets` client library), slow clients that must not starve
the others, the read timeouts and the bound on concurrent uploads per client address."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time

import pytest
import requests
import websockets

from tests.artifacts.helpers import UPLOAD
from tests.helpers import GunicornServer, Operator, accepted_device

NEXT = "/api/devices/v2/deployments/device/deployments/next"
POLL_BODY = {"device_provides": {"device_type": "test-device", "artifact_name": "a"}}


def _server(tmp_path_factory, name: str, env: dict, **kwargs):
    """A gunicorn server of one worker over a fresh data dir with an operator and an accepted
    device (yields the three)."""
    from common.app import create_app
    data_dir = str(tmp_path_factory.mktemp(name))
    app = create_app({"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning"})
    client = app.test_client()
    operator = Operator.create(app, client)
    device = accepted_device(app, operator, client)
    app.extensions["mender"].shutdown()
    app.extensions["mender"].db.close()
    with GunicornServer(data_dir, env=env, workers=1, **kwargs) as server:
        yield server, operator, device


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server (one worker, four app threads, short read timeouts), an operator and a device."""
    yield from _server(tmp_path_factory, "asgi", {"MENDER_WORKER_THREADS": "4", "MENDER_HEADER_TIMEOUT_SECONDS": "3",
                                                  "MENDER_BODY_TIMEOUT_SECONDS": "3", "MENDER_UPLOADS_PER_CLIENT": "1"},
                       app="tests.ws_app:app")


def _ws(url: str) -> str:
    return url.replace("http://", "ws://", 1)


def test_internal_paths_only_on_the_internal_listener(world):
    server, _, _ = world
    for path in ("/api/internal/v1/devauth/health", "/metrics", "/api/internal/v1/nowhere"):
        r = requests.get(server.url + path, timeout=10, headers={"X-MEN-RequestID": "rid-1"})
        assert r.status_code == 404, path
        assert r.json() == {"error": "not found", "request_id": "rid-1"}
    r = requests.get(server.internal_url + "/api/internal/v1/devauth/health", timeout=10)
    assert r.status_code == 204 and "Content-Type" not in r.headers and r.content == b""
    assert requests.get(server.internal_url + "/metrics", timeout=10).status_code == 200
    # the rest is served on both
    assert requests.get(server.url + "/api/openapi.json", timeout=10).status_code == 200


def _raw(port: int, request: bytes) -> bytes:
    """One request on a fresh connection; everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
            if b"\r\n\r\n" in reply and b"connection: close" not in reply.lower():
                break  # kept alive: the whole reply is in
    return reply


@pytest.mark.parametrize("codings", [[b"gzip, chunked"], [b"deflate, chunked"], [b"compress,chunked"],
                                     [b"gzip", b"chunked"]])
def test_transfer_codings_other_than_chunked_are_501_on_both_listeners(world, codings):
    """gunicorn passed `gzip, chunked` through and the gzip body was read as plain JSON (RFC 9112
    6.1: 501 for a coding the server does not understand, as Go's net/http answers)."""
    server, _, device = world
    body = json.dumps(POLL_BODY).encode()
    lines = b"".join(b"Transfer-Encoding: " + c + b"\r\n" for c in codings)
    for port in (server.port, server.internal_port):
        reply = _raw(port, b"POST " + NEXT.encode() + b" HTTP/1.1\r\nHost: x\r\nX-MEN-RequestID: rid-te\r\n"
                     b"Authorization: Bearer " + device.token.encode() + b"\r\nContent-Type: application/json\r\n"
                     + lines + b"\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        head, _, rest = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 501"), reply
        assert json.loads(rest) == {"error": "unsupported transfer coding: only chunked", "request_id": "rid-te"}
    # a coding gunicorn does not know it refuses itself: 400, with the JSON error too
    reply = _raw(server.port, b"POST /api/devices/v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: x-custom, chunked"
                 b"\r\n\r\n0\r\n\r\n")
    head, _, rest = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and set(json.loads(rest)) == {"error", "request_id"}


def test_a_chunked_body_alone_is_read(world):
    server, _, device = world
    body = json.dumps(POLL_BODY).encode()
    reply = _raw(server.port, b"POST " + NEXT.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"Authorization: Bearer " + device.token.encode() + b"\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 204"), reply


async def _refused(url: str, **kwargs):
    """The HTTP response that refused a websocket handshake (the test fails if it was accepted)."""
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url, **kwargs)
    return refused.value.response


def test_a_websocket_handshake_with_a_transfer_coding_is_refused(world):
    server, _, _ = world

    async def scenario():
        response = await _refused(_ws(server.url) + "/api/devices/v1/test/echo",
                                  additional_headers={"Transfer-Encoding": "gzip, chunked"})
        assert response.status_code == 501
        assert json.loads(response.body)["error"] == "unsupported transfer coding: only chunked"

    asyncio.run(scenario())


def test_websocket_echo_and_routing(world):
    server, _, _ = world

    async def scenario():
        async with websockets.connect(_ws(server.url) + "/api/devices/v1/test/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\xffbinary")
            assert await ws.recv() == b"\x00\xffbinary"
        async with websockets.connect(_ws(server.url) + "/api/management/v1/test/devices/dev-42/connect") as ws:
            assert await ws.recv() == "dev-42"  # path parameters reach the handler
        # internal websocket paths follow the listener rule too
        response = await _refused(_ws(server.url) + "/api/internal/v1/test/echo")
        assert response.status_code == 404
        assert json.loads(response.body)["error"] == "not found"
        async with websockets.connect(_ws(server.internal_url) + "/api/internal/v1/test/echo") as ws:
            await ws.send("inside")
            assert await ws.recv() == "inside"
        assert (await _refused(_ws(server.url) + "/api/devices/v1/test/nowhere")).status_code == 404

    asyncio.run(scenario())


def test_websocket_handler_runs_service_calls_and_denies_with_a_status(world):
    server, _, device = world

    async def scenario():
        response = await _refused(_ws(server.url) + "/api/devices/v1/test/auth",
                                  additional_headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 401
        assert set(json.loads(response.body)) == {"error", "request_id"}
        async with websockets.connect(_ws(server.url) + "/api/devices/v1/test/auth",
                                      additional_headers={"Authorization": f"Bearer {device.token}"}) as ws:
            assert await ws.recv() == device.id

    asyncio.run(scenario())


class _SlowClients:
    """`n` connections that send a request a byte per second: half trickle their headers, half a
    body (headers complete, Content-Length 1000)."""

    def __init__(self, port: int, n: int):
        self.socks: list[tuple[socket.socket, bytes]] = []
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                head = (f"POST {NEXT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        f"Content-Length: 1000\r\n\r\n").encode()
                s.sendall(head)
                self.socks.append((s, b"{" + b" " * 998 + b"}"))
            else:
                self.socks.append((s, f"POST {NEXT} HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 900}\r\n\r\n".encode()))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        offset = 0
        while not self.stop.wait(1.0):
            for s, data in self.socks:
                if offset < len(data):
                    try:
                        s.send(data[offset:offset + 1])
                    except OSError:
                        pass
            offset += 1

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for s, _ in self.socks:
            s.close()


def test_slow_clients_do_not_starve_the_others(world):
    """128 connections trickling headers or bodies at a byte per second, on a worker with four
    app threads: health checks and device polls still complete (bounds are generous on purpose:
    with a thread per connection they would all wait until the slow ones gave up)."""
    server, _, device = world
    slow = _SlowClients(server.port, 128)
    try:
        time.sleep(1.5)
        session = requests.Session()
        for _ in range(10):
            r = session.get(server.internal_url + "/api/internal/v1/deployments/health", timeout=10)
            assert r.status_code == 204
            r = session.post(server.url + NEXT, json=POLL_BODY, timeout=10,
                             headers={"Authorization": f"Bearer {device.token}"})
            assert r.status_code == 204, r.text
        # past the read timeouts (3 s here): a trickled body gets 408, trickled headers a closed socket
        deadline = time.monotonic() + 20
        body_sock, header_sock = slow.socks[1][0], slow.socks[0][0]
        body_sock.settimeout(max(0.1, deadline - time.monotonic()))
        reply = body_sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert b'"request body timed out"' in reply
        header_sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            assert header_sock.recv(4096) == b""
        except ConnectionResetError:
            pass
    finally:
        slow.close()


def test_concurrent_uploads_are_bounded_per_client_address(world):
    """MENDER_UPLOADS_PER_CLIENT=1 here: a second large upload from the same address while one
    streams gets 429 at once, before a thread is spent on it."""
    server, operator, _ = world
    r = requests.post(server.url + operator.LOGIN_PATH, auth=(operator.email, operator.password), timeout=10)
    token = r.text
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {5 << 20}\r\n\r\n").encode()
    first = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        first.sendall(head + b"--B\r\n")
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as second:
            second.sendall(head)
            reply = second.recv(4096)
        assert reply.startswith(b"HTTP/1.1 429"), reply
        assert b"Retry-After: 10" in reply or b"retry-after: 10" in reply
        assert b"too many concurrent uploads" in reply
    finally:
        first.close()


@pytest.fixture(scope="module")
def one_thread(tmp_path_factory):
    """A worker with one app thread and two upload threads."""
    yield from _server(tmp_path_factory, "asgi1", {"MENDER_WORKER_THREADS": "1", "MENDER_UPLOADS_PER_WORKER": "2",
                                                   "MENDER_UPLOADS_PER_CLIENT": "4", "MENDER_BODY_TIMEOUT_SECONDS": "20"})


def test_uploads_take_threads_of_their_own(one_thread):
    """Two uploads stalled half-way hold the worker's two upload threads; its one app thread still
    answers polls while they wait. (Before, an upload ran on an app thread: the polls waited until
    the stalled upload gave up, 20 s here.)"""
    server, operator, device = one_thread
    token = requests.post(server.url + operator.LOGIN_PATH, auth=(operator.email, operator.password),
                          timeout=10).text
    head = (f"POST {UPLOAD} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {5 << 20}\r\n\r\n"
            f'--B\r\nContent-Disposition: form-data; name="artifact"; filename="a.mender"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    stalled = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for sock in stalled:
            sock.sendall(head + b"\0" * 100)
        time.sleep(0.5)
        session = requests.Session()
        for _ in range(5):
            r = session.post(server.url + NEXT, json=POLL_BODY, timeout=60,
                             headers={"Authorization": f"Bearer {device.token}"})
            assert r.status_code == 204, r.text
        for sock in stalled:  # both uploads are still waiting for their bodies: no answer yet
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(4096)
    finally:
        for sock in stalled:
            sock.close()


class _Request:
    content_length = 9
    chunked = False


class _Connection:
    _closed = False
    cfg = None

    def _maybe_resume_reading(self):
        pass

    def _safe_write(self, data):
        pass


def _front(body_timeout: float):
    from flask import Flask

    from common.asgi import AsgiFront
    front = AsgiFront(Flask(__name__))
    front.body_timeout = body_timeout
    return front


def test_a_body_already_received_is_read_without_a_timer(monkeypatch):
    """gunicorn's receiver holding the whole body (a poll's body comes with its headers): read
    at once, no timer armed; one still arriving is read under MENDER_BODY_TIMEOUT_SECONDS."""
    from gunicorn.asgi.protocol import BodyReceiver

    from common.asgi import _Reject
    front = _front(0.2)
    timers = []
    real_timeout = asyncio.timeout
    monkeypatch.setattr(asyncio, "timeout", lambda delay: timers.append(delay) or real_timeout(delay))

    async def scenario():
        whole = BodyReceiver(_Request(), _Connection())
        whole.feed(b"{\"a\":")
        whole.feed(b"1}\n\n\n")
        whole.set_complete()
        assert await front._read_small(whole.receive, 9) == b'{"a":1}\n\n\n'
        assert timers == []
        # a body with bytes still to come: under the timer, and complete when they come
        arriving = BodyReceiver(_Request(), _Connection())
        arriving.feed(b"{\"a\":")
        asyncio.get_running_loop().call_later(0.02, lambda: (arriving.feed(b"1}\n\n\n"), arriving.set_complete()))
        assert await front._read_small(arriving.receive, 9) == b'{"a":1}\n\n\n'
        assert timers == [0.2]
        # ... and they never come: 408 after the timeout
        stalled = BodyReceiver(_Request(), _Connection())
        stalled.feed(b"{\"a\":")
        with pytest.raises(_Reject) as rejected:
            await front._read_small(stalled.receive, 9)
        assert rejected.value.status == 408 and timers == [0.2, 0.2]
        # a body complete but short of its Content-Length: 400, as before
        short = BodyReceiver(_Request(), _Connection())
        short.feed(b"{}")
        short.set_complete()
        with pytest.raises(_Reject) as rejected:
            await front._read_small(short.receive, 9)
        assert rejected.value.status == 400 and len(timers) == 2

    asyncio.run(scenario())


def test_another_servers_receive_is_read_under_the_timer():
    from common.asgi import _Reject

    async def never():
        await asyncio.sleep(10)

    async def scenario():
        with pytest.raises(_Reject) as rejected:
            await _front(0.05)._read_small(never, 4)
        assert rejected.value.status == 408

    asyncio.run(scenario())


def _started_front(threads: int = 8):
    """A front with its pool, on the running loop."""
    from flask import Flask

    from common.asgi import AsgiFront
    front = AsgiFront(Flask(__name__), threads=threads)
    front._start()
    return front


def _with_thread(x):
    return x, threading.get_ident()


def test_pool_calls_cross_back_with_their_results_and_exceptions():
    async def scenario():
        front = _started_front()
        try:
            assert await front._in_pool(front.pool, lambda x: x * 2, 21) == 42
            with pytest.raises(KeyError):
                await front._in_pool(front.pool, lambda x: {}[x], "missing")
            with pytest.raises(RuntimeError):  # a StopIteration cannot be a future's exception
                await front._in_pool(front.pool, lambda x: next(iter(())), None)
            # many at once from every thread: each gets its own result, none is lost
            results = await asyncio.gather(*(front._in_pool(front.pool, _with_thread, i)
                                             for i in range(2000)))
            assert [r[0] for r in results] == list(range(2000))
            assert len({r[1] for r in results}) > 1
        finally:
            front.pool.shutdown()
            front.upload_pool.shutdown()

    asyncio.run(scenario())


def test_pool_calls_finishing_together_wake_the_loop_once(monkeypatch):
    """Calls that finish while the loop is busy are settled by one wake-up of the loop, not
    one each (run_in_executor writes to the loop's self-pipe for every call)."""
    async def scenario():
        front = _started_front()
        loop = asyncio.get_running_loop()
        wakeups = []
        real = loop.call_soon_threadsafe
        monkeypatch.setattr(loop, "call_soon_threadsafe", lambda *a: wakeups.append(a) or real(*a))
        done = []
        try:
            futures = [front._in_pool(front.pool, lambda x: done.append(x) or x, i) for i in range(8)]
            deadline = time.monotonic() + 10
            while len(done) < 8 and time.monotonic() < deadline:  # the loop is busy: it does not turn
                time.sleep(0.001)
            assert len(done) == 8
            assert await asyncio.gather(*futures) == list(range(8))
            assert len(wakeups) == 1
        finally:
            front.pool.shutdown()
            front.upload_pool.shutdown()

    asyncio.run(scenario())


def test_a_pool_call_cancelled_before_it_starts_does_not_run():
    """As with run_in_executor: cancelled while queued, it never runs; cancelled while it runs,
    it finishes and its outcome is dropped (the loop goes on settling the others)."""
    async def scenario():
        front = _started_front(threads=2)
        release, started = threading.Event(), threading.Event()
        ran = []
        try:
            busy = [front._in_pool(front.pool, lambda _: release.wait(10), None) for _ in range(2)]
            queued = front._in_pool(front.pool, ran.append, "queued")
            await asyncio.sleep(0.05)
            queued.cancel()
            release.set()
            assert await asyncio.gather(*busy) == [True, True]
            running = front._in_pool(front.pool, lambda _: started.set() or time.sleep(0.1) or ran.append("running"),
                                     None)
            assert await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
            running.cancel()
            assert await front._in_pool(front.pool, lambda x: x, "after") == "after"
            await asyncio.sleep(0.2)
            assert running.cancelled() and queued.cancelled()
        finally:
            front.pool.shutdown()
            front.upload_pool.shutdown()
        assert ran == ["running"]

    asyncio.run(scenario())


def test_environ_header_keys_are_remembered_within_a_bound():
    """The environ's header keys come from a bounded memo: the same keys as computed, whatever
    the number of distinct names clients send."""
    import common.asgi as front_module
    front = _front(1.0)
    scope = {"type": "http", "method": "POST", "path": "/x", "raw_path": b"/x", "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1)}
    for round_ in range(2):
        for i in range(400):
            headers = {b"content-type": b"application/json", b"content-length": b"2", b"transfer-encoding": b"x",
                       b"x-name-%d" % i: b"v%d" % i, b"authorization": b"Bearer t"}
            environ = front._environ(scope, headers, io.BytesIO(b"{}"), 2, "public")
            assert environ["HTTP_X_NAME_%d" % i] == "v%d" % i
            assert environ["CONTENT_TYPE"] == "application/json" and environ["CONTENT_LENGTH"] == "2"
            assert environ["HTTP_AUTHORIZATION"] == "Bearer t"
            assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
            assert "HTTP_TRANSFER_ENCODING" not in environ
        assert len(front_module._ENVIRON_KEYS) <= front_module._KEYS_KEPT
