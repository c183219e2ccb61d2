"""Which listener a connection came in on: the public one, or the internal one that alone serves
`/api/internal/…` and `/metrics` (`MENDER_INTERNAL_BIND`). No Flask here: gunicorn.conf.py,
the ASGI front and the app all use it."""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

DEFAULT_INTERNAL_BIND = "127.0.0.1:8081"

PUBLIC = "public"
INTERNAL = "internal"

# The environ key (WSGI) and scope key (ASGI) that carry the listener of a request. A request
# without it (Flask's test client, `flask shell`) is internal: only an in-process caller can make one.
ENVIRON_KEY = "mender.listener"

_INTERNAL_PREFIX = "/api/internal/"


def internal_only(path: str) -> bool:
    """Whether a path is served on the internal listener alone: it is, or normalises to (empty and
    `.` segments dropped, `..` taken back), `/api/internal/…` or `/metrics`. A proxy or a router
    that merges slashes or resolves dot segments must not carry `/api//internal/…` or
    `/api/x/../internal/…` to an internal route through the public listener."""
    if "//" in path or "/." in path:
        path = _normalised(path)
    return path.startswith(_INTERNAL_PREFIX) or path == "/metrics" or path.startswith("/metrics/")


def _normalised(path: str) -> str:
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out) + ("/" if path.endswith(("/", "/.", "/..")) and out else "")


def parse_bind(bind: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` → (host, port); empty → None (the internal listener is off).
    Raises ValueError for anything else (unix sockets are not supported for this listener)."""
    bind = (bind or "").strip()
    if not bind:
        return None
    if bind.startswith("unix:") or bind.startswith("fd://"):
        raise ValueError(f"MENDER_INTERNAL_BIND: use HOST:PORT, not {bind!r}")
    if bind.startswith("["):
        host, _, port = bind[1:].partition("]:")
    else:
        host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"MENDER_INTERNAL_BIND: write HOST:PORT, not {bind!r}")
    return host, int(port)


@lru_cache(maxsize=8)
def _addresses(host: str) -> frozenset[str] | None:
    """The addresses a bind host stands for; None for a wildcard (any local address)."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return None
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return frozenset({host})
    return frozenset(str(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos)


class ListenerMap:
    """Tells the internal listener from the public one by a connection's local address."""

    __slots__ = ("internal",)

    def __init__(self, internal_bind: str):
        self.internal = parse_bind(internal_bind)

    def classify(self, sockname) -> str:
        """`sockname`: the local (host, port) of an accepted connection (an ASGI scope's
        "server", or `getsockname()` of gunicorn's socket)."""
        internal = self.internal
        if internal is None or not isinstance(sockname, (tuple, list)) or len(sockname) < 2:
            return PUBLIC
        host, port = sockname[0], sockname[1]
        if port != internal[1]:
            return PUBLIC
        addresses = _addresses(internal[0])
        if addresses is None:
            return INTERNAL
        try:
            host = str(ipaddress.ip_address(str(host).split("%")[0]))
        except ValueError:
            return PUBLIC
        if host.startswith("::ffff:"):
            host = host[len("::ffff:"):]
        return INTERNAL if host in addresses else PUBLIC
