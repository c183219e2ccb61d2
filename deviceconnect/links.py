"""The sockets one process holds: a device's (`DeviceLink`) and an operator session's
(`OperatorLink`), each a read loop that checks every message and an ordered, bounded write queue
fed by the bus. Runs on the event loop; anything blocking goes through `hub.run`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from common.permissions import route_key
from deviceconnect import OPERATOR_CONNECT, PLAYBACK, envelope
from deviceconnect import protocol as p
from deviceconnect.bus import device_subject, session_subject
from deviceconnect.recording import Recorder

if TYPE_CHECKING:
    from deviceconnect.hub import Hub
    from deviceconnect.model import Session

log = logging.getLogger("mender.deviceconnect")

# mender-connect reads at most 8 KiB per message (its websocket read limit): larger frames would
# make it drop its connection, and every session with it
DEVICE_READ_LIMIT = 8192
MAX_SESSIONS_PER_DEVICE = 256  # sessions a device socket keeps track of (mender-connect's shells: 16)
QUEUE_LIMIT = 4 * 1024 * 1024  # bytes waiting for a slow reader before its socket is closed (1013)
OPERATOR_CONNECT_KEY = route_key("GET", OPERATOR_CONNECT)
PLAYBACK_KEY = route_key("GET", PLAYBACK)


class WebSocket:
    """An accepted ASGI websocket: binary messages in and out, pings where the server can send
    them (extension `websocket.ping`, common.asgi_worker), one close."""

    __slots__ = ("_receive", "_send", "closed", "pingable", "heard", "pinged")

    def __init__(self, receive, send, pingable: bool = False):
        self._receive, self._send = receive, send
        self.closed = False
        self.pingable = pingable
        self.heard = self.pinged = time.monotonic()  # the peer's last message or pong; our last ping

    async def receive(self) -> bytes | str | None:
        """The next message (bytes, or str for a text frame); None once the peer is gone."""
        while True:
            message = await self._receive()
            kind = message["type"]
            self.heard = time.monotonic()
            if kind == "websocket.receive":
                data = message.get("bytes")
                return data if data is not None else (message.get("text") or "")
            if kind != "websocket.pong":
                self.closed = True
                return None

    async def ping(self) -> None:
        self.pinged = time.monotonic()
        try:
            await self._send({"type": "websocket.ping"})
        except Exception:  # gone: the read loop finds out
            pass

    async def send(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})
        except Exception:  # already gone
            pass


class Throttle:
    """Messages per second a sender may send. Faster senders are slowed down (the reader waits,
    TCP pushes back); one that stays above the rate for `flood_seconds` is closed (1008)."""

    __slots__ = ("rate", "tokens", "stamp", "flood_since", "flood_seconds")

    def __init__(self, rate: float, flood_seconds: float, now: float):
        self.rate = max(rate, 1.0)
        self.tokens = self.rate  # a burst of one second's worth
        self.stamp = now
        self.flood_since: float | None = None
        self.flood_seconds = flood_seconds

    def delay(self, now: float) -> float:
        """Seconds to wait before handling the next message; ProtocolError for a flood."""
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.flood_since = None
            return 0.0
        if self.flood_since is None:
            self.flood_since = now
        elif now - self.flood_since > self.flood_seconds:
            raise p.ProtocolError(p.CLOSE_POLICY, "message rate limit exceeded")
        wait = (1.0 - self.tokens) / self.rate
        self.tokens -= 1.0
        return wait


class Link:
    """Ordered writes through a bounded queue and a writer task that exists only while there is
    something to write (an idle device costs no task)."""

    __slots__ = ("hub", "ws", "_queue", "_queued", "_writer", "_closing", "last_activity", "throttle", "__weakref__")

    def __init__(self, hub: "Hub", ws: WebSocket):
        self.hub = hub
        self.ws = ws
        self._queue: deque | None = None
        self._queued = 0
        self._writer: asyncio.Task | None = None
        self._closing: tuple[int, str] | None = None
        now = hub.loop.time()
        self.last_activity = now
        self.throttle = Throttle(hub.config["DEVICECONNECT_MESSAGE_RATE"], hub.config["DEVICECONNECT_FLOOD_SECONDS"], now)

    def push(self, data: bytes) -> None:
        if self._closing is not None or self.ws.closed:
            return
        if self._queued + len(data) > QUEUE_LIMIT:
            if self._queue is not None:
                self._queue.clear()
            self._queued = 0
            self.close_soon(p.CLOSE_TRY_AGAIN, "reader too slow")
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(data)
        self._queued += len(data)
        self._wake()

    def close_soon(self, code: int, reason: str) -> None:
        """Close after what is already queued (idempotent)."""
        if self._closing is None:
            self._closing = (code, reason)
            self._wake()

    def _wake(self) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                queue = self._queue
                while queue:
                    data = queue.popleft()
                    self._queued -= len(data)
                    await self.ws.send(data)
                if self._closing is not None:
                    await self.ws.close(*self._closing)
                    return
                if not self._queue:
                    return
        except Exception:  # the socket is gone; the read loop finds out and cleans up
            self.ws.closed = True
            if self._queue:
                self._queue.clear()
                self._queued = 0
        finally:
            self._writer = None

    async def read(self, limit: int) -> bytes | None:
        """The next binary message, throttled and bounded; None when the peer left.
        ProtocolError for a text frame, a message over `limit`, or a flood."""
        data = await self.ws.receive()
        if data is None:
            return None
        if isinstance(data, str):
            raise p.ProtocolError(p.CLOSE_UNSUPPORTED, "text messages are not part of the protocol")
        if len(data) > limit:
            raise p.ProtocolError(p.CLOSE_TOO_BIG, f"message larger than {limit} bytes")
        now = self.hub.loop.time()
        self.last_activity = now
        wait = self.throttle.delay(now)
        if wait:
            await asyncio.sleep(wait)
        return data

    async def fail(self, error: p.ProtocolError) -> None:
        """Close at once for a protocol violation (what is queued is dropped)."""
        if self._queue:
            self._queue.clear()
            self._queued = 0
        self._closing = (error.code, error.reason)
        if self._writer is None:
            await self.ws.close(error.code, error.reason)


class DeviceLink(Link):
    """A device's socket in this process. Frames from operator sessions arrive on the device's
    subject; frames from the device go to the subject of their session, if this device has that
    session (a device cannot reach another device's sessions)."""

    __slots__ = ("tenant", "device_id", "conn_id", "version", "sessions", "subscription", "expires", "dropped")

    def __init__(self, hub: "Hub", ws: WebSocket, tenant: str, device_id: str, conn_id: str, expires: float | None):
        super().__init__(hub, ws)
        self.tenant = tenant
        self.device_id = device_id
        self.conn_id = conn_id
        self.version = 0
        self.sessions: dict[str, None] | None = None  # ids of the sessions relayed to this device, oldest first
        self.subscription = None
        self.expires = expires
        self.dropped = 0

    def on_bus(self, data: bytes) -> None:
        kind = data[0]
        if kind == envelope.FRAMES:
            sid, end, frames = envelope.parse_frames(data)
            if end:
                if self.sessions is not None:
                    self.sessions.pop(sid, None)
            else:
                self._remember(sid)
            for item in frames:
                self.push(item)
        elif kind == envelope.CLOSE:
            self.close_soon(*envelope.parse_close(data))
        elif kind == envelope.SUPERSEDE:
            if envelope.parse_text(data) != self.conn_id:
                self.close_soon(p.CLOSE_POLICY, "replaced by a newer connection")

    def _remember(self, sid: str) -> None:
        if self.sessions is None:
            self.sessions = {}
        elif sid in self.sessions:
            return
        if len(self.sessions) >= MAX_SESSIONS_PER_DEVICE:
            self.sessions.pop(next(iter(self.sessions)))
        self.sessions[sid] = None

    async def run(self) -> None:
        limit = self.hub.config["DEVICECONNECT_MAX_MESSAGE_SIZE"]
        publish = self.hub.bus.publish
        tenant = self.tenant
        while True:
            data = await self.read(limit)
            if data is None:
                return
            msg = p.decode(data)
            if msg.proto == p.PROTO_CONTROL and msg.typ == p.OPEN:
                raise p.ProtocolError(p.CLOSE_POLICY, "a device may not open a session")
            p.check_allowed(msg, p.DEVICE_MAY_SEND)
            sessions = self.sessions
            if sessions is None or msg.sid not in sessions:
                self.dropped += 1  # a late answer to a session that ended, or none of ours
                continue
            if msg.proto == p.PROTO_CONTROL and msg.typ == p.CLOSE:
                sessions.pop(msg.sid, None)
            await publish(session_subject(tenant, msg.sid), envelope.frame(msg.sid, data))

    def gone_sessions(self) -> list[str]:
        return list(self.sessions or ())


class OperatorLink(Link):
    """One operator session: the operator's socket in this process, relayed to the device."""

    __slots__ = ("session", "identity", "token", "subscription", "shell", "types", "recorder", "device_subject",
                 "next_reauth", "end_reason")

    def __init__(self, hub: "Hub", ws: WebSocket, session: "Session", identity, token: str):
        super().__init__(hub, ws)
        self.session = session
        self.identity = identity
        self.token = token
        self.subscription = None
        self.shell = False  # a shell was started in this session
        self.types: list[str] = []
        self.recorder = Recorder(hub, session)
        self.device_subject = device_subject(session.tenant_id, session.device_id)
        self.next_reauth = hub.loop.time() + hub.recheck_seconds
        self.end_reason = ""

    def permission(self) -> tuple[str, dict[str, str]]:
        """The operation and path parameters the permission table re-decides while it is open."""
        return OPERATOR_CONNECT_KEY, {"id": self.session.device_id}

    def on_bus(self, data: bytes) -> None:
        kind = data[0]
        if kind == envelope.FRAMES:
            _, _, frames = envelope.parse_frames(data)
            self.last_activity = self.hub.loop.time()
            for item in frames:
                self._from_device(item)
        elif kind == envelope.GONE:
            reason = envelope.parse_text(data)
            if self.shell:
                self.push(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_STOP, self.session.id,
                                              {p.PROP_STATUS: p.SHELL_ERROR}, reason.encode())))
                self.shell = False
            self.end_reason = reason
            self.close_soon(p.CLOSE_NORMAL, reason)

    def _from_device(self, data: bytes) -> None:
        try:
            msg = p.decode(data)
        except p.ProtocolError:  # the device side checked it already
            return
        if msg.proto == p.PROTO_SHELL:
            if msg.typ == p.SHELL_DATA:
                if not self.recorder.output(msg.body, self.hub.loop.time()):
                    self._over_limit()
                    return
            elif msg.typ == p.SHELL_STOP:
                self.shell = False
                self.recorder.flush_soon()
        self.push(data)

    def _over_limit(self) -> None:
        """The recording is full: the session ends, as Mender's does."""
        if self._closing is not None:
            return
        message = "session byte limit exceeded"
        self.push(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, self.session.id,
                                      {p.PROP_STATUS: p.SHELL_ERROR}, message.encode())))
        self.end_reason = message
        self.close_soon(p.CLOSE_POLICY, message)

    async def run(self) -> None:
        from deviceconnect import service as s
        session = self.session
        hub = self.hub
        service = hub.service
        publish = hub.bus.publish
        user_id = self.identity.subject
        while True:
            data = await self.read(DEVICE_READ_LIMIT)
            if data is None:
                return
            msg = p.decode(data)
            p.check_allowed(msg, p.OPERATOR_MAY_SEND)
            if msg.sid and msg.sid != session.id:
                raise p.ProtocolError(p.CLOSE_POLICY, "message for another session")
            msg.sid = session.id
            msg.set_prop(p.PROP_USER_ID, user_id)
            if msg.proto == p.PROTO_SHELL:
                if msg.typ == p.SHELL_NEW:
                    await self._allow(s.OPEN_TERMINAL, "terminal")
                    self.shell = True
                    width, height = msg.props.get(p.PROP_TERMINAL_WIDTH), msg.props.get(p.PROP_TERMINAL_HEIGHT)
                    self.recorder.resize(width, height)
                elif msg.typ == p.SHELL_RESIZE:
                    self.recorder.resize(msg.props.get(p.PROP_TERMINAL_WIDTH), msg.props.get(p.PROP_TERMINAL_HEIGHT))
                elif msg.typ == p.SHELL_STOP:
                    self.shell = False
            elif msg.proto == p.PROTO_PORTFORWARD and msg.typ == "new":
                await self._allow(s.OPEN_PORT_FORWARD, "portforward")
            elif msg.proto == p.PROTO_FILETRANSFER and msg.typ in (p.FT_PUT, p.FT_GET):
                path = p.unpack_body(msg.body).get("path")
                await hub.run(service.hooks, s.UPLOAD_FILE if msg.typ == p.FT_PUT else s.DOWNLOAD_FILE,
                              session.tenant_id, user_id, session.device_id, path=path, session_id=session.id)
                if "filetransfer" not in self.types:
                    self.types.append("filetransfer")
            out = p.encode(msg)
            if len(out) > DEVICE_READ_LIMIT:
                raise p.ProtocolError(p.CLOSE_TOO_BIG, f"message larger than the device accepts ({DEVICE_READ_LIMIT} bytes)")
            await publish(self.device_subject, envelope.frame(session.id, out))

    async def _allow(self, action: str, kind: str) -> None:
        """Ask the hooks (roles) once per kind of use of the session."""
        if kind in self.types:
            return
        session = self.session
        await self.hub.run(self.hub.service.hooks, action, session.tenant_id, self.identity.subject,
                           session.device_id, session_id=session.id)
        self.types.append(kind)

    def farewell(self) -> list[bytes]:
        """What the device hears when the session ends: its shell stops, the session closes."""
        sid = self.session.id
        props: dict[str, Any] = {p.PROP_USER_ID: self.identity.subject}
        out = []
        if self.shell:
            out.append(p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_STOP, sid, dict(props, status=p.SHELL_ERROR),
                                           b"user disconnected")))
        out.append(p.encode(p.ProtoMsg(p.PROTO_CONTROL, p.CLOSE, sid, props)))
        return out


class PlaybackLink:
    """A recording's playback while it streams: what the sweeper re-decides (the operator's token,
    the permission table) as it does an operator session's, and how it is told to stop."""

    __slots__ = ("identity", "token", "session_id", "next_reauth", "end_reason", "closing", "_wake")

    def __init__(self, hub: "Hub", identity, token: str, session_id: str):
        self.identity = identity
        self.token = token
        self.session_id = session_id
        self.next_reauth = hub.loop.time() + hub.recheck_seconds
        self.end_reason = ""
        self.closing: tuple[int, str] | None = None
        self._wake = asyncio.Event()

    def permission(self) -> tuple[str, dict[str, str]]:
        return PLAYBACK_KEY, {"session_id": self.session_id}

    def close_soon(self, code: int, reason: str) -> None:
        """Stop after the message being sent (idempotent); a pause between messages ends at once."""
        if self.closing is None:
            self.closing = (code, reason)
        self._wake.set()

    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if the playback is told to stop (or its reader left)."""
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
