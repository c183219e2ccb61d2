"""Terminal session recordings: what the device's shell printed, with the pauses and the terminal
size, stored in compressed chunks and played back as Mender's playback messages.

A chunk is zlib-compressed msgpack: a list of events `[0, output bytes]`, `[1, pause in ms]`,
`[2, width, height]`. A pause is recorded where the output stopped for 1.5 s or more (as Mender;
at most 65.535 s). Chunks are written when 32 KiB of output are buffered, every few seconds while
a session is active, and when it ends; the total output recorded per session is bounded by
`DEVICECONNECT_RECORDING_LIMIT` (the session ends when it is reached, as Mender's does).
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING, Iterator

import msgpack

from deviceconnect import protocol as p

if TYPE_CHECKING:
    from deviceconnect.hub import Hub
    from deviceconnect.model import Session

log = logging.getLogger("mender.deviceconnect")

OUTPUT, DELAY, RESIZE = 0, 1, 2
PAUSE_THRESHOLD = 1.5  # seconds
MAX_PAUSE_MS = 65535
FLUSH_BYTES = 32 * 1024
MAX_CHUNK_BYTES = 4 * 1024 * 1024  # decompressed size a chunk may reach at playback (a bound, not a target)


def encode_chunk(events: list) -> bytes:
    return zlib.compress(msgpack.packb(events, use_bin_type=True), 6)


def decode_chunk(chunk: bytes) -> list:
    inflater = zlib.decompressobj()
    raw = inflater.decompress(chunk, MAX_CHUNK_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError("recording chunk too large")
    events = msgpack.unpackb(raw, raw=False)
    if not isinstance(events, list):
        raise ValueError("recording chunk is not a list")
    return events


class Recorder:
    """Buffers one session's terminal output on the event loop and writes chunks through the
    hub's thread pool, one at a time and in order."""

    __slots__ = ("hub", "session", "limit", "recorded", "events", "buffered", "seq", "last_output", "_flushing",
                 "_lock", "full")

    def __init__(self, hub: "Hub", session: "Session"):
        self.hub = hub
        self.session = session
        self.limit = hub.config["DEVICECONNECT_RECORDING_LIMIT"]
        self.recorded = 0
        self.events: list = []
        self.buffered = 0
        self.seq = 0
        self.last_output: float | None = None
        self._flushing: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None
        self.full = False

    def output(self, data: bytes, now: float) -> bool:
        """Record shell output; False once the session's limit is reached (nothing more is kept)."""
        if self.full or self.recorded + len(data) > self.limit:
            self.full = True
            return False
        events = self.events
        if self.last_output is not None and now - self.last_output >= PAUSE_THRESHOLD:
            events.append([DELAY, min(int((now - self.last_output) * 1000), MAX_PAUSE_MS)])
        self.last_output = now
        if events and events[-1][0] == OUTPUT:  # output without a pause: one event (mender-connect sends 255 bytes a message)
            events[-1][1] += data
        else:
            events.append([OUTPUT, bytearray(data)])
        self.recorded += len(data)
        self.buffered += len(data)
        if self.buffered >= FLUSH_BYTES:
            self.flush_soon()
        return True

    def resize(self, width, height) -> None:
        if isinstance(width, int) and isinstance(height, int) and 0 < width < 65536 and 0 < height < 65536:
            self.events.append([RESIZE, width, height])

    @property
    def dirty(self) -> bool:
        return bool(self.events) and self.recorded > 0

    def flush_soon(self) -> None:
        if self.events and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self.flush())

    async def flush(self) -> None:
        """Write what is buffered (in order with earlier flushes)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with self._lock:
                if not self.events or not self.recorded:
                    return
                events, self.events, self.buffered = self.events, [], 0
                seq, self.seq = self.seq, self.seq + 1
                chunk = encode_chunk(events)
                try:
                    await self.hub.run(self.hub.service.append_recording, self.session, seq, chunk)
                except Exception:
                    log.exception("could not store a recording chunk of session %s", self.session.id)
        finally:
            if self._flushing is asyncio.current_task():
                self._flushing = None


def playback_messages(chunks: Iterator[bytes], session_id: str) -> Iterator[bytes]:
    """The ProtoMsg frames that replay a recording, as Mender's playback sends them: shell output,
    `delay` messages (property `delay_value`, in ms) and `resize` messages."""
    for chunk in chunks:
        for event in decode_chunk(chunk):
            kind = event[0]
            if kind == OUTPUT:
                data = event[1]
                for start in range(0, len(data), 32 * 1024):
                    yield p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, session_id, {}, data[start:start + 32 * 1024]))
            elif kind == DELAY:
                yield p.encode(p.ProtoMsg(p.PROTO_SHELL, p.DELAY, session_id, {"delay_value": p.UInt16(event[1])}))
            elif kind == RESIZE:
                yield p.encode(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_RESIZE, session_id,
                                          {p.PROP_TERMINAL_WIDTH: p.UInt16(event[1]),
                                           p.PROP_TERMINAL_HEIGHT: p.UInt16(event[2])}))
