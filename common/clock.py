"""Injectable time source, so that expiry and ordering rules can be tested."""

from __future__ import annotations

import time
from datetime import datetime, timezone


class Clock:
    """Wall-clock time. Tests substitute a FrozenClock."""

    def now(self) -> float:
        return time.time()

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=timezone.utc)


class FrozenClock(Clock):
    """A clock that only moves when told to."""

    def __init__(self, start: float | None = None):
        self.t = time.time() if start is None else start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def rfc3339(ts: float | datetime) -> str:
    """UTC timestamp as RFC 3339 with second precision and a Z suffix (as Mender prints them)."""
    if not isinstance(ts, datetime):
        if 0 <= ts < 253402300800:  # years 1970-9999: the C library's gmtime, without datetime objects
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
        ts = datetime.fromtimestamp(ts, tz=timezone.utc)
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_ms(ts: float | datetime) -> str:
    """UTC timestamp as RFC 3339 with milliseconds."""
    if not isinstance(ts, datetime):
        ts = datetime.fromtimestamp(ts, tz=timezone.utc)
    ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def utc_datetime(ts: float | None) -> datetime | None:
    """Unix seconds as the timezone-aware datetime MongoDB stores (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)


def unix_seconds(value: datetime | float | None) -> float | None:
    """A stored time back as Unix seconds: a datetime (naive ones are UTC, as a client without
    `tz_aware` returns them) or a number; None stays None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return float(value)
