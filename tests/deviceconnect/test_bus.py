"""The two buses behind one interface: the embedded one between processes of one box, NATS."""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os


from deviceconnect.bus import EmbeddedBus, NatsBus, device_subject, session_subject, token
from tests.deviceconnect.nats import NatsServer


def test_subject_tokens_are_safe():
    assert device_subject("", "0a1b-2c") == "dc.-.d.0a1b-2c"
    assert session_subject("t1", "s") == "dc.t1.s.s"
    assert token("a.b*>") == "x" + "a.b*>".encode().hex()
    assert "." not in token("evil.tenant")


async def _exchange(make_a, make_b):
    a, b = make_a(), make_b()
    await a.start()
    await b.start()
    try:
        got_a, got_b = [], []
        done = asyncio.Event()
        await a.subscribe("dc.t.d.dev1", got_a.append)
        sub_b = await b.subscribe("dc.t.s.sess1", lambda data: (got_b.append(data), done.set() if len(got_b) == 100 else None))
        if isinstance(a, NatsBus):
            await a._nc.flush()
            await b._nc.flush()
        for i in range(100):
            await a.publish("dc.t.s.sess1", b"to-b-%d" % i)
        await asyncio.wait_for(done.wait(), 10)
        assert got_b == [b"to-b-%d" % i for i in range(100)]  # in order
        await b.publish("dc.t.d.dev1", b"to-a")
        await b.publish("dc.t.d.nobody", b"dropped")
        for _ in range(100):
            if got_a:
                break
            await asyncio.sleep(0.02)
        assert got_a == [b"to-a"]
        await sub_b.unsubscribe()
        if isinstance(b, NatsBus):
            await b._nc.flush()
        await a.publish("dc.t.s.sess1", b"after")
        await asyncio.sleep(0.2)
        assert len(got_b) == 100
    finally:
        await a.close()
        await b.close()


def test_embedded_bus_between_two_buses(tmp_path):
    d = str(tmp_path / "bus")
    asyncio.run(_exchange(lambda: EmbeddedBus(d), lambda: EmbeddedBus(d)))
    assert os.listdir(d) == []  # both left the registry


class _LibuvLikeLoop(asyncio.SelectorEventLoop):
    """asyncio's loop connecting to a unix path as uvloop 0.23's does: libuv takes the path as a C
    string, so an abstract-namespace address (leading NUL) fails with EINVAL (uvloop issue 528)."""

    async def create_unix_connection(self, protocol_factory, path=None, **kwargs):
        if path is not None and str(path).startswith("\0"):
            raise OSError(errno.EINVAL, "Invalid argument")
        return await super().create_unix_connection(protocol_factory, path, **kwargs)


def test_embedded_bus_on_a_loop_that_cannot_connect_to_abstract_paths(tmp_path):
    """The worker's loop may be uvloop's (MENDER_EVENT_LOOP=uvloop): the bus connects to its peers
    with a socket of its own, so they are not taken for dead and forgotten."""
    d = str(tmp_path / "bus")
    loop = _LibuvLikeLoop()
    try:
        loop.run_until_complete(_exchange(lambda: EmbeddedBus(d), lambda: EmbeddedBus(d)))
    finally:
        loop.close()
    assert os.listdir(d) == []


def test_nats_bus(tmp_path):
    server = NatsServer(str(tmp_path)).start()
    try:
        asyncio.run(_exchange(lambda: NatsBus(server.url), lambda: NatsBus(server.url)))
    finally:
        server.stop()


def _peer(directory: str, ready, stop) -> None:
    async def main():
        bus = EmbeddedBus(directory)
        await bus.start()

        async def echo(data: bytes) -> None:
            await bus.publish("reply", b"echo:" + data)

        await bus.subscribe("ask", lambda data: asyncio.get_running_loop().create_task(echo(data)))
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await bus.close()

    asyncio.run(main())


def test_embedded_bus_across_processes_and_a_dead_peer(tmp_path):
    directory = str(tmp_path / "bus")
    os.makedirs(directory)
    with open(os.path.join(directory, "deadbeefdeadbeef.peer"), "w") as f:  # left by a killed process
        f.write("1")
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_peer, args=(directory, ready, stop))
    proc.start()
    try:
        assert ready.wait(30)

        async def main():
            bus = EmbeddedBus(directory)
            await bus.start()
            got = asyncio.Queue()
            await bus.subscribe("reply", got.put_nowait)
            for _ in range(50):  # the peer connects back after our hello
                if len(bus.peer_names) == 1:
                    break
                await asyncio.sleep(0.02)
            await bus.publish("ask", b"ping")
            assert await asyncio.wait_for(got.get(), 10) == b"echo:ping"
            assert "deadbeefdeadbeef" not in bus.peer_names
            await bus.close()

        asyncio.run(main())
        assert not os.path.exists(os.path.join(directory, "deadbeefdeadbeef.peer"))
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
