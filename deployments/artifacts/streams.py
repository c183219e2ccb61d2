"""Small file-like adapters for streaming: hash while reading, cap what may be read, tee to a sink."""

from __future__ import annotations

import hashlib
import io
from typing import Callable, Iterator

CHUNK = 1024 * 1024


class StreamError(Exception):
    """Reading the source or writing the sink of a TeeReader failed; `.original` says why.
    Not an OSError, so that parsers never mistake it for a malformed input."""

    def __init__(self, side: str, original: BaseException):
        super().__init__(f"{side}: {original!r}")
        self.side = side  # "source" or "sink"
        self.original = original


class HashingReader(io.RawIOBase):
    """Reads from `raw`, keeping the SHA-256 and the count of every byte that passes."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else CHUNK)
        if data:
            self.sha256.update(data)
            self.count += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class LimitedReader(io.RawIOBase):
    """Reads from `raw` until `limit` bytes have passed, then calls `on_exceed()` (which raises)."""

    def __init__(self, raw, limit: int, on_exceed: Callable[[], None]):
        self._raw = raw
        self._left = limit
        self._on_exceed = on_exceed

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = size if size is not None and size >= 0 else CHUNK
        data = self._raw.read(min(want, self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            self._on_exceed()
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class TeeReader(io.RawIOBase):
    """A file-like over an iterator of byte chunks; every byte handed out is also written to `sink`.

    This is how an upload is stored and parsed in one pass: the parser pulls, the storage
    writer receives exactly the bytes pulled, and `drain()` passes on whatever the parser left.
    `limit` caps the total (then `on_exceed()` raises)."""

    def __init__(self, chunks: Iterator[bytes], sink: Callable[[bytes], None], limit: int | None = None,
                 on_exceed: Callable[[], None] | None = None):
        self._chunks = chunks
        self._sink = sink
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.count = 0
        self._limit = limit
        self._on_exceed = on_exceed

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        while self._pos >= len(self._buf) and not self._eof:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                self._eof = True
                self._buf = b""
            except Exception as exc:
                raise StreamError("source", exc) from exc
            self._pos = 0
        return not self._eof or self._pos < len(self._buf)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        if size == 0 or not self._fill():
            return b""
        end = min(len(self._buf), self._pos + size)
        data = self._buf[self._pos:end] if (self._pos or end < len(self._buf)) else self._buf
        self._pos = end
        self.count += len(data)
        if self._limit is not None and self.count > self._limit and self._on_exceed:
            self._on_exceed()
        try:
            self._sink(data)
        except Exception as exc:
            raise StreamError("sink", exc) from exc
        return bytes(data)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def drain(self, check: Callable[[bytes], None] | None = None) -> None:
        """Pass the rest of the input to the sink; `check(chunk)` may reject it."""
        while True:
            data = self.read(CHUNK)
            if not data:
                return
            if check:
                check(data)


def file_chunks(fileobj, chunk: int = CHUNK) -> Iterator[bytes]:
    """Iterate a binary file-like in chunks."""
    while True:
        data = fileobj.read(chunk)
        if not data:
            return
        yield data
