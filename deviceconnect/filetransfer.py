"""File upload to and download from a device over its deviceconnect connection, for the HTTP API.

Runs in the request's thread: frames go to the device through the bus (the device's socket may be
in another process), the device's answers come back through a queue. The protocol is mender-
connect's: a session handshake (`open` → `accept` listing the file-transfer protocol), then
`stat` + `get_file` (the device streams 4 KiB `file_chunk`s with their offsets and waits for an
`ack` every 10) or `put_file` (the server streams chunks and keeps at most 20 unacknowledged).
Sizes are bounded by `DEVICECONNECT_FILE_TRANSFER_MAX_SIZE` while streaming; a device silent for
`DEVICECONNECT_FILE_TRANSFER_TIMEOUT_SECONDS` fails the transfer.
"""

from __future__ import annotations

import queue
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

from common.errors import Conflict, ServiceError, TooLarge
from deviceconnect import envelope
from deviceconnect import protocol as p
from deviceconnect.bus import device_subject, session_subject

CHUNK = 4096  # mender-connect's buffer size; a chunk and its header stay under its 8 KiB read limit
ACK_EVERY = 10  # download: acknowledge every this many chunks (mender-connect sends 20 before waiting)
WINDOW = 20 * CHUNK  # upload: bytes sent ahead of the device's acknowledgements
_QUEUE_LIMIT = 256


class Timeout(ServiceError):
    status = 408
    default_message = "file transfer timed out"


class BadGateway(ServiceError):
    status = 502
    default_message = "bad answer from the device"


class DeviceError(ServiceError):
    """The device refused or failed (its message; the status it gave, 400 otherwise)."""

    status = 400

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        if 400 <= status < 600:
            self.status = status


@dataclass(slots=True)
class FileInfo:
    path: str
    size: int | None
    uid: int | None
    gid: int | None
    mode: int | None


class Channel:
    """One file-transfer session with a device, used from a thread."""

    def __init__(self, hub, tenant: str, device_id: str, user_id: str, timeout: float):
        self.hub = hub
        self.tenant, self.device_id, self.user_id = tenant, device_id, user_id
        self.timeout = timeout
        self.sid = str(uuid.uuid4())
        self._subject = device_subject(tenant, device_id)
        self._inbox: queue.Queue = queue.Queue()
        self._subscription = None
        self._overflow = False

    def __enter__(self) -> "Channel":
        hub = self.hub
        hub.ensure_started()
        self._subscription = hub.submit(hub.bus.subscribe(session_subject(self.tenant, self.sid), self._on_bus)).result(10)
        return self

    def __exit__(self, *exc) -> None:
        hub = self.hub
        try:
            close = p.encode(p.ProtoMsg(p.PROTO_CONTROL, p.CLOSE, self.sid, {p.PROP_USER_ID: self.user_id}))
            hub.publish_sync(self._subject, envelope.frames(self.sid, [close], end=True))
        except Exception:
            pass
        if self._subscription is not None:
            try:
                hub.submit(self._subscription.unsubscribe()).result(10)
            except Exception:
                pass

    def _on_bus(self, data: bytes) -> None:  # on the hub's loop
        if data[0] == envelope.GONE:
            self._inbox.put(None)
            return
        if data[0] != envelope.FRAMES:
            return
        for item in envelope.parse_frames(data)[2]:
            if self._inbox.qsize() >= _QUEUE_LIMIT:  # the device ignores the window: fail the transfer
                self._overflow = True
                self._inbox.put(None)
                return
            self._inbox.put(item)

    # ------------------------------------------------------------------ primitives
    def send(self, proto: int, typ: str, body: bytes = b"", props: dict | None = None) -> None:
        props = dict(props or {})
        props[p.PROP_USER_ID] = self.user_id
        frame = p.encode(p.ProtoMsg(proto, typ, self.sid, props, body))
        self.hub.publish_sync(self._subject, envelope.frame(self.sid, frame))

    def receive(self) -> p.ProtoMsg:
        """The next file-transfer message from the device (pings answered here); Timeout, or
        Conflict when the device went away."""
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout()
            try:
                item = self._inbox.get(timeout=remaining)
            except queue.Empty:
                raise Timeout() from None
            if item is None:
                if self._overflow:
                    raise BadGateway("the device sent more than the transfer window")
                raise Conflict("device disconnected")
            msg = p.decode(item)
            if msg.proto == p.PROTO_CONTROL:
                if msg.typ == p.PING:
                    self.send(p.PROTO_CONTROL, p.PONG)
                    continue
                if msg.typ == p.PONG:
                    continue
                if msg.typ == p.ERROR:
                    self._raise_error(msg)
                if msg.typ == p.CLOSE:
                    raise BadGateway("the device closed the session")
            if msg.proto == p.PROTO_FILETRANSFER and msg.typ == p.ERROR:
                self._raise_error(msg)
            return msg

    @staticmethod
    def _raise_error(msg: p.ProtoMsg) -> None:
        try:
            body = p.unpack_body(msg.body)
        except p.ProtocolError:
            body = {}
        message = body.get("err") if isinstance(body.get("err"), str) else "the device refused the transfer"
        code = body.get("code") if isinstance(body.get("code"), int) else 0
        raise DeviceError(f"error from the device: {message}", code)

    def handshake(self) -> None:
        """Open the session; BadGateway when the device does not do file transfer."""
        self.send(p.PROTO_CONTROL, p.OPEN, p.pack_body({"versions": [p.PROTOCOL_VERSION]}))
        msg = self.receive()
        if msg.proto != p.PROTO_CONTROL or msg.typ != p.ACCEPT:
            raise BadGateway("file transfer not implemented on the device")
        accept = p.unpack_body(msg.body)
        if p.PROTO_FILETRANSFER not in (accept.get("protocols") or []):
            raise BadGateway("file transfer disabled on the device")

    # ------------------------------------------------------------------ download
    def stat(self, path: str) -> FileInfo:
        self.send(p.PROTO_FILETRANSFER, p.FT_STAT, p.pack_body({"path": path}))
        msg = self.receive()
        if msg.proto != p.PROTO_FILETRANSFER or msg.typ != p.FT_FILE_INFO:
            raise BadGateway(f"unexpected answer from the device: {msg.typ!r}")
        info = p.unpack_body(msg.body)

        def integer(name):
            value = info.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        return FileInfo(info.get("path") if isinstance(info.get("path"), str) else path, integer("size"),
                        integer("uid"), integer("gid"), integer("mode"))

    def download(self, path: str, limit: int) -> Iterator[bytes]:
        """The file's bytes as the device sends them; stops (TooLarge) past `limit`."""
        self.send(p.PROTO_FILETRANSFER, p.FT_GET, p.pack_body({"path": path}))
        offset = 0
        unacked = 0
        while True:
            msg = self.receive()
            if msg.proto != p.PROTO_FILETRANSFER or msg.typ != p.FT_CHUNK:
                raise BadGateway(f"unexpected message from the device during download: {msg.typ!r}")
            if not msg.body:  # end of file
                self.send(p.PROTO_FILETRANSFER, p.FT_ACK, props={p.PROP_OFFSET: p.Int64(offset)})
                return
            if msg.props.get(p.PROP_OFFSET) != offset:
                raise BadGateway("wrong chunk offset from the device")
            offset += len(msg.body)
            if offset > limit:
                raise TooLarge(f"the file is larger than the transfer limit ({limit} bytes)")
            yield msg.body
            unacked += 1
            if unacked >= ACK_EVERY:
                unacked = 0
                self.send(p.PROTO_FILETRANSFER, p.FT_ACK, props={p.PROP_OFFSET: p.Int64(offset)})

    # ------------------------------------------------------------------ upload
    def upload(self, request: dict, chunks: Iterator[bytes], limit: int) -> int:
        """Send `put_file` and the file; returns its size once the device has acknowledged all of it."""
        self.send(p.PROTO_FILETRANSFER, p.FT_PUT, p.pack_body(request))
        msg = self.receive()
        if msg.proto != p.PROTO_FILETRANSFER or msg.typ != p.FT_ACK:
            raise BadGateway(f"unexpected answer to put_file: {msg.typ!r}")
        offset = 0
        acked = 0
        for data in _rechunk(chunks):
            if offset + len(data) > limit:
                self._abort("file too large")
                raise TooLarge(f"the file is larger than the transfer limit ({limit} bytes)")
            self.send(p.PROTO_FILETRANSFER, p.FT_CHUNK, data, {p.PROP_OFFSET: p.Int64(offset)})
            offset += len(data)
            while offset - acked > WINDOW:
                acked = max(acked, self._ack())
        self.send(p.PROTO_FILETRANSFER, p.FT_CHUNK, b"", {p.PROP_OFFSET: p.Int64(offset)})
        while True:  # the device acknowledges the end-of-file chunk with its offset (the file's size)
            acked = self._ack()
            if acked >= offset:
                return offset

    def _ack(self) -> int:
        msg = self.receive()
        if msg.proto != p.PROTO_FILETRANSFER or msg.typ != p.FT_ACK:
            raise BadGateway(f"unexpected message from the device during upload: {msg.typ!r}")
        value = msg.props.get(p.PROP_OFFSET)
        if not isinstance(value, int):
            raise BadGateway("acknowledgement without an offset")
        return value

    def _abort(self, reason: str) -> None:
        try:
            self.send(p.PROTO_FILETRANSFER, p.ERROR, p.pack_body({"err": reason, "msgtype": p.FT_CHUNK}))
        except Exception:
            pass


def _rechunk(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Pieces of exactly CHUNK bytes (the last one shorter)."""
    pending = bytearray()
    for data in chunks:
        pending += data
        while len(pending) >= CHUNK:
            yield bytes(pending[:CHUNK])
            del pending[:CHUNK]
    if pending:
        yield bytes(pending)


# Go's os.FileMode keeps the file type in its high bits (mender-connect sends uint32(stat.Mode())):
# ModeDir, ModeSymlink, ModeDevice, ModeNamedPipe, ModeSocket, ModeCharDevice, ModeIrregular
_GO_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)


def is_regular(mode: int | None) -> bool:
    """Whether a mode from the device (Go's os.FileMode bits) is a regular file's."""
    return mode is not None and mode & _GO_MODE_TYPE == 0
