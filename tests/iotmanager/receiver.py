"""A webhook receiver for the tests: a real HTTP server on 127.0.0.1 that records every request,
checks nothing itself (the tests do), and behaves as told: fail the first N requests, hang until
released, answer with a given status, a redirect or an endless body."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float  # time.monotonic() when the body was read
    concurrent: int  # requests in flight when this one arrived (itself included)

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signature_ok(self, secret: bytes) -> bool:
        expected = hmac.new(secret, self.body, hashlib.sha256).hexdigest()
        return (self.headers.get("X-Men-Algorithm") == "MEN-HMAC-SHA256-Payload"
                and hmac.compare_digest(self.headers.get("X-Men-Signature", ""), expected))


@dataclass
class Behaviour:
    fail_first: int = 0  # answer 500 to this many requests first
    status: int = 200
    hang: threading.Event | None = None  # when set: hold each request until the event is set
    redirect_to: str | None = None
    endless_body: bool = False  # answer 200 and stream a body that never ends
    delay: float = 0.0
    status_for: Callable[[Received], int] | None = None  # decides the status from the request


class Receiver:
    def __init__(self):
        self.requests: list[Received] = []
        self.behaviour = Behaviour()
        self._cond = threading.Condition()
        self._in_flight = 0
        self.max_concurrent = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._cond:
                    receiver._in_flight += 1
                    receiver.max_concurrent = max(receiver.max_concurrent, receiver._in_flight)
                    item = Received(self.path, dict(self.headers.items()), body, time.monotonic(), receiver._in_flight)
                    receiver.requests.append(item)
                    number = len(receiver.requests)
                    receiver._cond.notify_all()
                finished = []

                def done():  # before the first byte of the answer: the client may send the next
                    if not finished:         # request as soon as it has the answer
                        finished.append(True)
                        with receiver._cond:
                            receiver._in_flight -= 1
                            receiver._cond.notify_all()
                try:
                    receiver._answer(self, number, item, done)
                finally:
                    done()

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.server.handle_error = lambda request, address: None  # a client that hung up is no news
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _answer(self, handler: BaseHTTPRequestHandler, number: int, item: Received, done) -> None:
        b = self.behaviour
        if b.hang is not None:
            b.hang.wait(60)
        if b.delay:
            time.sleep(b.delay)
        done()
        if b.redirect_to:
            handler.send_response(302)
            handler.send_header("Location", b.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if b.endless_body:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/plain")
            handler.end_headers()  # no length: the body lasts until the connection closes
            chunk = b"x" * 65536
            try:
                for _ in range(100000):
                    handler.wfile.write(chunk)
            except OSError:
                pass
            return
        status = 500 if number <= b.fail_first else b.status_for(item) if b.status_for else b.status
        payload = json.dumps({"received": number}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def start(self) -> "Receiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.behaviour.hang is not None:
            self.behaviour.hang.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Block until at least `count` requests arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"received {len(self.requests)} requests, expected {count}")
                self._cond.wait(remaining)
            return list(self.requests)

    def wait_in_flight(self, count: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._in_flight < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self._in_flight} requests in flight, expected {count}")
                self._cond.wait(remaining)
