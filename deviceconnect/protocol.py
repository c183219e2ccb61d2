"""Mender's remote-access message protocol: `ProtoMsg`, a msgpack map `{"hdr": {...}, "body": bin}`.

The header carries the protocol (`proto`: shell, file transfer, port forward, Mender client,
control), the message type (`typ`), the session id (`sid`) and properties (`props`). Devices
(mender-connect, Go) read some properties with strict type assertions — `offset` must be an int64,
a shell `status` an int64 — so this module encodes integers as Go does (int64 by default) and keeps
the original encoding of every property it relays, re-encoding only what the server changes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack

# Protocols (go-lib-micro ws.ProtoType)
PROTO_INVALID = 0
PROTO_SHELL = 1
PROTO_FILETRANSFER = 2
PROTO_PORTFORWARD = 3
PROTO_MENDERCLIENT = 4
PROTO_CONTROL = 0xFFFF
PROTOCOL_VERSION = 1

# Control message types
OPEN, ACCEPT, CLOSE, PING, PONG, ERROR = "open", "accept", "close", "ping", "pong", "error"
# Shell message types
SHELL_NEW, SHELL_STOP, SHELL_DATA, SHELL_RESIZE = "new", "stop", "shell", "resize"
SHELL_NORMAL, SHELL_ERROR = 1, 2  # the `status` property
# File transfer message types
FT_STAT, FT_FILE_INFO, FT_GET, FT_PUT, FT_CHUNK, FT_ACK = "stat", "file_info", "get_file", "put_file", "file_chunk", "ack"
# Mender client message types
CHECK_UPDATE, SEND_INVENTORY = "check-update", "send-inventory"
# Playback-only message type (recorded pause between keystrokes)
DELAY = "delay"

PROP_USER_ID = "user_id"
PROP_OFFSET = "offset"
PROP_STATUS = "status"
PROP_TERMINAL_WIDTH = "terminal_width"
PROP_TERMINAL_HEIGHT = "terminal_height"

# What each side may send, by protocol. Anything else closes the connection (1003).
OPERATOR_MAY_SEND: dict[int, frozenset[str]] = {
    PROTO_SHELL: frozenset({SHELL_NEW, SHELL_STOP, SHELL_DATA, SHELL_RESIZE, PING, PONG}),
    PROTO_FILETRANSFER: frozenset({FT_STAT, FT_GET, FT_PUT, FT_CHUNK, FT_ACK, ERROR}),
    PROTO_PORTFORWARD: frozenset({"new", "stop", "forward", "ack", ERROR}),
    PROTO_CONTROL: frozenset({OPEN, CLOSE, PING, PONG, ERROR}),
}
DEVICE_MAY_SEND: dict[int, frozenset[str]] = {
    PROTO_SHELL: frozenset({SHELL_NEW, SHELL_STOP, SHELL_DATA, SHELL_RESIZE, PING, PONG}),
    PROTO_FILETRANSFER: frozenset({FT_FILE_INFO, FT_CHUNK, FT_ACK, ERROR}),
    PROTO_PORTFORWARD: frozenset({"new", "stop", "forward", "ack", ERROR}),
    PROTO_MENDERCLIENT: frozenset({CHECK_UPDATE, SEND_INVENTORY}),
    PROTO_CONTROL: frozenset({ACCEPT, CLOSE, PING, PONG, ERROR}),
}

# WebSocket close codes (RFC 6455 section 7.4.1) used by the relay
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013

# Bounds for decoding: a header is small; the body is bounded by the message size limit.
_MAX_PROPS = 64
_MAX_STR = 4096


class ProtocolError(Exception):
    """A message that breaks the protocol; `code` is the WebSocket close code to answer with."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Int64(int):
    """An integer encoded as msgpack int64 whatever its value (Go reads `offset` as int64)."""


class UInt16(int):
    """An integer encoded as msgpack uint16 (Go's encoding of a uint16 field)."""


@dataclass(slots=True)
class ProtoMsg:
    proto: int
    typ: str = ""
    sid: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""
    # the original msgpack encoding of each property that came off the wire, re-used on encode
    raw_props: dict[str, bytes] = field(default_factory=dict, repr=False)

    def set_prop(self, name: str, value: Any) -> None:
        self.props[name] = value
        self.raw_props.pop(name, None)


def _malformed(reason: str) -> ProtocolError:
    return ProtocolError(CLOSE_INVALID, f"malformed message: {reason}")


def _read_str(unpacker: msgpack.Unpacker, what: str) -> str:
    value = unpacker.unpack()
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"{what} must be a string")
    if len(value) > _MAX_STR:
        raise _malformed(f"{what} too long")
    return value


def decode(data: bytes) -> ProtoMsg:
    """Parse one ProtoMsg; raises ProtocolError (1007) for anything that is not one."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max(len(data), 1),
                                max_str_len=_MAX_STR, max_bin_len=len(data), max_array_len=1024,
                                max_map_len=_MAX_PROPS, max_ext_len=64)
    try:
        unpacker.feed(data)
        n = unpacker.read_map_header()
        proto = None
        msg = ProtoMsg(PROTO_INVALID)
        for _ in range(n):
            key = unpacker.unpack()
            if key == "hdr":
                proto = _read_header(unpacker, data, msg)
            elif key == "body":
                body = unpacker.unpack()
                if body is None:
                    body = b""
                elif isinstance(body, str):
                    body = body.encode()
                elif not isinstance(body, bytes):
                    raise _malformed("body must be binary")
                msg.body = body
            else:
                unpacker.skip()  # unknown fields are ignored, as Go's decoder does
        if unpacker.tell() != len(data):
            raise _malformed("trailing bytes")
    except ProtocolError:
        raise
    except Exception as exc:  # any msgpack error (type, bounds, depth, truncation)
        raise _malformed(type(exc).__name__) from None
    if proto is None:
        raise _malformed("no header")
    msg.proto = proto
    return msg


def _read_header(unpacker: msgpack.Unpacker, data: bytes, msg: ProtoMsg) -> int:
    n = unpacker.read_map_header()
    proto = None
    for _ in range(n):
        key = unpacker.unpack()
        if key == "proto":
            proto = unpacker.unpack()
            if not isinstance(proto, int) or isinstance(proto, bool) or not 0 <= proto <= 0xFFFF:
                raise _malformed("proto must be a 16-bit unsigned integer")
        elif key == "typ":
            msg.typ = _read_str(unpacker, "typ")
        elif key == "sid":
            msg.sid = _read_str(unpacker, "sid")
        elif key == "props":
            _read_props(unpacker, data, msg)
        else:
            unpacker.skip()
    if proto is None:
        raise _malformed("header without proto")
    return proto


def _read_props(unpacker: msgpack.Unpacker, data: bytes, msg: ProtoMsg) -> None:
    start = unpacker.tell()
    if data[start] == 0xC0:  # nil
        unpacker.skip()
        return
    n = unpacker.read_map_header()
    for _ in range(n):
        key = unpacker.unpack()
        if not isinstance(key, str):
            raise _malformed("property names must be strings")
        begin = unpacker.tell()
        value = unpacker.unpack()
        msg.props[key] = value
        msg.raw_props[key] = data[begin:unpacker.tell()]


# --------------------------------------------------------------------------- encoding


def _pack_str(out: bytearray, s: str) -> None:
    b = s.encode()
    n = len(b)
    if n < 32:
        out.append(0xA0 | n)
    elif n < 256:
        out += b"\xd9" + bytes((n,))
    elif n < 65536:
        out += b"\xda" + struct.pack(">H", n)
    else:
        out += b"\xdb" + struct.pack(">I", n)
    out += b


def _pack_map_header(out: bytearray, n: int) -> None:
    if n < 16:
        out.append(0x80 | n)
    else:
        out += b"\xde" + struct.pack(">H", n)


def _pack_value(out: bytearray, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        out += msgpack.packb(value)
    elif isinstance(value, UInt16):
        out += b"\xcd" + struct.pack(">H", value)
    elif isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            out += b"\xd3" + struct.pack(">q", value)  # Go encodes int and int64 this way
        else:
            out += msgpack.packb(value)
    else:
        out += msgpack.packb(value, use_bin_type=True)


def encode(msg: ProtoMsg) -> bytes:
    """The msgpack encoding of a ProtoMsg, field for field as Go's encoder writes it (empty header
    fields and an empty body left out); relayed properties keep their original encoding."""
    out = bytearray()
    _pack_map_header(out, 2 if msg.body else 1)
    _pack_str(out, "hdr")
    fields = 1 + bool(msg.typ) + bool(msg.sid) + bool(msg.props)
    _pack_map_header(out, fields)
    _pack_str(out, "proto")
    out += b"\xcd" + struct.pack(">H", msg.proto)
    if msg.typ:
        _pack_str(out, "typ")
        _pack_str(out, msg.typ)
    if msg.sid:
        _pack_str(out, "sid")
        _pack_str(out, msg.sid)
    if msg.props:
        _pack_str(out, "props")
        _pack_map_header(out, len(msg.props))
        for key, value in msg.props.items():
            _pack_str(out, key)
            raw = msg.raw_props.get(key)
            if raw is not None:
                out += raw
            else:
                _pack_value(out, value)
    if msg.body:
        _pack_str(out, "body")
        n = len(msg.body)
        if n < 256:
            out += b"\xc4" + bytes((n,))
        elif n < 65536:
            out += b"\xc5" + struct.pack(">H", n)
        else:
            out += b"\xc6" + struct.pack(">I", n)
        out += msg.body
    return bytes(out)


def pack_body(value: dict) -> bytes:
    """A msgpack body (open, accept, error, file info...), as Go encodes those structs."""
    out = bytearray()
    _pack_map_header(out, len(value))
    for key, item in value.items():
        _pack_str(out, key)
        _pack_value(out, item)
    return bytes(out)


def unpack_body(body: bytes) -> dict:
    """A msgpack map body; ProtocolError (1007) if it is not one."""
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False, max_str_len=_MAX_STR,
                                max_bin_len=len(body), max_array_len=64, max_map_len=_MAX_PROPS,
                                max_ext_len=64, timestamp=3)
    except Exception as exc:
        raise _malformed(f"body: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise _malformed("body must be a map")
    return value


def error_body(message: str, *, close: bool = False, code: int = 0, proto: int = 0, typ: str = "") -> bytes:
    """The body of a control `error` message (go-lib-micro ws.Error)."""
    fields: dict[str, Any] = {"err": message, "close": close}
    if code:
        fields["code"] = code
    if proto:
        fields["msgproto"] = UInt16(proto)
    if typ:
        fields["msgtype"] = typ
    return pack_body(fields)


def check_allowed(msg: ProtoMsg, table: dict[int, frozenset[str]]) -> None:
    """ProtocolError (1003) unless the table lets this side send this protocol and message type."""
    allowed = table.get(msg.proto)
    if allowed is None:
        raise ProtocolError(CLOSE_UNSUPPORTED, f"unsupported protocol 0x{msg.proto:04x}")
    if msg.typ not in allowed:
        raise ProtocolError(CLOSE_UNSUPPORTED, f"unsupported message type {msg.typ!r} for protocol 0x{msg.proto:04x}")
