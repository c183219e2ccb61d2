"""The websocket endpoints: a device's connection, an operator's session, a recording's playback.

Each is an ASGI websocket handler (`async def handler(scope, receive, send, **params)`) served by
the ASGI front. The handshake is authenticated before it is accepted; a refusal is an HTTP
answer with the usual JSON error (401, 403, 404), never a half-open socket.

How the web UI authenticates: browsers cannot put a header on a websocket, so the operator
endpoints also take the UI's session cookie (`JWT`, HttpOnly, SameSite=Strict). A cookie is sent
by the browser on its own, so a handshake authenticated by it must carry an `Origin` naming this
server (scheme-default ports normalised; the `X-Forwarded-Host`/`-Proto` of trusted proxies count):
another site, or another port on this host, cannot open a terminal with the operator's cookie.
There is no CSRF token on a websocket handshake; the Origin check is what stands for it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from common.asgi import deny_websocket
from common.auth import SESSION_COOKIE
from common.errors import Forbidden, NotFound, ServiceError
from common.permissions import route_key
from deviceconnect import OPERATOR_CONNECT, PLAYBACK, envelope
from deviceconnect import protocol as p
from deviceconnect import service as s
from deviceconnect.bus import device_subject, session_subject
from deviceconnect.links import DeviceLink, OperatorLink, PlaybackLink, WebSocket
from deviceconnect.recording import playback_messages

if TYPE_CHECKING:
    from deviceconnect.hub import Hub

log = logging.getLogger("mender.deviceconnect")

SUBPROTOCOL = "protomsg/msgpack"
DEFAULT_PLAYBACK_SLEEP_MS = 100
MAX_PLAYBACK_SLEEP_MS = 10_000
_MAX_ID = 128
TOO_MANY = "too many open sessions for this user (DEVICECONNECT_MAX_SESSIONS_PER_USER)"


def _headers(scope) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        out[name] = out[name] + b"," + value if name in out and name != b"cookie" else value
    return out


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None and morsel.value else None


def _endpoint(scheme: str, netloc: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port or (443 if scheme in ("https", "wss") else 80)


def same_origin(scope, headers: dict[bytes, bytes], trusted_proxies: int) -> bool:
    """Whether the handshake's Origin names this server (see the module docstring)."""
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    if not origin or origin == "null":
        return False
    try:
        o = urlsplit(origin)
    except ValueError:
        return False
    mine_scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    host = headers.get(b"host", b"").decode("latin-1")
    if trusted_proxies > 0:
        forwarded_host = headers.get(b"x-forwarded-host", b"").decode("latin-1").split(",")[0].strip()
        forwarded_proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[0].strip().lower()
        host = forwarded_host or host
        mine_scheme = forwarded_proto if forwarded_proto in ("http", "https") else mine_scheme
    theirs = _endpoint(o.scheme, o.netloc) if o.scheme in ("http", "https") else None
    mine = _endpoint(mine_scheme, host) if host else None
    return theirs is not None and theirs == mine


# the websocket routes (werkzeug rules); the two management ones are decided by the permission
# table (common.permissions) as any management route
OPERATOR_CONNECT_KEY = route_key("GET", OPERATOR_CONNECT)
PLAYBACK_KEY = route_key("GET", PLAYBACK)


async def deny(scope, receive, send, status: int, message: str) -> None:
    """Refuse the handshake with an HTTP status and a JSON error (see common.asgi)."""
    await deny_websocket(scope, receive, send, status, message)


class Relay:
    """The handlers, bound to this process's hub."""

    def __init__(self, hub: "Hub"):
        self.hub = hub

    async def _ready(self, scope, receive, send) -> bool:
        """Start this process's hub (the bus) if needed; False after refusing the handshake (503)."""
        if self.hub.started:
            return True
        try:
            await self.hub.start()
        except Exception:
            log.exception("deviceconnect: the bus is not available")
            await deny(scope, receive, send, 503, "service unavailable")
            return False
        return True

    async def _accept(self, scope, receive, send) -> WebSocket | None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return None
        accept = {"type": "websocket.accept"}
        if SUBPROTOCOL in (scope.get("subprotocols") or ()):
            accept["subprotocol"] = SUBPROTOCOL
        await send(accept)
        return WebSocket(receive, send, "websocket.ping" in (scope.get("extensions") or {}))

    # ------------------------------------------------------------------ devices
    async def device_connect(self, scope, receive, send, **params) -> None:
        if not await self._ready(scope, receive, send):
            return
        hub = self.hub
        headers = _headers(scope)
        token = _bearer(headers) or _cookie(headers, SESSION_COOKIE)
        if not token:
            await deny(scope, receive, send, 401, "missing or malformed Authorization header")
            return
        authenticate = hub.authenticators.get("devices")
        try:
            identity = await hub.run(authenticate, token)
        except ServiceError as exc:
            await deny(scope, receive, send, exc.status if exc.status < 500 else 503, exc.message)
            return
        if not identity.is_device:
            await deny(scope, receive, send, 401, "device token required")
            return
        tenant, device_id = identity.tenant, identity.subject
        subject = device_subject(tenant, device_id)
        conn_id = secrets.token_hex(8)
        exp = identity.claims.get("exp")
        link = DeviceLink(hub, WebSocket(receive, send), tenant, device_id, conn_id,
                          float(exp) if isinstance(exp, (int, float)) else None)
        try:
            await hub.bus.publish(subject, envelope.supersede(conn_id))  # an older socket elsewhere closes
            hub.add_device(link)
            link.subscription = await hub.bus.subscribe(subject, link.on_bus)
            link.version = await hub.run(hub.service.device_connected, tenant, device_id, hub.holder)
        except Exception:
            log.exception("device %s: could not register the connection", device_id)
            await self._forget_device(link, registered=False)
            await deny(scope, receive, send, 503, "service unavailable")
            return
        ws = await self._accept(scope, receive, send)
        if ws is None:
            await self._forget_device(link, registered=True)
            return
        link.ws = ws
        try:
            await link.run()
        except p.ProtocolError as exc:
            log.info("device %s: closing: %s", device_id, exc.reason)
            await link.fail(exc)
        except Exception:
            log.exception("device %s: relay failed", device_id)
            await link.fail(p.ProtocolError(p.CLOSE_INTERNAL, "internal error"))
        finally:
            await self._forget_device(link, registered=True)

    async def _forget_device(self, link: DeviceLink, registered: bool) -> None:
        hub = self.hub
        hub.remove_device(link)
        if link.subscription is not None:
            await link.subscription.unsubscribe()
        await hub.device_gone(link, "device disconnected")
        if registered and link.version:
            try:
                await hub.run(hub.service.device_disconnected, link.tenant, link.device_id, link.version)
            except Exception:  # the sweeper of another process releases it when this one is gone
                log.exception("device %s: could not record the disconnection", link.device_id)

    # ------------------------------------------------------------------ operators
    async def _operator(self, scope, receive, send, key: str, params: dict):
        """(identity, token, access) of the operator, authenticated and allowed operation `key` by
        the permission table, or None after refusing the handshake."""
        if not await self._ready(scope, receive, send):
            return None
        hub = self.hub
        headers = _headers(scope)
        token = _bearer(headers)
        if not token:
            token = _cookie(headers, SESSION_COOKIE)
            if not token:
                await deny(scope, receive, send, 401, "missing or malformed Authorization header")
                return None
            if not same_origin(scope, headers, int(hub.config["MENDER_TRUSTED_PROXIES"])):
                await deny(scope, receive, send, 403, "cross-origin websocket refused")
                return None
        authenticate = hub.authenticators.get("management")
        try:
            identity = await hub.run(authenticate, token)
        except ServiceError as exc:
            await deny(scope, receive, send, exc.status if exc.status < 500 else 503, exc.message)
            return None
        if not identity.is_user:
            await deny(scope, receive, send, 401, "user token required")
            return None
        try:
            access = await hub.run(hub.context.authorizer.authorize, identity, "GET", key, params)
        except ServiceError as exc:
            await deny(scope, receive, send, exc.status if exc.status < 500 else 503, exc.message)
            return None
        return identity, token, access

    async def operator_connect(self, scope, receive, send, id: str = "", **params) -> None:
        await self._counted(scope, receive, send, OPERATOR_CONNECT_KEY, {"id": id}, self._operator_session, id)

    async def _counted(self, scope, receive, send, key: str, path_params: dict, serve, target: str) -> None:
        """An operator socket (a session or a playback) the permission table allows, counted
        against the user's DEVICECONNECT_MAX_SESSIONS_PER_USER while `serve` holds it (one more:
        429 before the upgrade)."""
        who = await self._operator(scope, receive, send, key, path_params)
        if who is None:
            return
        identity, token, _access = who
        if not self.hub.claim_operator_socket(identity.tenant, identity.subject):
            await deny(scope, receive, send, 429, TOO_MANY)
            return
        try:
            await serve(scope, receive, send, identity, token, target)
        finally:
            self.hub.release_operator_socket(identity.tenant, identity.subject)

    async def _operator_session(self, scope, receive, send, identity, token: str, device_id: str) -> None:
        hub = self.hub
        if not device_id or len(device_id) > _MAX_ID or not device_id.isprintable():
            await deny(scope, receive, send, 400, "invalid device id")
            return
        try:
            session = await hub.run(hub.service.open_session, identity.tenant, identity.subject, device_id, hub.holder)
        except ServiceError as exc:
            await deny(scope, receive, send, exc.status if exc.status < 500 else 503, exc.message)
            return
        link = OperatorLink(hub, WebSocket(receive, send), session, identity, token)
        try:
            link.subscription = await hub.bus.subscribe(session_subject(session.tenant_id, session.id), link.on_bus)
        except Exception:
            log.exception("session %s: could not subscribe", session.id)
            await deny(scope, receive, send, 503, "service unavailable")
            await hub.run(hub.service.end_session, session, [], 0)
            return
        hub.sessions[session.id] = link
        ws = await self._accept(scope, receive, send)
        try:
            if ws is not None:
                link.ws = ws
                await link.run()
        except p.ProtocolError as exc:
            link.end_reason = exc.reason
            await link.fail(exc)
        except Forbidden as exc:
            link.end_reason = exc.message
            await link.fail(p.ProtocolError(p.CLOSE_POLICY, exc.message))
        except Exception:
            log.exception("session %s: relay failed", session.id)
            await link.fail(p.ProtocolError(p.CLOSE_INTERNAL, "internal error"))
        finally:
            await self._end_session(link)

    async def _end_session(self, link: OperatorLink) -> None:
        hub = self.hub
        session = link.session
        hub.sessions.pop(session.id, None)
        if link.subscription is not None:
            await link.subscription.unsubscribe()
        try:
            await hub.bus.publish(link.device_subject, envelope.frames(session.id, link.farewell(), end=True))
        except Exception:
            log.exception("session %s: could not tell the device it ended", session.id)
        await link.recorder.flush()
        service = hub.service
        try:
            await hub.run(service.end_session, session, link.types, link.recorder.recorded)
            for kind, action in (("terminal", s.CLOSE_TERMINAL), ("portforward", s.CLOSE_PORT_FORWARD)):
                if kind in link.types:
                    await hub.run(service.hooks, action, session.tenant_id, link.identity.subject,
                                  session.device_id, session_id=session.id, reason=link.end_reason)
        except Exception:
            log.exception("session %s: could not record its end", session.id)

    # ------------------------------------------------------------------ playback
    async def playback(self, scope, receive, send, session_id: str = "", **params) -> None:
        await self._counted(scope, receive, send, PLAYBACK_KEY, {"session_id": session_id}, self._playback, session_id)

    async def _playback(self, scope, receive, send, identity, token: str, session_id: str) -> None:
        hub = self.hub
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sleep_ms = DEFAULT_PLAYBACK_SLEEP_MS
        if "sleep_ms" in query:
            try:
                sleep_ms = int(query["sleep_ms"][0])
            except ValueError:
                sleep_ms = -1
            if not 0 <= sleep_ms <= MAX_PLAYBACK_SLEEP_MS:
                await deny(scope, receive, send, 400, f"sleep_ms: must be an integer from 0 to {MAX_PLAYBACK_SLEEP_MS}")
                return
        service = hub.service
        try:
            session = await hub.run(service.get_session, identity.tenant, session_id)
            await hub.run(service.hooks, s.PLAYBACK, identity.tenant, identity.subject, session.device_id,
                          session_id=session.id)
        except NotFound:
            await deny(scope, receive, send, 404, "session not found")
            return
        except ServiceError as exc:
            await deny(scope, receive, send, exc.status if exc.status < 500 else 503, exc.message)
            return
        ws = await self._accept(scope, receive, send)
        if ws is None:
            return
        # re-decided by the sweeper as an operator session is (token, permission table)
        link = PlaybackLink(hub, identity, token, session.id)
        hub.playbacks.add(link)
        gone = asyncio.get_running_loop().create_task(self._wait_closed(ws))
        gone.add_done_callback(lambda _: link.close_soon(p.CLOSE_NORMAL, "reader left"))
        messages = playback_messages(service.recording_chunks(identity.tenant, session.id), session.id)
        try:
            while link.closing is None:
                frame = await hub.run(next, messages, None)
                if frame is None or link.closing is not None:
                    break
                await ws.send(frame)
                if sleep_ms:
                    await link.pause(sleep_ms / 1000)
            await ws.close(*(link.closing or (p.CLOSE_NORMAL, "end of recording")))
        except Exception:
            if not gone.done():
                log.exception("playback of session %s failed", session.id)
                await ws.close(p.CLOSE_INTERNAL, "internal error")
        finally:
            hub.playbacks.discard(link)
            gone.cancel()

    @staticmethod
    async def _wait_closed(ws: WebSocket) -> None:
        while await ws.receive() is not None:
            pass
