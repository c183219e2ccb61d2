"""A small HTTP/1.1 client for the fleet simulator (bench/fleet.py): keep-alive connections in one
pool, each request's bytes built by the caller, each answer read just enough (the status,
`Content-Length` or a chunked body, `Connection: close`).

The simulator ran on aiohttp, which cost it ~0.5 ms of CPU per request on the server's own two
cores: more than the server's poll. This keeps aiohttp's connection behaviour (one pool of at
most `limit` connections, idle ones reused oldest first and dropped after `keepalive` seconds
idle, a `timeout` over the whole request, pool wait included) and the header set it sent, so
the server sees the same requests. Not a general client: plain HTTP only, no redirects,
proxies, 1xx answers or content codings.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque

# the headers aiohttp added to every request (so the server parses what it parsed before)
DEFAULT_HEADERS = (f"Accept: */*\r\nAccept-Encoding: gzip, deflate\r\n"
                   f"User-Agent: Python/{sys.version_info[0]}.{sys.version_info[1]} bench.fleet\r\n")
MAX_HEAD = 65536


def request_bytes(method: str, host: str, target: str, headers: tuple[tuple[str, str], ...] = (),
                  body: bytes | None = None) -> bytes:
    """The request as sent: the request line, Host, the caller's headers, aiohttp's defaults, and
    Content-Length when there is a body."""
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append(DEFAULT_HEADERS)
    if body is not None:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head + body if body else head


class ProtocolError(ValueError):
    pass


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buf = bytearray()
        self._waiter: asyncio.Future | None = None

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._waiter is not None:
            try:
                self._parse()
            except Exception as exc:  # a malformed answer fails its request, the connection is dropped
                self._fail(exc)

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self._waiter is not None:
            if self._status is not None and self._length == -1:  # a body delimited by the close
                self._done(bytes(self._buf), False)
            else:
                self._fail(ConnectionError("connection closed before the answer's end"))

    # the client's side
    def exchange(self, data: bytes, head: bool = False) -> asyncio.Future:
        """Send one request; the future resolves to (status, body, reusable)."""
        self._waiter = asyncio.get_running_loop().create_future()
        self._head, self._status, self._length, self._chunks = head, None, None, None
        self._close = False
        del self._buf[:]
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _parse(self) -> None:
        buf = self._buf
        if self._status is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("answer head too large")
                return
            lines = buf[:end].decode("latin-1").split("\r\n")
            del buf[:end + 4]
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if not version.startswith("HTTP/1.") or status < 200:
                raise ProtocolError(f"unexpected status line {lines[0]!r}")
            length, chunked, close = None, False, version == "HTTP/1.0"
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding":
                    chunked = value.strip().lower().endswith("chunked")
                elif name == "connection":
                    close = value.strip().lower() == "close"
            if self._head or status in (204, 304):
                length = 0
            elif chunked:
                length, self._chunks = None, []
            elif length is None:
                length, close = -1, True  # read until the server closes
            self._status, self._length, self._close = status, length, close
        if self._chunks is not None:
            self._parse_chunks()
        elif self._length >= 0 and len(buf) >= self._length:
            self._done(bytes(buf[:self._length]), not self._close and len(buf) == self._length)

    def _parse_chunks(self) -> None:
        buf, chunks = self._buf, self._chunks
        while True:
            eol = buf.find(b"\r\n")
            if eol < 0:
                return
            size = int(bytes(buf[:eol]).split(b";", 1)[0], 16)
            if size == 0:  # the last chunk, then trailers up to an empty line
                end = buf.find(b"\r\n\r\n", eol) if buf[eol + 2:eol + 4] != b"\r\n" else eol
                if end < 0:
                    return
                self._done(b"".join(chunks), not self._close and len(buf) == end + 4)
                return
            if len(buf) < eol + 2 + size + 2:
                return
            chunks.append(bytes(buf[eol + 2:eol + 2 + size]))
            del buf[:eol + 2 + size + 2]

    def _done(self, body: bytes, reusable: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if not waiter.done():
            waiter.set_result((self._status, body, reusable))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


class Pool:
    """Keep-alive connections to 127.0.0.1 servers, at most `limit` open in all (idle ones
    included, as aiohttp's TCPConnector(limit=...)): a request takes the longest idle connection
    to its server, or opens one while under the limit, or waits for one; an idle connection is
    not reused after `keepalive` seconds. `timeout` bounds a whole request, its wait included."""

    def __init__(self, limit: int = 512, keepalive: float = 15.0, timeout: float = 60.0):
        self.limit, self.keepalive, self.timeout = limit, keepalive, timeout
        self.opened = 0  # connections made so far (for tests and reports)
        self._open = 0
        self._idle: dict[tuple[str, int], deque] = {}
        self._waiters: deque[asyncio.Future] = deque()

    async def request(self, port: int, data: bytes, head: bool = False,
                      host: str = "127.0.0.1") -> tuple[int, bytes]:
        """Send `data` (a whole request, see `request_bytes`) and return the answer's status and body."""
        async with asyncio.timeout(self.timeout):
            conn = await self._acquire(host, port)
            try:
                status, body, reusable = await conn.exchange(data, head)
            except BaseException:
                self._drop(conn)
                raise
        if reusable and not conn.closed:
            self._idle.setdefault((host, port), deque()).append((conn, time.monotonic()))
            self._wake()
        else:
            self._drop(conn)
        return status, body

    async def _acquire(self, host: str, port: int) -> _Connection:
        while True:
            idle = self._idle.get((host, port))
            now = time.monotonic()
            while idle:
                conn, since = idle.popleft()
                if not conn.closed and now - since <= self.keepalive:
                    return conn
                self._drop(conn)
            if self._open < self.limit:
                self._open += 1
                try:
                    _, conn = await asyncio.get_running_loop().create_connection(_Connection, host, port)
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
                self.opened += 1
                return conn
            if not self._close_idle_elsewhere(host, port):
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                except BaseException:  # timed out: a wake-up already given goes to the next waiter
                    if waiter.done() and not waiter.cancelled():
                        self._wake()
                    waiter.cancel()
                    raise

    def _close_idle_elsewhere(self, host: str, port: int) -> bool:
        """At the limit: close an idle connection to another server to make room (as aiohttp)."""
        for key, idle in self._idle.items():
            if key != (host, port) and idle:
                self._drop(idle.popleft()[0])
                return True
        return False

    def _drop(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                self._drop(idle.popleft()[0])
