"""common.asgi_worker's parser: gunicorn's pure-Python HTTP parser with its per-byte checks as
regular expressions must answer exactly as gunicorn's own loops, for every byte and for whole
requests, and the worker's protocol must use it (the checks over real HTTP: tests/common/test_asgi.py)."""

import itertools
import random

import pytest
from gunicorn.asgi.parser import ParseError, PythonProtocol
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.config import Config

from common.asgi_worker import _Parser, _Protocol

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
