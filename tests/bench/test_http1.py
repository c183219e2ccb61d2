"""bench/http1.py, the fleet simulator's HTTP/1.1 client: what it sends (what aiohttp sent),
how it reads answers in any framing and in pieces, and its pool's limit, reuse and timeout."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bench.http1 import Pool, request_bytes


class Canned:
    """A server on 127.0.0.1 that records each request and answers with the next canned bytes,
    written `piece` bytes at a time; a canned `(bytes, "close")` closes the connection after them."""

    def __init__(self, answers: list, piece: int = 0, delay: float = 0.0):
        self.answers, self.piece, self.delay = list(answers), piece, delay
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_now = self.most_open = 0

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def _handle(self, reader, writer):
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.requests.append(head + await reader.readexactly(length))
                await asyncio.sleep(self.delay)
                answer = self.answers.pop(0)
                close = isinstance(answer, tuple)
                answer = answer[0] if close else answer
                for i in range(0, len(answer), self.piece or len(answer)):
                    writer.write(answer[i:i + (self.piece or len(answer))])
                    await writer.drain()
                    if self.piece:
                        await asyncio.sleep(0)
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def _headers(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    return lines[0], {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}, body


def test_requests_are_the_ones_aiohttp_sent():
    """The same request line, headers (but the User-Agent's name) and body as aiohttp's `json=`/`data=`."""
    import json

    async def main():
        ok = b"HTTP/1.1 204 No Content\r\n\r\n"
        async with Canned([ok] * 6) as srv:
            host = f"127.0.0.1:{srv.port}"
            url = f"http://{host}"
            body = {"device_provides": {"artifact_name": "a", "device_type": "t"}, "update_control_map": True}
            async with aiohttp.ClientSession() as session:
                for kw in ({"json": body, "headers": {"Authorization": "Bearer tok"}},
                           {"data": b'{"id_data":"x"}\n', "headers": {"Content-Type": "application/json",
                                                                      "X-MEN-Signature": "c2ln"}},
                           {}):
                    method = "GET" if not kw else "POST"
                    async with session.request(method, url + "/p/q?x=1", **kw) as r:
                        await r.read()
            pool = Pool()
            await pool.request(srv.port, request_bytes("POST", host, "/p/q?x=1", (
                ("Authorization", "Bearer tok"), ("Content-Type", "application/json")), json.dumps(body).encode()))
            await pool.request(srv.port, request_bytes("POST", host, "/p/q?x=1", (
                ("Content-Type", "application/json"), ("X-MEN-Signature", "c2ln")), b'{"id_data":"x"}\n'))
            await pool.request(srv.port, request_bytes("GET", host, "/p/q?x=1"))
            pool.close()
            return srv.requests

    sent = run(main())
    for theirs, ours in zip(sent[:3], sent[3:]):
        line, headers, body = _headers(ours)
        their_line, their_headers, their_body = _headers(theirs)
        assert line == their_line and body == their_body
        assert headers.pop("user-agent").endswith("bench.fleet") and their_headers.pop("user-agent")
        assert headers == their_headers


@pytest.mark.parametrize("piece", [0, 1, 7])
def test_answers_in_every_framing_and_in_pieces_on_one_connection(piece):
    answers = [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\": true}",
        b"HTTP/1.1 204 No Content\r\nX-Other: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n",
    ]

    async def main():
        async with Canned(answers, piece=piece) as srv:
            pool = Pool()
            got = [await pool.request(srv.port, request_bytes("GET", "h", f"/{i}")) for i in range(len(answers))]
            pool.close()
            return got, srv.connections

    got, connections = run(main())
    assert got == [(200, b'{"a": true}'), (204, b""), (200, b"hello world"), (200, b"abc"), (401, b"")]
    assert connections == 1  # keep-alive: one connection for all five


def test_connection_close_and_a_body_read_to_the_close_open_a_new_connection():
    answers = [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
               (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", "close"),
               b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"]

    async def main():
        async with Canned(answers) as srv:
            pool = Pool()
            got = [await pool.request(srv.port, request_bytes("GET", "h", f"/{i}")) for i in range(3)]
            pool.close()
            return got, srv.connections

    got, connections = run(main())
    assert got == [(200, b"ok"), (200, b"until the end"), (200, b"x")]
    assert connections == 3


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", b"HTTP/1.1 200 O",
                                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"])
def test_a_connection_lost_mid_answer_fails_its_request_and_frees_its_place(answer):
    async def main():
        async with Canned([(answer, "close"), b"HTTP/1.1 204 No Content\r\n\r\n"]) as srv:
            pool = Pool(limit=1)
            with pytest.raises(ConnectionError):
                await pool.request(srv.port, request_bytes("GET", "h", "/a"))
            got = await pool.request(srv.port, request_bytes("GET", "h", "/b"))
            pool.close()
            return got

    assert run(main()) == (204, b"")


def test_a_malformed_answer_fails_its_request():
    async def main():
        async with Canned([b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", b"SSH-2.0\r\n\r\n"]) as srv:
            pool = Pool(limit=1)
            for path in ("/a", "/b"):
                with pytest.raises(ValueError):
                    await pool.request(srv.port, request_bytes("GET", "h", path))
            pool.close()
            return pool._open

    assert run(main()) == 0


def test_the_pool_holds_at_most_limit_connections_and_reuses_them():
    async def main():
        async with Canned([b"HTTP/1.1 204 No Content\r\n\r\n"] * 12, delay=0.05) as srv:
            pool = Pool(limit=3)
            got = await asyncio.gather(*(pool.request(srv.port, request_bytes("GET", "h", f"/{i}"))
                                         for i in range(12)))
            pool.close()
            return got, srv.most_open, srv.connections, pool.opened

    got, most_open, connections, opened = run(main())
    assert got == [(204, b"")] * 12
    assert most_open == 3 and connections == 3 and opened == 3


def test_an_idle_connection_is_not_reused_after_keepalive():
    async def main():
        async with Canned([b"HTTP/1.1 204 No Content\r\n\r\n"] * 3) as srv:
            pool = Pool(keepalive=0.1)
            await pool.request(srv.port, request_bytes("GET", "h", "/a"))
            await pool.request(srv.port, request_bytes("GET", "h", "/b"))  # reused
            await asyncio.sleep(0.3)
            await pool.request(srv.port, request_bytes("GET", "h", "/c"))  # too old: a new one
            pool.close()
            return srv.connections

    assert run(main()) == 2


def test_a_request_times_out_as_a_whole_and_gives_its_place_back():
    async def main():
        async with Canned([b"HTTP/1.1 204 No Content\r\n\r\n"] * 3, delay=1.0) as srv:
            pool = Pool(limit=1, timeout=0.3)
            slow = asyncio.gather(*(pool.request(srv.port, request_bytes("GET", "h", f"/{i}")) for i in range(2)),
                                  return_exceptions=True)
            first, waiting = await slow  # the first times out waiting for its answer, the second for the pool
            assert isinstance(first, TimeoutError) and isinstance(waiting, TimeoutError)
            pool.timeout = 5
            got = await pool.request(srv.port, request_bytes("GET", "h", "/c"))
            pool.close()
            return got

    assert run(main()) == (204, b"")
