"""Drive deviceconnect's websocket handlers in-process: an ASGI websocket whose client end the test
holds (messages in, messages out, the close code). The handlers, the hub, the bus and the
database are the real ones; only the socket is a pair of queues."""

from __future__ import annotations

import asyncio

from deviceconnect import protocol as p


class FakeSocket:
    def __init__(self, headers: dict[str, str] | None = None, query: str = "", subprotocols=()):
        self.scope = {"type": "websocket", "scheme": "ws", "path": "/", "query_string": query.encode(),
                      "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
                      "subprotocols": list(subprotocols)}
        self._to_app: asyncio.Queue = asyncio.Queue()
        self._from_app: asyncio.Queue = asyncio.Queue()
        self._to_app.put_nowait({"type": "websocket.connect"})
        self.accepted = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.denied = False

    # the app's side
    async def receive(self):
        return await self._to_app.get()

    async def send(self, message):
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
        elif kind == "websocket.close":
            if not self.accepted:
                self.denied = True
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason", "")
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": self.close_code})
        await self._from_app.put(message)

    # the client's side
    def send_bytes(self, data: bytes) -> None:
        self._to_app.put_nowait({"type": "websocket.receive", "bytes": data})

    def send_msg(self, msg: p.ProtoMsg) -> None:
        self.send_bytes(p.encode(msg))

    def send_text(self, text: str) -> None:
        self._to_app.put_nowait({"type": "websocket.receive", "text": text})

    def leave(self) -> None:
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def next(self, timeout: float = 5.0) -> dict:
        return await asyncio.wait_for(self._from_app.get(), timeout)

    async def recv(self, timeout: float = 5.0) -> p.ProtoMsg | None:
        """The next ProtoMsg the app sent; None when it closed the socket instead."""
        while True:
            message = await self.next(timeout)
            if message["type"] == "websocket.send":
                return p.decode(message["bytes"])
            if message["type"] == "websocket.close":
                return None

    async def closed(self, timeout: float = 5.0) -> int:
        """Wait for the app to close (skipping messages); the close code."""
        while True:
            message = await self.next(timeout)
            if message["type"] == "websocket.close":
                return message.get("code", 1000)


async def wait_until(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
