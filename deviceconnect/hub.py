"""This process's half of the relay: the bus, the device and operator sockets held here, the
event loop they run on, and a sweeper (heartbeat, dead processes, idle sessions, expired tokens).

Under the ASGI worker everything runs on the worker's loop (started by the front's lifespan, or
by the first websocket); a process without one (the gthread worker, the CLI, Flask's test
client) starts a private loop thread the first time a request needs the bus.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import socket
import threading
import time
from typing import Any, Awaitable, Callable

from deviceconnect import envelope
from deviceconnect import protocol as p
from deviceconnect.bus import Bus, make_bus, session_subject

log = logging.getLogger("mender.deviceconnect")

SWEEP_SECONDS = 5.0
BEAT_SECONDS = 15.0
HOLDER_TTL = 120.0  # a process that has not beaten for this long is dead: its devices are released
RELEASE_SECONDS = 60.0


class Hub:
    def __init__(self, context, service, make: Callable[[Any], Bus] = make_bus):
        self.context = context  # the app context: config, authenticators, and the front's loop and pool
        self.config = context.config
        self.service = service
        self.authenticators = context.authenticators
        self._make_bus = make
        self.loop: asyncio.AbstractEventLoop | None = None
        self.bus: Bus | None = None
        self.holder = ""
        self.devices: dict[tuple[str, str], Any] = {}  # (tenant, device id) -> DeviceLink
        self.sessions: dict[str, Any] = {}  # session id -> OperatorLink
        self.playbacks: set[Any] = set()  # PlaybackLink
        # operator sockets (sessions and playbacks) this process holds per (tenant, user id)
        self.per_user: dict[tuple[str, str], int] = {}
        self.recheck_seconds = float(self.config["DEVICECONNECT_OPERATOR_RECHECK_SECONDS"])
        self._run_blocking: Callable[..., Awaitable[Any]] | None = None
        self._sweeper: asyncio.Task | None = None
        self._start_lock = threading.Lock()
        self._starting: asyncio.Future | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self, run_blocking: Callable[..., Awaitable[Any]] | None = None) -> None:
        """Start on the running loop (idempotent; concurrent callers wait for the first)."""
        loop = asyncio.get_running_loop()
        run_blocking = run_blocking or getattr(self.context, "run_sync", None)
        if run_blocking is not None:
            self._run_blocking = run_blocking
        if self._pid == os.getpid() and self.loop is loop and self._starting is not None:
            await asyncio.shield(self._starting)
            return
        if self._pid == os.getpid() and self.loop is not None and self.loop is not loop:
            raise RuntimeError("deviceconnect hub already runs on another event loop")
        self._pid = os.getpid()
        self.loop = loop
        self._starting = loop.create_future()
        try:
            self.holder = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
            self.devices.clear()
            self.sessions.clear()
            bus = self._make_bus(self.config)
            await bus.start()
            self.bus = bus
            # no database here: a thread may start the hub while it holds the database's writer lock
            self._sweeper = loop.create_task(self._sweep())
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()  # retrieved: no "never retrieved" warning
            self._starting = None
            self.loop = None
            raise
        self._starting.set_result(None)

    @property
    def started(self) -> bool:
        return self._pid == os.getpid() and self._starting is not None and self._starting.done() \
            and not self._starting.exception()

    async def stop(self) -> None:
        """Close every socket held here (1001: the clients reconnect elsewhere), release this
        process's devices and leave the bus."""
        if not self.started:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
        for link in list(self.devices.values()) + list(self.sessions.values()) + list(self.playbacks):
            link.close_soon(p.CLOSE_GOING_AWAY, "server shutting down")
        await asyncio.sleep(0)
        try:
            await self.run(self.service.release_holder, self.holder)
        except Exception:
            log.exception("could not release this process's devices")
        await self.bus.close()
        self._starting = None

    def ensure_started(self) -> None:
        """From a thread: start the hub if this process has no loop running it (private loop thread)."""
        if self.started:
            return
        with self._start_lock:
            if self.started:
                return
            front_loop = getattr(self.context, "loop", None)
            if front_loop is not None and front_loop.is_running():
                # the ASGI worker's loop: the hub runs there, beside the sockets it serves
                asyncio.run_coroutine_threadsafe(self.start(), front_loop).result(30)
                return
            if self._pid == os.getpid() and self.loop is not None and self.loop.is_running():
                asyncio.run_coroutine_threadsafe(self.start(), self.loop).result(30)
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=serve, name="deviceconnect-hub", daemon=True)
            self._thread.start()
            ready.wait()
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(30)

    def check(self) -> None:
        """Health: the bus must answer (NATS: this process connects if it has not yet)."""
        if not self.started and self.config["DEVICECONNECT_NATS_URI"]:
            self.ensure_started()
        if self.started:
            self.bus.check()

    # ------------------------------------------------------------------ bridges
    async def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A blocking call (database, token check) in the thread pool; its exception propagates."""
        if self._run_blocking is not None:
            return await self._run_blocking(func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: func(*args, **kwargs))

    def submit(self, coro) -> concurrent.futures.Future:
        """Run a coroutine on the hub's loop from another thread."""
        self.ensure_started()
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def publish_sync(self, subject: str, data: bytes, timeout: float = 10.0) -> None:
        """Publish from a thread (an HTTP request, another service) and wait until it is sent."""
        self.ensure_started()  # before `self.bus` is read: a worker that holds no socket yet has none
        self.submit(self.bus.publish(subject, data)).result(timeout)

    def publish_soon(self, subject: str, data: bytes) -> None:
        """Publish from a thread without waiting (safe inside a database transaction)."""
        self.ensure_started()
        future = self.submit(self.bus.publish(subject, data))
        future.add_done_callback(_log_failure)

    # ------------------------------------------------------------------ registries
    def claim_operator_socket(self, tenant: str, user_id: str) -> bool:
        """Count one more operator socket (session or playback) of the user in this process; False
        (nothing counted) when the user holds DEVICECONNECT_MAX_SESSIONS_PER_USER already."""
        limit = int(self.config["DEVICECONNECT_MAX_SESSIONS_PER_USER"])
        key = (tenant, user_id)
        held = self.per_user.get(key, 0)
        if limit > 0 and held >= limit:
            return False
        self.per_user[key] = held + 1
        return True

    def release_operator_socket(self, tenant: str, user_id: str) -> None:
        key = (tenant, user_id)
        held = self.per_user.get(key, 0) - 1
        if held > 0:
            self.per_user[key] = held
        else:
            self.per_user.pop(key, None)

    def add_device(self, link) -> None:
        key = (link.tenant, link.device_id)
        old = self.devices.get(key)
        if old is not None and old is not link:
            old.close_soon(p.CLOSE_POLICY, "replaced by a newer connection")
        self.devices[key] = link

    def remove_device(self, link) -> None:
        key = (link.tenant, link.device_id)
        if self.devices.get(key) is link:
            del self.devices[key]

    async def device_gone(self, link, reason: str) -> None:
        """Tell every session of a device that went away."""
        for sid in link.gone_sessions():
            try:
                await self.bus.publish(session_subject(link.tenant, sid), envelope.gone(reason))
            except Exception:
                log.exception("could not tell session %s its device left", sid)

    # ------------------------------------------------------------------ sweeper
    async def _sweep(self) -> None:
        loop = self.loop
        next_beat = next_release = loop.time()
        idle = self.config["DEVICECONNECT_SESSION_IDLE_TIMEOUT_SECONDS"]
        ping_every = float(self.config["DEVICECONNECT_PING_INTERVAL_SECONDS"])
        first = True
        while True:
            if not first:
                await asyncio.sleep(SWEEP_SECONDS)
            first = False
            now = loop.time()
            try:
                for link in list(self.sessions.values()):
                    if now - link.last_activity > idle:
                        link.end_reason = "session idle timeout"
                        link.close_soon(p.CLOSE_NORMAL, "session idle timeout")
                    elif link.recorder.dirty:
                        link.recorder.flush_soon()
                for link in list(self.sessions.values()) + list(self.playbacks):
                    if now >= link.next_reauth:
                        link.next_reauth = now + self.recheck_seconds
                        loop.create_task(self._reauthenticate(link))
                wall = self.service._clock.now()
                for link in list(self.devices.values()):
                    if link.expires is not None and wall >= link.expires:
                        link.close_soon(p.CLOSE_POLICY, "token expired")
                self._ping(ping_every)
                if now >= next_beat:
                    next_beat = now + BEAT_SECONDS
                    await self.run(self.service.heartbeat, self.holder, HOLDER_TTL)
                if now >= next_release:
                    next_release = now + RELEASE_SECONDS
                    await self.run(self.service.release_dead_holders)
                    await self.run(self.service.purge_expired)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is down: try again next round
                log.exception("deviceconnect sweep failed")

    def _ping(self, every: float) -> None:
        """Ping each socket every `every` seconds (a proxy in between sees traffic; gunicorn answers
        the peer's pings by itself); close one whose last ping went unanswered for an interval: its
        peer is gone (the device lost power, a NAT forgot the connection) and it would otherwise
        look connected for as long as TCP takes to give up (a quarter of an hour)."""
        if every <= 0:
            return
        mono = time.monotonic()
        loop = self.loop
        for link in list(self.devices.values()) + list(self.sessions.values()):
            ws = link.ws
            if not ws.pingable or ws.closed:
                continue
            if ws.heard < ws.pinged and mono - ws.pinged > every:
                link.close_soon(p.CLOSE_GOING_AWAY, "no answer to pings")
            elif mono - ws.pinged >= every:
                loop.create_task(ws.ping())

    async def _reauthenticate(self, link) -> None:
        """An operator whose token was revoked (logout, user removed) loses the session or the
        playback; so does one the permission table no longer lets open it (a role taken away, the
        device moved out of the groups a limited role reaches), as the handshake would be refused now."""
        from common.errors import NotFound, Unauthorized, Forbidden
        token = link.token
        authenticate = self.authenticators.get("management")
        if not token or authenticate is None:
            return
        try:
            identity = await self.run(authenticate, token)
        except (Unauthorized, Forbidden):
            link.end_reason = "token revoked"
            link.close_soon(p.CLOSE_POLICY, "token no longer valid")
            return
        except Exception:
            return
        key, params = link.permission()
        try:
            await self.run(self.context.authorizer.authorize, identity, "GET", key, params)
        except (Forbidden, NotFound) as exc:
            link.end_reason = "permission withdrawn"
            link.close_soon(p.CLOSE_POLICY, exc.message)
        except Exception:
            pass


def _log_failure(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("deviceconnect: publish failed: %r", future.exception())
