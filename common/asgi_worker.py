"""gunicorn's asyncio ASGI worker with two additions the server needs:

- a header read timeout (`MENDER_HEADER_TIMEOUT_SECONDS`): gunicorn bounds the wait for a
  keep-alive connection's next request, but not for a new connection's first one, so a client
  trickling its headers could hold a connection (and a descriptor) for ever;
- the ASGI websocket denial response (`websocket.http.response.start`/`.body`), so that a
  websocket handler can refuse a handshake with 401 or 404 and a JSON body, not only 403;
- pings from the application (extension `websocket.ping`): it sends `{"type": "websocket.ping"}`
  and from then on receives `{"type": "websocket.pong"}` for each pong, so it can keep idle
  connections alive through proxies and find peers that are gone (deviceconnect's devices);
- gunicorn's pure-Python HTTP parser with its two per-byte checks (header names are tokens,
  header values hold no control characters) done by one regular expression each: the same
  rules, without a Python loop over every byte of a device's ~420-byte bearer token (~20 µs of
  a poll); and a complete header block that breaks no rule parsed at once by one regular
  expression instead of line by line (a poll's headers: 26 → 12 µs in-process); any other block
  goes line by line through gunicorn's own code, which raises its own errors. gunicorn picks its
  C parser (gunicorn_h1c) when one is installed; that one is kept.

The worker's event loop is gunicorn's `asgi_loop`, which gunicorn.conf.py sets from
`MENDER_EVENT_LOOP`: `uvloop` (libuv's, the default: 5-9 % less server CPU per request,
bench/README.md "Session 11: uvloop") or `asyncio`; a worker that cannot import uvloop runs on
asyncio's and says so in a warning (`event_loop()`).

`worker_class = "common.asgi_worker.AsgiWorker"` in gunicorn.conf.py.
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
from http import HTTPStatus

import gunicorn.asgi.websocket as _gws
from gunicorn.asgi.parser import PythonProtocol
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers.gasgi import ASGIWorker

# Nothing of the app is imported here: gunicorn's master imports the worker class, and
# prometheus_client must first be imported after PROMETHEUS_MULTIPROC_DIR is set (on_starting).

log = logging.getLogger("mender.asgi")


def raise_fd_limit() -> int:
    """Raise this process's open-file soft limit to its hard limit (each connection is one
    descriptor); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit to %s: %r", hard, exc)
    return soft


def event_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """A new event loop for a worker (after the fork) and its name: `uvloop` or gunicorn's `auto`
    → uvloop's; `asyncio` → asyncio's own. uvloop asked for but not importable: asyncio's, with a
    warning (`auto` falls back without one, as gunicorn's own worker does)."""
    if choice in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError as exc:
            if choice == "uvloop":
                log.warning("MENDER_EVENT_LOOP=uvloop but uvloop cannot be imported (%s): this worker "
                            "runs on asyncio's event loop", exc)
        else:
            return uvloop.new_event_loop(), "uvloop " + uvloop.__version__
    elif choice != "asyncio":
        raise ValueError(f"unknown event loop {choice!r} (uvloop, asyncio)")
    return asyncio.new_event_loop(), "asyncio"


_DENIAL = "websocket.http.response"
_PING = "websocket.ping"


class _WebSocketProtocol(_gws.WebSocketProtocol):
    """gunicorn's websocket protocol plus the denial response and ping extensions."""

    _pongs_wanted = False

    async def _read_frame(self):
        frame = await super()._read_frame()
        if frame is not None and frame[0] == _gws.OPCODE_PONG and self._pongs_wanted:
            await self._put_message({"type": "websocket.pong", "bytes": frame[1]})
        return frame

    async def _send(self, message):
        kind = message["type"]
        if kind == _PING:
            if self.accepted and not self.closed and not self._close_sent:
                self._pongs_wanted = True
                await self._send_frame(_gws.OPCODE_PING, bytes(message.get("bytes") or b"")[:125])
            return
        if kind == _DENIAL + ".start":
            if self.accepted or self._denied:
                raise RuntimeError("websocket denial response after the handshake")
            self._denial = (int(message["status"]), list(message.get("headers", [])), [])
            return
        if kind == _DENIAL + ".body":
            denial = getattr(self, "_denial", None)
            if denial is None:
                raise RuntimeError("websocket.http.response.body before .start")
            denial[2].append(message.get("body", b""))
            if not message.get("more_body", False):
                self._write_denial(*denial)
            return
        await super()._send(message)

    def _write_denial(self, status: int, headers: list, parts: list) -> None:
        if self._denied:
            return
        self._denied = True
        self.closed = True
        self._close_event.set()
        body = b"".join(parts)
        reason = {400: b"Bad Request", 401: b"Unauthorized", 403: b"Forbidden", 404: b"Not Found",
                  409: b"Conflict", 429: b"Too Many Requests", 503: b"Service Unavailable"}.get(status, b"Error")
        lines = [b"HTTP/1.1 %d %s" % (status, reason)]
        for name, value in headers:
            name = name if isinstance(name, bytes) else name.encode("latin-1")
            value = value if isinstance(value, bytes) else value.encode("latin-1")
            if name.lower() in (b"content-length", b"connection", b"transfer-encoding"):
                continue
            if b"\r" in name + value or b"\n" in name + value:
                continue
            lines.append(name + b": " + value)
        lines += [b"Content-Length: %d" % len(body), b"Connection: close", b"", b""]
        try:
            self.transport.write(b"\r\n".join(lines) + body)
            self.transport.close()
        except (OSError, RuntimeError):
            pass


_KNOWN = {s.value for s in HTTPStatus}

# RFC 9110 section 5.6.2: a token is one or more of these (gunicorn's loop: 0x21-0x7e without
# the delimiters `"(),/:;<=>?@[\]{}`); section 5.5: a field value may not hold NUL-BS, LF-US, DEL
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch
_INVALID_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]").search
# A block of header lines every one of which passes both checks: a token, a colon, a value of
# HTAB, SP-~ and obs-text (so no CR or LF but the CRLFs between lines), each line non-empty
_FIELD = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*"
_VALID_BLOCK = re.compile(_FIELD + rb"(?:\r\n" + _FIELD + rb")*").fullmatch


class _Parser(PythonProtocol):
    """gunicorn's Python parser with its per-byte validity checks as regular expressions (the
    same answers for every input: tests/common/test_asgi_worker.py compares them byte by byte)."""

    __slots__ = ()  # the layout of gunicorn's class, so that a parser it made can become one

    def _is_valid_token(self, data):
        return _TOKEN(data) is not None

    def _has_invalid_header_chars(self, value):
        return _INVALID_VALUE(value) is not None

    def _parse_headers(self):
        """The whole header block at once when it is all in the buffer and valid within every
        limit (a device's request: one regular expression instead of a Python loop per line,
        each finding its line twice, copying it and checking it); anything else (a block not
        yet complete, an empty one, any line that breaks a rule) is gunicorn's line by line,
        which raises the very error it always raised."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end <= 0 or buffer[:2] == b"\r\n":
            return super()._parse_headers()
        block = bytes(buffer[:end])
        if _VALID_BLOCK(block) is None:
            return super()._parse_headers()
        lines = block.split(b"\r\n")
        size_limit = self._limit_request_field_size
        count_limit = self._limit_request_fields
        if ((count_limit > 0 and self._header_count + len(lines) > count_limit)
                or (size_limit > 0 and max(map(len, lines)) + 2 > size_limit)):
            return super()._parse_headers()
        del buffer[:end + 4]
        self._scan_from = 0
        self._header_count += len(lines)
        on_header = self._on_header
        headers = self._headers_list
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.lower()
            value = value.strip(b" \t")
            headers.append((name, value))
            if on_header:
                on_header(name, value)
        self._finalize_headers()
        return True


class _Protocol(ASGIProtocol):
    """gunicorn's HTTP protocol plus a deadline for a new connection's first request headers."""

    header_timeout = 30.0

    def connection_made(self, transport):
        super().connection_made(transport)
        self.worker.protocols.add(self)
        self._header_timer = None
        if self._callback_parser is not None and self.header_timeout > 0:
            self._header_timer = self.worker.loop.call_later(self.header_timeout, self._header_timed_out)

    def _setup_callback_parser(self):
        super()._setup_callback_parser()
        if type(self._callback_parser) is PythonProtocol:  # not the C parser, nor a subclass
            self._callback_parser.__class__ = _Parser

    def _on_headers_complete(self):
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None
        return super()._on_headers_complete()

    def _header_timed_out(self):
        self._header_timer = None
        if self._current_request is None and not self._closed:
            self._close_transport()
            if self._request_ready is not None:
                self._request_ready.set()

    def connection_lost(self, exc):
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None
        self.worker.protocols.discard(self)
        super().connection_lost(exc)

    def _send_error_response(self, status, message, extra_headers=()):
        """gunicorn's own refusals (malformed HTTP, limits) and its last-resort 500 as the
        project's JSON error with a request id. 501 (a transfer coding it does not know) is the
        client's input: 400, as nothing a client sends may produce a 5xx."""
        from common.gunicorn_errors import error_bytes
        if status == 501:
            status = 400
        self._safe_write(error_bytes(status, HTTPStatus(status).phrase if status in _KNOWN else "Error",
                                     message, extra_headers))

    def close_if_idle(self) -> bool:
        """At a graceful stop: close a keep-alive connection waiting for its next request, and
        tell a websocket client the server is going away (1001: it reconnects elsewhere)."""
        if self._closed:
            return False
        websocket = self._websocket
        if websocket is not None:
            if websocket.accepted and not websocket.closed and not websocket._close_sent:
                self.worker.loop.create_task(websocket._send_close(1001, "server shutting down"))
            return True
        if self._awaiting_request and self._current_request is None and not self._finishing_calls:
            transport = self.transport
            self._close_transport()
            if transport is not None and transport.get_extra_info("ssl_object") is not None:
                # TLS: close() sent our close_notify, then asyncio waits for the peer's (up to its
                # 30 s ssl_shutdown_timeout), which an idle keep-alive client never sends, nor one
                # whose FIN this paused connection never read: the worker waited out the whole
                # graceful timeout. RFC 8446 6.1 does not require waiting for it: drop the socket.
                transport.abort()
            if self._request_ready is not None:
                self._request_ready.set()
            return True
        return False

    def _build_websocket_scope(self, request, sockname, peername):
        scope = super()._build_websocket_scope(request, sockname, peername)
        scope.setdefault("extensions", {})[_DENIAL] = {}
        scope["extensions"][_PING] = {}
        return scope


class AsgiWorker(ASGIWorker):
    """The worker gunicorn.conf.py names: gunicorn's `asgi` worker with the protocol above."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.protocols: set[_Protocol] = set()
        self.loop_name = ""

    def _setup_event_loop(self):
        """gunicorn's, with event_loop()'s choice and fallback (gunicorn's own falls back for
        `auto` without a word) and a log line naming the loop."""
        self.loop, self.loop_name = event_loop(getattr(self.cfg, "asgi_loop", "auto"))
        asyncio.set_event_loop(self.loop)
        self.log.info("worker %s: event loop %s", self.pid, self.loop_name)

    def init_process(self):
        raise_fd_limit()
        from common.config import load_config
        _Protocol.header_timeout = load_config()["MENDER_HEADER_TIMEOUT_SECONDS"]
        # gunicorn's protocol imports the websocket class from its module when a handshake
        # arrives: this worker process uses ours
        _gws.WebSocketProtocol = _WebSocketProtocol
        super().init_process()

    async def _serve(self):
        import gunicorn.workers.gasgi as gasgi
        gasgi.ASGIProtocol = _Protocol  # the serving loop builds its connections from this name
        await super()._serve()

    async def _shutdown(self):
        for server in self.servers:
            server.close()
        for protocol in list(self.protocols):
            protocol.close_if_idle()
        await super()._shutdown()
