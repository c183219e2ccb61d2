"""Outbound HTTP for webhooks: one POST to a vetted address, bounded in time and in size.

A webhook URL is chosen by an operator, so the server must not become a way to reach what only
it can reach (SSRF: Mender's CVE-2024-46947): the host name is resolved here, every address it
resolves to must be public (not loopback, private, link-local, shared, multicast or reserved)
unless the operator's setting allows it, and the connection goes to an address that was checked,
never to a second resolution a DNS server could answer differently. No proxy from the
environment is used and redirects are not followed (a 3xx is a failed attempt).

Time: the whole attempt (resolution, connection, TLS, request, response headers and the read of
the body) ends by its deadline; a watchdog shuts the socket down at the deadline, so a receiver
that trickles bytes cannot stretch it. Size: at most RESPONSE_LIMIT bytes of the response body
are read, and RESPONSE_KEPT printable characters of them are kept.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Callable
from urllib.parse import SplitResult, urlsplit

RESPONSE_LIMIT = 16 * 1024  # bytes of a response body read at most
RESPONSE_KEPT = 256  # printable characters of it kept with the attempt
MAX_URL_LENGTH = 2048

Resolver = Callable[[str, int, float], list[str]]  # (host, port, timeout) -> addresses

# getaddrinfo cannot be given a timeout: it runs here, and the caller stops waiting at its deadline
# (a thread left waiting ends with the system resolver's own timeout).
_dns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


class DestinationRefused(Exception):
    """The URL's host is, or resolves to, an address that is not public."""


@dataclass(slots=True)
class Result:
    success: bool
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response: str | None = None


def parse_url(url: str) -> SplitResult:
    """Check a webhook URL's form; ValueError saying what is wrong."""
    if not isinstance(url, str) or not url:
        raise ValueError("must be an http or https URL")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise ValueError("must not contain spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (use the secret to authenticate deliveries)")
    try:
        parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return parts


# IPv6 forms that reach an IPv4 address (Python's is_global takes them for public): NAT64's
# well-known prefix (RFC 6052; a NAT64 gateway, as AWS's, forwards 64:ff9b::10.0.0.5 to the
# private 10.0.0.5) and the deprecated IPv4-compatible ::a.b.c.d, both judged by the IPv4 address
# in their last 32 bits; NAT64's local-use prefix (RFC 8215) and the deprecated site-local
# fec0::/10 (RFC 3879) are not global at all.
_EMBEDS_IPV4 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
_NOT_GLOBAL_V6 = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("fec0::/10"))


def is_public(address: str) -> bool:
    """Whether an address is a public unicast address (IPv6 forms carrying an IPv4 address —
    IPv4-mapped, 6to4, NAT64, IPv4-compatible — judged by the IPv4 address they carry)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6:
        if any(ip in net for net in _NOT_GLOBAL_V6):
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in net for net in _EMBEDS_IPV4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


def refusal_without_resolving(host: str) -> str | None:
    """Why a host is refused before any resolution (an address literal that is not public, or a
    `localhost` name), or None."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is a loopback name"
    try:
        public = is_public(name)
    except ValueError:
        return None  # a name: judged by what it resolves to, when delivering
    return None if public else f"{host} is not a public address"


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses of `host`, in the resolver's order. OSError when it cannot be resolved in time."""
    future = _dns.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(timeout, 0.001))
    except FutureTimeout:
        raise OSError(f"resolving {host} timed out") from None
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


def _printable(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() else " " for c in text)[:RESPONSE_KEPT]


class _Pinned:
    """Connects to the vetted addresses (in order) instead of resolving `host` again."""

    addresses: list[str]
    deadline: float

    def _open(self) -> socket.socket:
        last: OSError | None = None
        for address in self.addresses:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            try:
                return socket.create_connection((address, self.port), timeout=remaining)  # type: ignore[attr-defined]
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")


class _HTTP(_Pinned, http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = self._open()


class _HTTPS(_Pinned, http.client.HTTPSConnection):
    def connect(self) -> None:
        sock = self._open()
        try:
            self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool,
         resolver: Resolver | None = None, tls_context: ssl.SSLContext | None = None) -> Result:
    """POST `body` to `url` once. Never raises for what the network or the receiver does: the
    Result says whether a 2xx came back, or what went wrong."""
    started = time.monotonic()
    deadline = started + timeout

    def result(success: bool, **kw) -> Result:
        return Result(success, int((time.monotonic() - started) * 1000), **kw)

    try:
        parts = parse_url(url)
    except ValueError as exc:
        return result(False, error=f"invalid URL: {exc}")
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not allow_private:
        reason = refusal_without_resolving(host)
        if reason:
            return result(False, error=f"destination refused: {reason}")
    try:
        addresses = (resolver or resolve)(host, port, deadline - time.monotonic())
    except OSError as exc:
        return result(False, error=str(exc))
    if not addresses:
        return result(False, error=f"cannot resolve {host}")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                return result(False, error=f"destination refused: {host} resolves to {address}, "
                                           "which is not a public address")

    remaining = deadline - time.monotonic()
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = _HTTPS(host, port, timeout=remaining,
                                                  context=tls_context or ssl.create_default_context())
    else:
        conn = _HTTP(host, port, timeout=remaining)
    conn.addresses, conn.deadline = addresses, deadline  # type: ignore[attr-defined]
    fired = threading.Event()
    watchdog = threading.Timer(max(remaining, 0.0), _abort, args=(conn, fired))
    watchdog.daemon = True
    watchdog.start()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read(RESPONSE_LIMIT)
        status = response.status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set() or isinstance(exc, TimeoutError):
            return result(False, error=f"timed out after {timeout:g} s")
        return result(False, error=_describe(exc))
    finally:
        watchdog.cancel()
        conn.close()
    kept = _printable(data) or None
    if 200 <= status < 300:
        return result(True, status_code=status, response=kept)
    if 300 <= status < 400:
        return result(False, status_code=status, response=kept, error=f"HTTP {status}: redirects are not followed")
    return result(False, status_code=status, response=kept, error=f"HTTP {status}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response: {type(exc).__name__}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[:200]
