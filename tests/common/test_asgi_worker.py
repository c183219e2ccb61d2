"""common.asgi_worker's parser: gunicorn's pure-Python HTTP parser with its per-byte checks as
regular expressions must answer exactly as gunicorn's own loops, for every byte and for whole
requests, and the worker's protocol must use it (the checks over real HTTP: tests/common/test_asgi.py).
The worker's event loop: uvloop's, asyncio's when asked, asyncio's with a warning when uvloop is
missing (over a real gunicorn: tests/common/test_gunicorn.py)."""

import asyncio
import itertools
import logging
import random
import sys
import types

import pytest
from gunicorn.asgi.parser import ParseError, PythonProtocol
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.config import Config

from common.asgi_worker import _Parser, _Protocol, event_loop

_BYTES = [bytes([b]) for b in range(256)]


def _samples():
    """Every byte, every pair of bytes, and longer values: tokens, a bearer token, with one byte
    of every value put at the start, the middle and the end."""
    yield b""
    yield from _BYTES
    yield from (a + b for a, b in itertools.product(_BYTES, repeat=2))
    rng = random.Random(21)
    bearer = b"Bearer eyJ" + bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_.") for _ in range(417))
    for base in (bearer, b"application/json", b"X-MEN-RequestID", b"gzip, deflate\tbr"):
        yield base
        for byte in _BYTES:
            yield byte + base
            yield base[:len(base) // 2] + byte + base[len(base) // 2:]
            yield base + byte
    for _ in range(2000):
        yield bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))


def test_token_and_value_checks_answer_as_gunicorns_loops():
    checked = 0
    for data in _samples():
        assert _Parser._is_valid_token(None, data) is PythonProtocol._is_valid_token(None, data), data
        assert (_Parser._has_invalid_header_chars(None, data)
                is PythonProtocol._has_invalid_header_chars(None, data)), data
        checked += 1
    assert checked > 65536


def _parse(cls, raw: bytes):
    """What a parser makes of `raw`: its method, path and headers, or the error it raises."""
    parser = cls(on_headers_complete=lambda: False)
    try:
        parser.feed(raw)
    except ParseError as exc:
        return type(exc), str(exc)
    return parser.method, parser.path, parser.headers, parser.content_length, parser.is_complete


@pytest.mark.parametrize("raw", [
    b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /api/devices/v2/deployments/device/deployments/next HTTP/1.1\r\nHost: a\r\n"
    b"Authorization: Bearer " + b"e" * 420 + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n",          # a control character in a value
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Del: a\x7f\r\n\r\n",            # DEL
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Tab: a\tb\r\n\r\n",             # HTAB is allowed
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xe9\r\n\r\n",          # obs-text is allowed
    b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",             # a space in a name
    b"GET / HTTP/1.1\r\nHost: a\r\nX(y): x\r\n\r\n",                 # a delimiter in a name
    b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",                     # an empty name
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",  # space before the colon
    b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n",                            # a method that is no token
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",                            # lowercase method
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Nul: \x00\r\n\r\n",
])
def test_whole_requests_parse_as_with_gunicorns_parser(raw):
    assert _parse(_Parser, raw) == _parse(PythonProtocol, raw)


def test_the_worker_protocol_parses_with_it():
    protocol = _Protocol.__new__(_Protocol)  # only what choosing the parser reads
    protocol.cfg = Config()
    protocol._setup_callback_parser()
    if ASGIProtocol._check_h1c_protocol_available():  # gunicorn's C parser, when installed, is kept
        assert type(protocol._callback_parser) is ASGIProtocol._h1c_protocol_class
    else:
        assert type(protocol._callback_parser) is _Parser
        with pytest.raises(ParseError):
            protocol._callback_parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n")


def _outcome(cls, raw: bytes, splits: list[int], limits: dict):
    """Everything a parser of `cls` makes of `raw` fed in pieces cut at `splits`: the request's
    fields, the callbacks' calls and the bytes left, or the first error (type and message) and
    the piece that raised it."""
    calls = []
    parser = cls(on_header=lambda n, v: calls.append(("header", n, v)),
                 on_headers_complete=lambda: calls.append("headers") and False,
                 on_body=lambda chunk: calls.append(("body", chunk)),
                 on_message_complete=lambda: calls.append("complete"), **limits)
    edges = [0] + sorted(splits) + [len(raw)]
    for index, (start, stop) in enumerate(zip(edges, edges[1:])):
        try:
            parser.feed(raw[start:stop])
        except ParseError as exc:
            return "error", index, type(exc), str(exc), calls
    return (parser.method, parser.path, parser.http_version, parser.headers, parser.content_length,
            parser.is_chunked, parser.should_keep_alive, parser.is_complete, parser.remaining(), calls,
            parser._header_count)


def _header_lines(rng: random.Random) -> list[bytes]:
    names = [b"Host", b"Authorization", b"Content-Type", b"Content-Length", b"Accept", b"X-MEN-RequestID",
             b"Connection", b"Transfer-Encoding", b"User-Agent", b"x", b"A-B_C.d~e!f"]
    values = [b"a", b"", b" padded\t ", b"Bearer eyJ" + b"k" * 420, b"application/json", b"2", b"close",
              b"keep-alive", b"chunked", b"caf\xe9", b"gzip, deflate", b"a:b:c", b"\t", b"12"]
    lines = []
    for _ in range(rng.randrange(0, 9)):
        line = rng.choice(names) + b":" + rng.choice([b"", b" ", b"  ", b"\t"]) + rng.choice(values)
        if rng.random() < 0.15:  # one byte of any value anywhere: a rule broken (or not)
            at = rng.randrange(len(line) + 1)
            line = line[:at] + bytes([rng.randrange(256)]) + line[at:]
        if rng.random() < 0.03:
            line = rng.choice([b"", b" Leading: space", b"No colon", b"Name : space", b"X:\r", b"X: a\nb"])
        lines.append(line)
    return lines


def test_header_blocks_parse_as_with_gunicorns_parser_whole_and_in_pieces():
    """The parser's whole-block path (a complete, valid block within the limits) and its
    fallback to gunicorn's line by line: the same fields, callbacks, remaining bytes and errors
    as gunicorn's parser, for requests fed whole, split anywhere, and one byte at a time, with
    the server's limits and with limits small enough to be hit."""
    rng = random.Random(2108)
    limit_sets = [dict(limit_request_line=8190, limit_request_fields=100, limit_request_field_size=8190),
                  dict(limit_request_line=8190, limit_request_fields=3, limit_request_field_size=60),
                  dict(limit_request_line=8190, limit_request_fields=0, limit_request_field_size=0)]
    compared = 0
    for case in range(3000):
        lines = _header_lines(rng)
        request_line = rng.choice([b"GET / HTTP/1.1", b"GET /x HTTP/1.0",
                                   b"POST /api/devices/v2/deployments/device/deployments/next HTTP/1.1"])
        head = b"\r\n".join([request_line] + lines) + b"\r\n\r\n"
        if rng.random() < 0.05:
            head = head.replace(b"\r\n", b"\n", 1 + rng.randrange(2))  # bare LFs
        raw = head + rng.choice([b"", b"{}", b"GET / HTTP/1.1\r\n\r\n", b"\r\n\r\nX: y\r\n\r\n"])
        limits = limit_sets[case % len(limit_sets)]
        cuts = [[], [rng.randrange(1, len(raw))], sorted(rng.sample(range(1, len(raw)), min(4, len(raw) - 1)))]
        if case % 50 == 0:
            cuts.append(list(range(1, len(raw))))  # one byte at a time
        for splits in cuts:
            assert _outcome(_Parser, raw, splits, limits) == _outcome(PythonProtocol, raw, splits, limits), \
                (raw, splits, limits)
            compared += 1
    assert compared > 9000


def test_the_whole_block_path_serves_a_device_poll():
    """A poll's request (its ~420-byte bearer token) takes the whole-block path, not the loop."""
    raw = (b"POST /api/devices/v2/deployments/device/deployments/next HTTP/1.1\r\nHost: a\r\n"
           b"Authorization: Bearer " + b"e" * 420 + b"\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\n\r\n{}")
    parser = _Parser(on_headers_complete=lambda: False)
    looped = []
    parser_class = type("Counting", (_Parser,), {
        "__slots__": (),
        "_has_invalid_header_chars":
            lambda self, value: looped.append(value) or _Parser._has_invalid_header_chars(self, value)})
    parser.__class__ = parser_class
    parser.feed(raw)
    assert parser.is_complete and looped == []
    assert parser.headers == [(b"host", b"a"), (b"authorization", b"Bearer " + b"e" * 420),
                              (b"content-type", b"application/json"), (b"content-length", b"2")]



def _loop_module(loop) -> str:
    return type(loop).__module__.split(".")[0]


class _StubLoop(asyncio.SelectorEventLoop):
    """What the stand-in uvloop module below makes (so that the selection is tested apart from uvloop)."""


def _stub_uvloop() -> types.ModuleType:
    module = types.ModuleType("uvloop")
    module.__version__ = "0.0-stub"
    module.new_event_loop = _StubLoop
    return module


def test_event_loop_asyncio_and_uvloop_when_it_imports(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uvloop", _stub_uvloop())
    for choice, loop_class, name in (("asyncio", asyncio.BaseEventLoop, "asyncio"),
                                     ("uvloop", _StubLoop, "uvloop 0.0-stub"),
                                     ("auto", _StubLoop, "uvloop 0.0-stub")):
        loop, got = event_loop(choice)
        try:
            assert isinstance(loop, loop_class) and got == name, (choice, loop, got)
            assert (type(loop) is _StubLoop) == (choice != "asyncio")
            assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
        finally:
            loop.close()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(ValueError, match="unknown event loop"):
        event_loop("trio")


def test_event_loop_falls_back_to_asyncio_with_a_warning_without_uvloop(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    with caplog.at_level(logging.WARNING, logger="mender.asgi"):
        loop, name = event_loop("uvloop")
        loop.close()
    assert name == "asyncio" and _loop_module(loop) == "asyncio"
    assert [r for r in caplog.records if r.levelno == logging.WARNING and "uvloop cannot be imported" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mender.asgi"):
        loop, name = event_loop("auto")  # gunicorn's own `auto`: quietly
        loop.close()
    assert name == "asyncio" and not caplog.records
