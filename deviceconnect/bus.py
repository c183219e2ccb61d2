"""The message bus between the processes that hold device and operator sockets.

One interface, two implementations chosen by `DEVICECONNECT_NATS_URI`:

- `EmbeddedBus` (empty setting, the default): the worker processes of one box talk over unix
  sockets, peer to peer. Each process listens on an abstract-namespace socket and leaves a
  file named after it in `$MENDER_DATA_DIR/deviceconnect-bus/`; a process that starts connects
  to every peer listed there and says hello, which makes each peer connect back. A message is
  delivered to this process's own subscribers and written once to every peer, which delivers it
  to its subscribers or drops it: O(workers) per message, a small constant on one box (2 × cores
  workers), no broker, no database round trip, nothing to set up. Per peer, messages arrive in
  the order they were published.
- `NatsBus` (`nats://…`): NATS, as Mender does, for several hosts. One subscription per device
  and per operator session, so a message goes only to the process that holds the socket.

Subjects are dot-separated tokens (`dc.<tenant>.d.<device id>`, `dc.<tenant>.s.<session id>`);
callbacks are plain functions called on the bus's event loop, which must not block.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import socket
import struct
from abc import ABC, abstractmethod
from typing import Callable

log = logging.getLogger(__name__)

Callback = Callable[[bytes], None]

_SAFE_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def token(value: str) -> str:
    """A subject token for any string: kept when it is safe (ids, UUIDs), hex-encoded otherwise."""
    if value == "":
        return "-"
    if _SAFE_TOKEN.match(value):
        return value
    return "x" + value.encode().hex()


def device_subject(tenant: str, device_id: str) -> str:
    return f"dc.{token(tenant)}.d.{token(device_id)}"


def session_subject(tenant: str, session_id: str) -> str:
    return f"dc.{token(tenant)}.s.{token(session_id)}"


class Subscription(ABC):
    @abstractmethod
    async def unsubscribe(self) -> None:
        """Stop delivering (idempotent)."""


class Bus(ABC):
    """Publish/subscribe between processes; at-most-once delivery, ordered per publisher."""

    @abstractmethod
    async def start(self) -> None:
        """Connect; raises on failure."""

    @abstractmethod
    async def close(self) -> None:
        """Disconnect; subscriptions end."""

    @abstractmethod
    async def subscribe(self, subject: str, callback: Callback) -> Subscription:
        """Deliver every message published on `subject` to `callback(data)`."""

    @abstractmethod
    async def publish(self, subject: str, data: bytes) -> None:
        """Send `data` to the subscribers of `subject`, wherever they are."""

    def check(self) -> None:
        """Raise when the bus cannot deliver (health check)."""


# --------------------------------------------------------------------------- embedded


class _LocalSubscription(Subscription):
    __slots__ = ("_bus", "_subject", "_callback")

    def __init__(self, bus: "_LocalDelivery", subject: str, callback: Callback):
        self._bus, self._subject, self._callback = bus, subject, callback

    async def unsubscribe(self) -> None:
        self._bus._remove(self._subject, self._callback)


class _LocalDelivery:
    """Subscribers of this process, by subject."""

    def __init__(self) -> None:
        self._subs: dict[str, list[Callback] | Callback] = {}

    def _add(self, subject: str, callback: Callback) -> None:
        current = self._subs.get(subject)
        if current is None:
            self._subs[subject] = callback  # the common case (one subscriber) costs no list
        elif isinstance(current, list):
            current.append(callback)
        else:
            self._subs[subject] = [current, callback]

    def _remove(self, subject: str, callback: Callback) -> None:
        current = self._subs.get(subject)
        if current is None:
            return
        if isinstance(current, list):
            if callback in current:
                current.remove(callback)
            if len(current) == 1:
                self._subs[subject] = current[0]
            elif not current:
                del self._subs[subject]
        elif current is callback:
            del self._subs[subject]

    def deliver(self, subject: str, data: bytes) -> None:
        current = self._subs.get(subject)
        if current is None:
            return
        for callback in (list(current) if isinstance(current, list) else (current,)):
            try:
                callback(data)
            except Exception:  # one subscriber's bug must not stop the others
                log.exception("bus subscriber failed on %s", subject)


_HEADER = struct.Struct(">IH")  # frame length (after this header), subject length
_HELLO = "\x00hello"
_WELCOME = "\x00welcome"
MAX_FRAME = 16 * 1024 * 1024
_HIGH_WATER = 4 * 1024 * 1024  # wait for a peer to drain above this many buffered bytes
_DRAIN_TIMEOUT = 10.0


class _Peer:
    __slots__ = ("name", "reader", "writer", "task")

    def __init__(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.name, self.reader, self.writer, self.task = name, reader, writer, None


class EmbeddedBus(Bus):
    """Peer-to-peer unix sockets between the processes of one box (see the module docstring)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.name = secrets.token_hex(8)
        self._local = _LocalDelivery()
        self._server: asyncio.AbstractServer | None = None
        self._peers: dict[str, _Peer] = {}  # where to send, one link per peer
        self._links: set[_Peer] = set()  # every open link (inbound ones too), to close them
        self._started = False

    @staticmethod
    def _address(name: str) -> str:
        return f"\0mender-deviceconnect-{name}"

    def _registry_file(self, name: str) -> str:
        return os.path.join(self.directory, name + ".peer")

    async def start(self) -> None:
        if self._started:
            return
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._accepted, path=self._address(self.name))
        with open(self._registry_file(self.name), "w") as f:
            f.write(str(os.getpid()))
        self._started = True
        for entry in os.listdir(self.directory):
            if entry.endswith(".peer") and entry[:-5] != self.name:
                await self._connect(entry[:-5])

    @staticmethod
    async def _open(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A stream to an abstract-namespace socket. Connected by a socket of our own: uvloop's
        `open_unix_connection(path)` hands the path to libuv, which cuts it at its leading NUL
        (EINVAL), while `sock_connect` passes the whole address to connect(2) on either loop."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, address)
            return await asyncio.open_unix_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    async def _connect(self, name: str) -> _Peer | None:
        try:
            reader, writer = await asyncio.wait_for(self._open(self._address(name)), 2.0)
        except (OSError, asyncio.TimeoutError):
            # a process that died without cleaning up: forget it
            try:
                os.unlink(self._registry_file(name))
            except OSError:
                pass
            return None
        peer = _Peer(name, reader, writer)
        writer.write(self._frame(_HELLO, self.name.encode()))
        try:  # the peer knows us once it answers: from then on it sends us what we subscribe to
            subject, _ = await asyncio.wait_for(self._read_frame(reader), 2.0)
        except Exception:
            subject = None
        if subject != _WELCOME:
            writer.close()
            return None
        self._adopt(peer)
        return peer

    def _adopt(self, peer: _Peer) -> None:
        self._links.add(peer)
        if peer.name not in self._peers:
            self._peers[peer.name] = peer
        peer.task = asyncio.get_running_loop().create_task(self._read(peer))

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            subject, data = await asyncio.wait_for(self._read_frame(reader), 5.0)
        except Exception:
            writer.close()
            return
        if subject != _HELLO:
            writer.close()
            return
        name = data.decode(errors="replace")
        peer = _Peer(name, reader, writer)
        self._adopt(peer)  # the first link with a peer is the one we send on; others only receive
        writer.write(self._frame(_WELCOME, self.name.encode()))

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> tuple[str, bytes]:
        header = await reader.readexactly(_HEADER.size)
        length, subject_length = _HEADER.unpack(header)
        if length > MAX_FRAME or subject_length > length:
            raise ValueError("bus frame too large")
        body = await reader.readexactly(length)
        return body[:subject_length].decode(), body[subject_length:]

    async def _read(self, peer: _Peer) -> None:
        try:
            while True:
                subject, data = await self._read_frame(peer.reader)
                if subject in (_HELLO, _WELCOME):
                    continue
                self._local.deliver(subject, data)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        finally:
            self._drop(peer)

    def _drop(self, peer: _Peer) -> None:
        self._links.discard(peer)
        if self._peers.get(peer.name) is peer:
            del self._peers[peer.name]
            replacement = next((p for p in self._links if p.name == peer.name), None)
            if replacement is not None:
                self._peers[peer.name] = replacement
        try:
            peer.writer.close()
        except Exception:
            pass

    @staticmethod
    def _frame(subject: str, data: bytes) -> bytes:
        s = subject.encode()
        return _HEADER.pack(len(s) + len(data), len(s)) + s + data

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            os.unlink(self._registry_file(self.name))
        except OSError:
            pass
        if self._server is not None:
            self._server.close()
        for peer in list(self._links):
            if peer.task is not None:
                peer.task.cancel()
            self._drop(peer)

    async def subscribe(self, subject: str, callback: Callback) -> Subscription:
        self._local._add(subject, callback)
        return _LocalSubscription(self._local, subject, callback)

    async def publish(self, subject: str, data: bytes) -> None:
        self._local.deliver(subject, data)
        if not self._peers:
            return
        frame = self._frame(subject, data)
        slow = []
        for peer in list(self._peers.values()):
            try:
                peer.writer.write(frame)
            except Exception:
                self._drop(peer)
                continue
            transport = peer.writer.transport
            if transport is not None and transport.get_write_buffer_size() > _HIGH_WATER:
                slow.append(peer)
        for peer in slow:  # back-pressure: the publisher waits for a peer that is behind
            try:
                await asyncio.wait_for(peer.writer.drain(), _DRAIN_TIMEOUT)
            except Exception:
                log.warning("bus peer %s does not read: dropping the link", peer.name)
                self._drop(peer)

    def check(self) -> None:
        if not self._started:
            raise RuntimeError("bus not started")

    @property
    def peer_names(self) -> list[str]:
        return sorted(self._peers)


# --------------------------------------------------------------------------- NATS


class _NatsSubscription(Subscription):
    __slots__ = ("_sub",)

    def __init__(self, sub):
        self._sub = sub

    async def unsubscribe(self) -> None:
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception:  # the connection is gone: so is the subscription
                pass


CONNECT_TIMEOUT = 5.0


class NatsBus(Bus):
    """NATS through nats-py; reconnects by itself (messages published meanwhile are buffered by
    the client up to its limit)."""

    def __init__(self, url: str, name: str = "mender-deviceconnect"):
        self.url = url
        self.name = name
        self._nc = None

    async def start(self) -> None:
        if self._nc is not None:
            return
        import nats
        # once connected the client reconnects for ever; the first connection is bounded (nats-py
        # would otherwise retry it for ever too, and the handshake waiting for it with it)
        self._nc = await asyncio.wait_for(
            nats.connect(servers=[self.url], name=self.name, allow_reconnect=True, max_reconnect_attempts=-1,
                         reconnect_time_wait=1, connect_timeout=3, error_cb=self._error,
                         pending_size=64 * 1024 * 1024), CONNECT_TIMEOUT)

    async def _error(self, exc: Exception) -> None:
        log.warning("nats: %r", exc)

    async def close(self) -> None:
        if self._nc is not None:
            nc, self._nc = self._nc, None
            try:
                await nc.drain()
            except Exception:
                await nc.close()

    async def subscribe(self, subject: str, callback: Callback) -> Subscription:
        async def handler(msg) -> None:
            try:
                callback(msg.data)
            except Exception:
                log.exception("bus subscriber failed on %s", subject)

        sub = await self._nc.subscribe(subject, cb=handler, pending_bytes_limit=16 * 1024 * 1024)
        # a round trip: once the server has the subscription, another host's publish reaches it
        await self._nc.flush(timeout=5)
        return _NatsSubscription(sub)

    async def publish(self, subject: str, data: bytes) -> None:
        await self._nc.publish(subject, data)

    def check(self) -> None:
        if self._nc is None or not self._nc.is_connected:
            raise RuntimeError("NATS not connected")


def make_bus(config) -> Bus:
    """The bus the configuration names."""
    url = config["DEVICECONNECT_NATS_URI"]
    if url:
        return NatsBus(url)
    return EmbeddedBus(os.path.join(config.data_dir, "deviceconnect-bus"))
