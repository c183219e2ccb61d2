"""The ProtoMsg codec: Go's encoding in and out, relayed properties kept byte for byte, and every
malformed input refused with 1007 (never another exception)."""

from __future__ import annotations

import os
import random
import struct

import msgpack
import pytest

from deviceconnect import protocol as p


def go_frame(proto: int, typ: str, sid: str, props: bytes | None, body: bytes | None) -> bytes:
    """A frame as vmihailenco/msgpack encodes ws.ProtoMsg (uint16 proto, omitempty fields)."""
    hdr = [(b"proto", b"\xcd" + struct.pack(">H", proto))]
    if typ:
        hdr.append((b"typ", msgpack.packb(typ)))
    if sid:
        hdr.append((b"sid", msgpack.packb(sid)))
    if props is not None:
        hdr.append((b"props", props))
    out = bytes([0x80 | (2 if body else 1)]) + msgpack.packb("hdr") + bytes([0x80 | len(hdr)])
    for key, value in hdr:
        out += msgpack.packb(key.decode()) + value
    if body:
        out += msgpack.packb("body") + msgpack.packb(body, use_bin_type=True)
    return out


def test_decodes_what_go_encodes_and_encodes_it_back_identically():
    props = b"\x82" + msgpack.packb("offset") + b"\xd3" + struct.pack(">q", 4096) + \
        msgpack.packb("status") + b"\xd3" + struct.pack(">q", 1)
    raw = go_frame(p.PROTO_FILETRANSFER, "file_chunk", "sess-1", props, b"data")
    msg = p.decode(raw)
    assert (msg.proto, msg.typ, msg.sid, msg.body) == (p.PROTO_FILETRANSFER, "file_chunk", "sess-1", b"data")
    assert msg.props == {"offset": 4096, "status": 1}
    assert p.encode(msg) == raw


def test_relayed_properties_keep_their_encoding_and_stamped_ones_are_go_ints():
    props = b"\x82" + msgpack.packb("terminal_width") + b"\xcd\x00\x50" + msgpack.packb("x") + b"\x05"
    msg = p.decode(go_frame(p.PROTO_SHELL, "new", "", props, None))
    msg.sid = "server-sid"
    msg.set_prop("user_id", "u-1")
    msg.set_prop("count", 7)
    out = msgpack.unpackb(p.encode(msg))
    assert out == {"hdr": {"proto": 1, "typ": "new", "sid": "server-sid",
                           "props": {"terminal_width": 80, "x": 5, "user_id": "u-1", "count": 7}}}
    encoded = p.encode(msg)
    assert b"\xcd\x00\x50" in encoded  # kept as the client sent it
    assert msgpack.packb("count") + b"\xd3" + struct.pack(">q", 7) in encoded  # Go reads ints as int64
    assert p.encode(p.ProtoMsg(p.PROTO_FILETRANSFER, "ack", "s", {"offset": p.Int64(3)})).endswith(
        b"\xd3" + struct.pack(">q", 3))


def test_empty_fields_are_left_out_and_bodies_of_every_size_round_trip():
    assert msgpack.unpackb(p.encode(p.ProtoMsg(p.PROTO_CONTROL, "ping"))) == {"hdr": {"proto": 0xFFFF, "typ": "ping"}}
    for size in (1, 255, 256, 65535, 65536, 70000):
        body = os.urandom(size)
        assert p.decode(p.encode(p.ProtoMsg(p.PROTO_SHELL, "shell", "s", {}, body))).body == body


def test_bodies_and_error_bodies():
    assert p.unpack_body(p.pack_body({"versions": [1]})) == {"versions": [1]}
    err = p.unpack_body(p.error_body("boom", close=True, code=404, proto=p.PROTO_SHELL, typ="new"))
    assert err == {"err": "boom", "close": True, "code": 404, "msgproto": 1, "msgtype": "new"}
    with pytest.raises(p.ProtocolError):
        p.unpack_body(b"\x01")


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b"\x01", "not a map"),
    (msgpack.packb({"body": b"x"}), "no header"),
    (msgpack.packb({"hdr": {"typ": "x"}}), "no proto"),
    (msgpack.packb({"hdr": {"proto": -1}}), "negative proto"),
    (msgpack.packb({"hdr": {"proto": 70000}}), "proto too large"),
    (msgpack.packb({"hdr": {"proto": True}}), "boolean proto"),
    (msgpack.packb({"hdr": {"proto": 1, "typ": 5}}), "typ not a string"),
    (msgpack.packb({"hdr": {"proto": 1, "sid": ["a"]}}), "sid not a string"),
    (msgpack.packb({"hdr": {"proto": 1, "props": {1: 2}}}), "non-string property name"),
    (msgpack.packb({"hdr": {"proto": 1, "props": [1]}}), "props not a map"),
    (msgpack.packb({"hdr": {"proto": 1}, "body": 5}), "body not binary"),
    (msgpack.packb({"hdr": {"proto": 1}}) + b"\x00", "trailing bytes"),
    (msgpack.packb({"hdr": {"proto": 1}})[:-1], "truncated"),
    (b"\x81\xa3hdr\x81\xa5proto" + b"\x91" * 5000 + b"\x01", "deep nesting"),
])
def test_malformed_messages_are_protocol_errors(raw, reason):
    with pytest.raises(p.ProtocolError) as exc:
        p.decode(raw)
    assert exc.value.code == p.CLOSE_INVALID


def test_random_and_mutated_input_never_escapes_as_another_exception():
    rng = random.Random(1234)
    good = p.encode(p.ProtoMsg(p.PROTO_SHELL, "shell", "sid", {"status": 1, "user_id": "u"}, b"hello"))
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for candidate in (bytes(data), os.urandom(rng.randint(0, 64)), bytes(data[:rng.randrange(len(data))])):
            try:
                p.decode(candidate)
            except p.ProtocolError as exc:
                assert exc.code == p.CLOSE_INVALID


def test_who_may_send_what():
    p.check_allowed(p.ProtoMsg(p.PROTO_SHELL, "new"), p.OPERATOR_MAY_SEND)
    p.check_allowed(p.ProtoMsg(p.PROTO_MENDERCLIENT, "check-update"), p.DEVICE_MAY_SEND)
    for msg, table in ((p.ProtoMsg(p.PROTO_MENDERCLIENT, "check-update"), p.OPERATOR_MAY_SEND),
                       (p.ProtoMsg(0x1234, "x"), p.DEVICE_MAY_SEND),
                       (p.ProtoMsg(p.PROTO_SHELL, "format-disk"), p.OPERATOR_MAY_SEND),
                       (p.ProtoMsg(p.PROTO_CONTROL, "open"), p.DEVICE_MAY_SEND),
                       (p.ProtoMsg(p.PROTO_FILETRANSFER, "file_info"), p.OPERATOR_MAY_SEND)):
        with pytest.raises(p.ProtocolError) as exc:
            p.check_allowed(msg, table)
        assert exc.value.code == p.CLOSE_UNSUPPORTED
