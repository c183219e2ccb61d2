"""What travels on the bus between the holder of an operator session and the holder of a device
socket: ProtoMsg frames (with the session they belong to, so the receiver need not decode them)
and a few commands. Only this server's processes publish on these subjects."""

from __future__ import annotations

import struct

FRAMES = 1  # to a device: frames of session `sid` (`end`: the session ends with them); to a session: device frames
CLOSE = 2  # to a device: close the socket with `code`, `reason`
SUPERSEDE = 3  # to a device: a newer connection `conn_id` of this device exists
GONE = 4  # to a session: the device went away (`reason`)

END = 1  # flag of FRAMES

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def frames(sid: str, items: list[bytes], end: bool = False) -> bytes:
    s = sid.encode()
    out = bytearray((FRAMES, END if end else 0))
    out += _U16.pack(len(s)) + s
    for item in items:
        out += _U32.pack(len(item)) + item
    return bytes(out)


def frame(sid: str, item: bytes) -> bytes:
    s = sid.encode()
    return bytes((FRAMES, 0)) + _U16.pack(len(s)) + s + _U32.pack(len(item)) + item


def close(code: int, reason: str) -> bytes:
    return bytes((CLOSE,)) + _U16.pack(code) + reason.encode()[:120]


def supersede(conn_id: str) -> bytes:
    return bytes((SUPERSEDE,)) + conn_id.encode()


def gone(reason: str) -> bytes:
    return bytes((GONE,)) + reason.encode()[:120]


def parse_frames(data: bytes) -> tuple[str, bool, list[bytes]]:
    """(sid, end, frames) of a FRAMES envelope."""
    end = bool(data[1] & END)
    (n,) = _U16.unpack_from(data, 2)
    pos = 4 + n
    sid = data[4:pos].decode()
    items = []
    size = len(data)
    while pos < size:
        (length,) = _U32.unpack_from(data, pos)
        pos += 4
        items.append(data[pos:pos + length])
        pos += length
    return sid, end, items


def parse_close(data: bytes) -> tuple[int, str]:
    (code,) = _U16.unpack_from(data, 1)
    return code, data[3:].decode(errors="replace")


def parse_text(data: bytes) -> str:
    return data[1:].decode(errors="replace")
