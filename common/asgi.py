"""The ASGI front served by gunicorn's asyncio worker: HTTP goes to the Flask app through a bounded
thread pool, websockets to async handlers that services register, lifespan to the app's hooks.

Why a front of our own rather than a generic WSGI bridge: a connection costs a thread only while
the Flask app runs for it. A request body up to `MENDER_REQUEST_SIZE_LIMIT` is read on the event
loop first (a client sending it at one byte per second holds no thread, and is cut off after
`MENDER_BODY_TIMEOUT_SECONDS`); the whole response of a small request crosses back in one hand-off;
a large response (an artifact download) is read from the app in the pool a chunk at a time and
written on the loop, so a slow reader holds no thread either. Only a body larger than that
(an artifact upload, up to 10 GiB) is streamed to the app from a thread of a pool of its own, and
such uploads are bounded per client address and per worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import io
import json
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable
from urllib.parse import unquote_to_bytes

from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wsgi import FileWrapper

from common.config import SETTINGS, default_threads
from common.http import UNSUPPORTED_TRANSFER_CODING, request_id_for, transfer_coding_refused
from common.listeners import ENVIRON_KEY, INTERNAL, ListenerMap, internal_only

log = logging.getLogger("mender.asgi")

WebSocketHandler = Callable[..., Awaitable[None]]

_FIRST_BYTES = 64 * 1024  # response bytes gathered in the first hand-off before streaming starts
_CHUNK_BYTES = 256 * 1024  # bytes read from a streamed response (or a file) per hand-off
SWITCH_INTERVAL = 0.001  # seconds; see AsgiFront._start

_current: contextvars.ContextVar["AsgiFront"] = contextvars.ContextVar("mender_asgi_front")


async def run_sync(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking call (a service method: token verification, a database query) from a
    websocket handler in the front's bounded thread pool, inside the Flask app context so that
    `common.app.ctx()` and `services()` work. Raises whatever `func` raises."""
    front = _current.get()
    return await front.run_sync(func, *args, **kwargs)


class _Reject(Exception):
    """Answer the request from the front, without the app."""

    def __init__(self, status: int, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class _StreamingInput(io.RawIOBase):
    """`wsgi.input` of a large body: the app's thread pulls the body from the event loop a
    message at a time (gunicorn stops reading the socket while 256 KiB wait, so memory stays flat)."""

    def __init__(self, front: "AsgiFront", receive, idle_timeout: float):
        super().__init__()
        self._front = front
        self._receive = receive
        self._idle = idle_timeout
        self._buffer = b""
        self._more = True

    def readable(self) -> bool:
        return True

    async def _next(self) -> bytes:
        try:
            message = await asyncio.wait_for(self._receive(), self._idle)
        except asyncio.TimeoutError:
            raise ClientDisconnected("request body timed out") from None
        if message["type"] != "http.request":
            raise ClientDisconnected("client went away")
        self._more = message.get("more_body", False)
        return message.get("body", b"")

    def _fill(self) -> bool:
        while not self._buffer and self._more:
            self._buffer = asyncio.run_coroutine_threadsafe(self._next(), self._front.loop).result()
        return bool(self._buffer)

    def readinto(self, b) -> int:
        if not self._fill():
            return 0
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while self._fill():
                parts.append(self._buffer)
                self._buffer = b""
            return b"".join(parts)
        if not self._fill():
            return b""
        if len(self._buffer) <= size:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _file_wrapper(file, block_size: int = _CHUNK_BYTES):
    return FileWrapper(file, max(block_size, _CHUNK_BYTES))


class AsgiFront:
    """The ASGI application gunicorn's `asgi` worker serves (`asgi:app`)."""

    def __init__(self, flask_app, *, threads: int | None = None):
        self.flask_app = flask_app
        # any Flask app works (the benchmarks' bare baseline); the server's carries its context
        self.context = flask_app.extensions.get("mender")
        cfg = {s.name: s.default for s in SETTINGS}
        cfg.update((k, v) for k, v in flask_app.config.items() if k in cfg)
        self.wsgi = flask_app.wsgi_app
        self.listeners = ListenerMap(cfg["MENDER_INTERNAL_BIND"] if self.context is not None else "")
        self.small_limit = int(cfg["MENDER_REQUEST_SIZE_LIMIT"])
        self.body_timeout = float(cfg["MENDER_BODY_TIMEOUT_SECONDS"])
        self.uploads_per_client = int(cfg["MENDER_UPLOADS_PER_CLIENT"])
        self.uploads_per_worker = max(1, int(cfg["MENDER_UPLOADS_PER_WORKER"]))
        self.trusted_proxies = int(cfg["MENDER_TRUSTED_PROXIES"])
        self.threads = threads or int(os.environ.get("MENDER_WORKER_THREADS") or default_threads(cfg))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.upload_pool: ThreadPoolExecutor | None = None
        self._uploads_by_client: dict[str, int] = {}
        self._upload_slots: asyncio.Semaphore | None = None
        self._ws_map: Map | None = None
        self._ws_handlers: dict[str, WebSocketHandler] = {}
        self._started = False
        self._stopped = False
        self._start_lock = threading.Lock()
        # calls the pool finished, for the loop to settle (see _in_pool)
        self._finished: collections.deque = collections.deque()
        self._settle_scheduled = False

    # ------------------------------------------------------------------ plumbing
    def _start(self) -> None:
        """Create the pool on the worker's loop (after the fork; lazily, for servers that skip lifespan)."""
        if self._started:
            return
        self.loop = asyncio.get_running_loop()
        # The loop thread and the app threads hand each request over twice; with CPython's 5 ms
        # default a thread woken for a hand-off waits up to that long for the GIL while the loop
        # is busy with other connections (measured on the poll benchmark: half the throughput).
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="mender-app")
        # A streamed upload holds its thread for as long as the client sends (hours on a slow
        # link): uploads run in threads of their own, so they never take the app threads, and
        # the app threads can be as few as the CPU work wants (common.config.default_threads).
        self.upload_pool = ThreadPoolExecutor(max_workers=self.uploads_per_worker, thread_name_prefix="mender-upload")
        self._upload_slots = asyncio.Semaphore(self.uploads_per_worker)
        self._build_websocket_map()
        if self.context is not None:  # for services whose threads reach the loop (deviceconnect's bus)
            self.context.loop = self.loop
            self.context.run_sync = self.run_sync
        self._started = True

    def _build_websocket_map(self) -> None:
        rules = []
        for index, (rule, handler) in enumerate(getattr(self.context, "websocket_routes", ())):
            endpoint = f"ws{index}"
            rules.append(Rule(rule, endpoint=endpoint, methods=["GET"]))
            self._ws_handlers[endpoint] = handler
        self._ws_map = Map(rules, strict_slashes=False, merge_slashes=False)

    def _in_pool(self, pool: ThreadPoolExecutor, func: Callable[[Any], Any], arg: Any) -> asyncio.Future:
        """`func(arg)` in `pool`: a future of the loop that gets its result or its exception.
        What `loop.run_in_executor` does for a request, lighter: no concurrent future chained to
        an asyncio one, and one wake-up of the loop for every call that finishes while one is
        already on its way (run_in_executor writes to the loop's self-pipe for each). In-process,
        a round trip costs ~15 µs less CPU. A call whose future was cancelled before it started
        does not run, as with run_in_executor."""
        future = self.loop.create_future()
        pool.submit(self._pool_call, future, func, arg)
        return future

    def _pool_call(self, future: asyncio.Future, func, arg) -> None:
        """In a pool thread."""
        if future.cancelled():
            return
        try:
            outcome = (func(arg), None)
        except BaseException as exc:  # noqa: BLE001 - the awaiting coroutine gets it, as from an executor
            outcome = (None, exc)
        self._finished.append((future, outcome))
        # the GIL orders these: the loop clears the flag before it empties the queue, so a call
        # finishing meanwhile either is in what it empties or schedules the next settle itself
        if not self._settle_scheduled:
            self._settle_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._settle)
            except RuntimeError:  # the loop is closed: the worker is stopping, nobody awaits
                pass

    def _settle(self) -> None:
        """On the loop: give every finished call's outcome to its future."""
        self._settle_scheduled = False
        finished = self._finished
        while finished:
            future, (result, exc) = finished.popleft()
            if future.done():  # cancelled while it ran
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(RuntimeError("StopIteration in the pool") if isinstance(exc, StopIteration)
                                     else exc)

    async def run_sync(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        app = self.flask_app

        def call():
            with app.app_context():
                return func(*args, **kwargs)

        return await self.loop.run_in_executor(self.pool, call)

    def _listener(self, scope) -> str:
        return self.listeners.classify(scope.get("server"))

    def _client_address(self, scope, headers: dict[bytes, bytes]) -> str:
        client = scope.get("client")
        address = client[0] if client else ""
        if self.trusted_proxies > 0:
            forwarded = headers.get(b"x-forwarded-for")
            if forwarded:
                hops = [h.strip() for h in forwarded.decode("latin-1").split(",")]
                if len(hops) >= self.trusted_proxies:
                    address = hops[-self.trusted_proxies]
        return address

    # ------------------------------------------------------------------ ASGI entry
    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            self._start()
            await self._http(scope, receive, send)
        elif kind == "websocket":
            self._start()
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    from common.asgi_worker import raise_fd_limit
                    raise_fd_limit()
                    self._start()
                    await self._open_connections()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("shutdown hooks failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _open_connections(self) -> None:
        """Open every app and upload thread's SQLite connection at start: on a full disk a new
        connection to a WAL database can fail (SQLite cannot grow its shared-memory file) while
        open ones go on reading, so a worker that filled its pool later would lose reads then."""
        db = getattr(self.context, "db", None)
        if getattr(db, "kind", None) != "sqlite":
            return
        for pool, size in ((self.pool, self.threads), (self.upload_pool, self.uploads_per_worker)):
            barrier = threading.Barrier(size)

            def connect(barrier=barrier) -> None:
                try:
                    db.conn
                except Exception:  # the database is down: requests will say so
                    pass
                try:
                    barrier.wait(timeout=10)  # hold this thread so that the next task gets another
                except threading.BrokenBarrierError:
                    pass

            await asyncio.gather(*(self.loop.run_in_executor(pool, connect) for _ in range(size)))

    async def shutdown(self) -> None:
        """Run the app's shutdown hooks (batched check-ins are written) and stop the pool."""
        if self._stopped:
            return
        self._stopped = True
        for hook in getattr(self.context, "async_shutdown_hooks", ()):  # on the loop, before the pool stops
            try:
                await hook()
            except Exception:
                log.exception("an async shutdown hook failed")
        hooks = self.context.shutdown if self.context is not None else (lambda: None)
        if self.pool is not None:
            await self.loop.run_in_executor(self.pool, hooks)
            self.pool.shutdown(wait=False)
            self.upload_pool.shutdown(wait=False)
        else:
            hooks()

    # ------------------------------------------------------------------ websockets
    async def _websocket(self, scope, receive, send) -> None:
        path = scope["path"]
        listener = self._listener(scope)
        scope[ENVIRON_KEY] = listener
        handler = params = None
        codings = [value for name, value in scope["headers"] if name == b"transfer-encoding"]
        if codings and transfer_coding_refused(b",".join(codings)):  # as for HTTP requests (_http)
            await _deny(scope, receive, send, 501, UNSUPPORTED_TRANSFER_CODING)
            return
        if listener == INTERNAL or not internal_only(path):
            try:
                endpoint, params = self._ws_map.bind("", "/").match(path, "GET")
                handler = self._ws_handlers[endpoint]
            except HTTPException:
                handler = None
        if handler is None:
            await _deny(scope, receive, send, 404, "not found")
            return
        token = _current.set(self)
        try:
            await handler(scope, receive, send, **params)
        finally:
            _current.reset(token)

    # ------------------------------------------------------------------ HTTP
    async def _http(self, scope, receive, send) -> None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers[name] = headers[name] + b"," + value if name in headers else value
        method = scope["method"]
        listener = self._listener(scope)
        slot: str | None = None
        if b"transfer-encoding" in headers and transfer_coding_refused(headers[b"transfer-encoding"]):
            await _send_json_error(send, 501, UNSUPPORTED_TRANSFER_CODING, headers, ())
            return
        try:
            body, length, slot = await self._request_body(scope, receive, headers, method, listener)
        except _Reject as rej:
            await _send_json_error(send, rej.status, rej.message, headers, rej.headers)
            return
        try:
            environ = self._environ(scope, headers, body, length, listener)
            await self._respond(environ, receive, send, streaming=slot is not None)
        finally:
            if slot is not None:
                self._release_upload(slot)

    async def _request_body(self, scope, receive, headers, method, listener):
        """(wsgi.input, the Content-Length to announce or None, the upload slot taken or None)."""
        raw_length = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        length = None
        if raw_length is not None:
            try:
                length = int(raw_length)
            except ValueError:
                raise _Reject(400, "invalid Content-Length") from None
        if not chunked and not length:
            return io.BytesIO(), length, None
        if length is not None and length <= self.small_limit:
            return io.BytesIO(await self._read_small(receive, length)), length, None
        limit = self._route_limit(scope, method, listener)
        if length is not None and length > limit:
            return io.BytesIO(), length, None  # the app refuses it (413) without reading
        if limit <= self.small_limit:  # chunked to a small route: read one byte past the limit
            return io.BytesIO(await self._read_small(receive, limit + 1, exact=False)), None, None
        slot = await self._take_upload(self._client_address(scope, headers))
        return _StreamingInput(self, receive, self.body_timeout), length, slot

    async def _read_small(self, receive, size: int, exact: bool = True) -> bytes:
        """Read up to `size` body bytes on the loop within MENDER_BODY_TIMEOUT_SECONDS."""
        if _body_received(receive):  # nothing to wait for: no timer (~5 µs of a device poll)
            got, body = await _collect(receive, size)
        else:
            try:
                # one timer for the whole body (asyncio.wait_for would wrap every receive in a task
                # of its own: an extra loop turn per request with a body, ~10 % of a poll's CPU)
                async with asyncio.timeout(self.body_timeout):
                    got, body = await _collect(receive, size)
            except TimeoutError:
                raise _Reject(408, "request body timed out") from None
        if exact and got < size:
            raise _Reject(400, "request body shorter than its Content-Length")
        return body

    def _route_limit(self, scope, method: str, listener: str) -> int:
        """The body limit of the route a request goes to (uploads have their own)."""
        limits = self.context.body_limits if self.context is not None else None
        if not limits:
            return self.small_limit
        try:
            endpoint, _ = self.flask_app.url_map.bind("", "/").match(scope["path"], method)
        except HTTPException:
            return self.small_limit
        return limits.get((method, endpoint), self.small_limit)

    async def _take_upload(self, client: str) -> str:
        count = self._uploads_by_client.get(client, 0)
        if count >= self.uploads_per_client:
            raise _Reject(429, f"too many concurrent uploads from this address (limit {self.uploads_per_client})",
                          (("Retry-After", "10"),))
        self._uploads_by_client[client] = count + 1
        try:
            await asyncio.wait_for(self._upload_slots.acquire(), self.body_timeout)
        except asyncio.TimeoutError:
            self._drop_client(client)
            raise _Reject(503, "too many concurrent uploads, retry later", (("Retry-After", "10"),)) from None
        except BaseException:
            self._drop_client(client)
            raise
        return client

    def _release_upload(self, client: str) -> None:
        self._upload_slots.release()
        self._drop_client(client)

    def _drop_client(self, client: str) -> None:
        count = self._uploads_by_client.get(client, 0) - 1
        if count > 0:
            self._uploads_by_client[client] = count
        else:
            self._uploads_by_client.pop(client, None)

    def _environ(self, scope, headers: dict[bytes, bytes], body, length, listener: str) -> dict:
        raw_path = scope.get("raw_path")
        if raw_path:
            path = unquote_to_bytes(raw_path.split(b"?", 1)[0]).decode("latin-1")
        else:
            path = scope["path"].encode("utf-8").decode("latin-1")
        server = scope.get("server") or ("localhost", 80)
        client = scope.get("client") or ("", 0)
        environ = {
            "REQUEST_METHOD": scope["method"],
            "SCRIPT_NAME": scope.get("root_path", "").encode("utf-8").decode("latin-1"),
            "PATH_INFO": path,
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]),
            "SERVER_PORT": str(server[1]) if server[1] is not None else "80",
            "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
            "REMOTE_ADDR": client[0],
            "REMOTE_PORT": str(client[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": body,
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": _file_wrapper,
            ENVIRON_KEY: listener,
        }
        for name, value in headers.items():
            key = _ENVIRON_KEYS.get(name, _UNSEEN)
            if key is _UNSEEN:
                key = _environ_key(name)
            if key is not None:
                environ[key] = value.decode("latin-1")
        if length is not None:
            environ["CONTENT_LENGTH"] = str(length)
        return environ

    async def _respond(self, environ, receive, send, streaming: bool) -> None:
        loop = self.loop
        pool = self.upload_pool if streaming else self.pool
        try:
            status, headers, first, rest, result = await self._in_pool(pool, self._call_app, environ)
        except Exception:
            log.exception("application error outside the app's own error handling")
            await _send_json_error(send, 500, "internal error", {}, ())
            return
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if rest is None:
                await send({"type": "http.response.body", "body": first})
                return
            gone = asyncio.Event()
            watcher = None if streaming else loop.create_task(_watch_disconnect(receive, gone))
            try:
                await send({"type": "http.response.body", "body": first, "more_body": True})
                while not gone.is_set():
                    chunk = await loop.run_in_executor(pool, _next_chunk, rest)
                    if not chunk:
                        break
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            finally:
                if watcher is not None:
                    watcher.cancel()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                await loop.run_in_executor(pool, close)

    def _call_app(self, environ):
        """In a pool thread: run the app; return the status, headers, the first body bytes and
        the rest of the body iterator (None when the whole body is in the first bytes)."""
        started: list = []

        def start_response(status, headers, exc_info=None):
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return _no_write

        result = self.wsgi(environ, start_response)
        try:
            iterator = iter(result)
            parts: list[bytes] = []
            size = 0
            rest = None
            for chunk in iterator:
                if chunk:
                    parts.append(chunk)
                    size += len(chunk)
                    if size >= _FIRST_BYTES:
                        rest = iterator
                        break
        except BaseException:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            raise
        if not started:
            raise RuntimeError("the app returned without calling start_response")
        status, headers = started
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if rest is None:
            close = getattr(result, "close", None)
            if close is not None:
                close()
            result = None
        return int(status[:3]), raw_headers, b"".join(parts), rest, result


# a header's environ key by its name (the names requests use are few; at most _KEYS_KEPT kept)
_ENVIRON_KEYS: dict[bytes, str | None] = {b"content-length": None, b"transfer-encoding": None,
                                          b"content-type": "CONTENT_TYPE"}
_KEYS_KEPT = 256
_UNSEEN = object()


def _environ_key(name: bytes) -> str:
    key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
    if len(_ENVIRON_KEYS) < _KEYS_KEPT:
        _ENVIRON_KEYS[name] = key
    return key


async def _collect(receive, size: int) -> tuple[int, bytes]:
    """(bytes received, the body) of up to `size` bytes; _Reject when the client went away."""
    parts: list[bytes] = []
    got = 0
    more = True
    while more and got < size:
        message = await receive()
        if message["type"] != "http.request":
            raise _Reject(400, "client went away")
        chunk = message.get("body", b"")
        if chunk:
            parts.append(chunk)
            got += len(chunk)
        more = message.get("more_body", False)
    return got, b"".join(parts)


try:
    from gunicorn.asgi.protocol import BodyReceiver as _GunicornBodyReceiver
except ImportError:  # another ASGI server: every body is read under the timer
    _GunicornBodyReceiver = None


def _body_received(receive) -> bool:
    """Whether `receive` is gunicorn's and the request's whole body has arrived (a small body
    comes with its headers): then every receive() returns at once and the body cannot time out.
    Anything else (another server, a body still arriving, a client gone) is read under the timer."""
    owner = getattr(receive, "__self__", None)
    if owner is None or owner.__class__ is not _GunicornBodyReceiver:
        return False
    try:
        return (owner._complete is True and not owner._body_finished and not owner._closed
                and not owner._body_wait_expired)
    except AttributeError:  # a gunicorn whose receiver keeps other state
        return False


def _no_write(data: bytes) -> None:
    raise RuntimeError("the WSGI write() callable is not supported")


def _next_chunk(iterator) -> bytes:
    parts = []
    size = 0
    for chunk in iterator:
        if chunk:
            parts.append(chunk)
            size += len(chunk)
            if size >= _CHUNK_BYTES:
                break
    return b"".join(parts)


async def _watch_disconnect(receive, gone: asyncio.Event) -> None:
    """After the request body: the next message is the disconnect of a client that left mid-response."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


def _error_body(status: int, message: str, headers: dict[bytes, bytes]) -> tuple[bytes, str]:
    incoming = headers.get(b"x-men-requestid", b"").decode("latin-1")
    rid = request_id_for(incoming)
    return json.dumps({"error": message, "request_id": rid}, separators=(",", ":")).encode(), rid


async def _send_json_error(send, status: int, message: str, headers: dict[bytes, bytes], extra) -> None:
    body, rid = _error_body(status, message, headers)
    response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"x-men-requestid", rid.encode()), (b"connection", b"close")]
    response_headers += [(k.lower().encode(), str(v).encode()) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


async def _deny(scope, receive, send, status: int, message: str) -> None:
    """Refuse a websocket handshake with an HTTP status and a JSON error body (the ASGI
    websocket denial response, which common.asgi_worker adds to gunicorn's worker); servers
    without it answer 403."""
    message_ = await receive()
    if message_["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = {k: v for k, v in scope.get("headers", [])}
        body, rid = _error_body(status, message, headers)
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"x-men-requestid", rid.encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


deny_websocket = _deny
