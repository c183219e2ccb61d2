"""The server's own expiring, HMAC-signed links (filesystem storage): downloads and direct uploads.

As Mender's configuration-deployment links: query `x-men-expire` (RFC 3339, UTC) and `tenant_id`,
and `x-men-signature` = base64url-nopad(HMAC-SHA256(secret,
"METHOD\\nPATH\\nx-men-expire=V\\ntenant_id=V\\n")). Expired or tampered → 403.
Download links also name the object they were made for (`x-men-object`, the storage key, signed
as one more line "x-men-object=V\\n"), so that they never serve another upload under the same id.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime, timezone
import re
from urllib.parse import quote_plus

from common.clock import Clock, rfc3339
from common.errors import BadRequest, Forbidden

EXPIRE = "x-men-expire"
TENANT = "tenant_id"
SIGNATURE = "x-men-signature"
OBJECT = "x-men-object"


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _quote(value: str) -> str:
    """A query value as urllib's `urlencode` writes it (`quote_plus`), without its cost for
    values that need no quoting (ids)."""
    return value if _UNRESERVED.fullmatch(value) else quote_plus(value)


class LinkSigner:
    """Signs and verifies links for one secret; time comes from the injected clock."""

    def __init__(self, secret: bytes, clock: Clock):
        if len(secret) < 16:
            raise ValueError("the link secret must have at least 16 bytes")
        self._secret = secret
        self._clock = clock
        self._last: tuple | None = None  # (the arguments of the last `sign`, its query string)

    def _mac(self, method: str, path: str, expire: str, tenant: str, obj: str | None) -> str:
        message = f"{method.upper()}\n{path}\n{EXPIRE}={expire}\n{TENANT}={tenant}\n"
        if obj is not None:
            message += f"{OBJECT}={obj}\n"
        digest = hmac.digest(self._secret, message.encode("utf-8", "surrogatepass"), "sha256")
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, method: str, path: str, tenant: str, expires_in: int, obj: str | None = None) -> tuple[str, float]:
        """The query string for `path` (naming object `obj` if given), and the expiry time (Unix seconds).

        The answer depends on nothing else (and the second it is made in), so the last one is kept:
        the devices of a deployment wave, polling within the same second, get the same link."""
        expire_ts = float(int(self._clock.now()) + int(expires_in))
        key = (method, path, tenant, expire_ts, obj)
        last = self._last
        if last is not None and last[0] == key:
            return last[1], expire_ts
        expire = rfc3339(expire_ts)
        signature = self._mac(method, path, expire, tenant, obj)
        query = f"{EXPIRE}={_quote(expire)}&{TENANT}={_quote(tenant)}"
        if obj is not None:
            query += f"&{OBJECT}={_quote(obj)}"
        query += f"&{SIGNATURE}={signature}"  # base64url: nothing to quote
        self._last = (key, query)
        return query, expire_ts

    def verify(self, method: str, path: str, args) -> tuple[str, str | None]:
        """Check a request's signature and expiry; return the signed tenant id and object (None
        in links made before links named their object).
        BadRequest when parameters are missing or malformed, Forbidden when expired or tampered."""
        expire = args.get(EXPIRE)
        signature = args.get(SIGNATURE)
        tenant = args.get(TENANT, "")
        obj = args.get(OBJECT)
        if not expire or not signature:
            raise BadRequest(f"missing {EXPIRE} or {SIGNATURE}")
        try:
            expire_ts = datetime.strptime(expire, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise BadRequest(f"{EXPIRE}: not an RFC 3339 UTC time") from None
        if not hmac.compare_digest(self._mac(method, path, expire, tenant, obj).encode(),
                                   signature.encode("utf-8", "surrogatepass")):
            raise Forbidden("invalid link signature")
        if expire_ts < self._clock.now():
            raise Forbidden("the link has expired")
        return tenant, obj
