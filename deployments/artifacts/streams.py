"""Small file-like adapters for streaming: hash while reading, cap what may be read, tee to a sink,
decompress with bounded memory and count what comes out."""

from __future__ import annotations

import hashlib
import io
import lzma
import zlib
from typing import Callable, Iterator

import zstandard

CHUNK = 1024 * 1024
INPUT_CHUNK = 64 * 1024


class ReadOnlyStream(io.RawIOBase):
    """Base of the readers below: subclasses define `read(size)`."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class StreamError(Exception):
    """Reading the source or writing the sink of a TeeReader failed; `.original` says why.
    Not an OSError, so that parsers never mistake it for a malformed input."""

    def __init__(self, side: str, original: BaseException):
        super().__init__(f"{side}: {original!r}")
        self.side = side  # "source" or "sink"
        self.original = original


class HashingReader(ReadOnlyStream):
    """Reads from `raw`, keeping the SHA-256 and the count of every byte that passes."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else CHUNK)
        if data:
            self.sha256.update(data)
            self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class LimitedReader(ReadOnlyStream):
    """Reads from `raw` until `limit` bytes have passed, then calls `on_exceed()` (which raises)."""

    def __init__(self, raw, limit: int, on_exceed: Callable[[], None]):
        self._raw = raw
        self._left = limit
        self._on_exceed = on_exceed

    def read(self, size: int = -1) -> bytes:
        want = size if size is not None and size >= 0 else CHUNK
        data = self._raw.read(min(want, self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            self._on_exceed()
        return data


class TeeReader(ReadOnlyStream):
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


class DecompressError(Exception):
    """The compressed stream is corrupt or needs more decoder memory than allowed."""


class _Decompressing(ReadOnlyStream):
    """gzip (zlib) or xz (lzma) as a readable stream: each `read(n)` returns at most `n` bytes, and
    input is pulled in INPUT_CHUNK pieces, so memory stays bounded whatever the stream claims.
    Concatenated members/streams are read on (as gzip and xz do); zero padding between them is skipped."""

    def __init__(self, raw, new_decoder: Callable[[], object], errors: tuple):
        self._raw = raw
        self._new = new_decoder
        self._errors = errors
        self._dec = new_decoder()
        self._input = b""
        self._eof = False

    def _next_member(self) -> bool:
        """After a member's end: start the next one, or report the end of the stream."""
        rest = self._dec.unused_data + self._input
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._raw.read(INPUT_CHUNK)
            if not rest:
                return False
        self._dec = self._new()
        self._input = rest
        return True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        while size and not self._eof:
            dec = self._dec
            if dec.eof:
                if not self._next_member():
                    self._eof = True
                    break
                continue
            ended = False
            if not self._input and getattr(dec, "needs_input", True):
                self._input = self._raw.read(INPUT_CHUNK)
                ended = not self._input
            try:
                data = dec.decompress(self._input, size)
            except self._errors as exc:
                raise DecompressError(str(exc) or type(exc).__name__) from None
            # zlib keeps what it did not consume in unconsumed_tail; lzma keeps it inside
            self._input = getattr(dec, "unconsumed_tail", b"")
            if data:
                return data
            if ended and not dec.eof:
                raise DecompressError("truncated compressed stream")
        return b""


class _Zstd(ReadOnlyStream):
    """zstd through zstandard's stream reader (it returns at most the bytes asked for)."""

    def __init__(self, raw, max_window: int):
        self._reader = zstandard.ZstdDecompressor(max_window_size=max_window).stream_reader(
            raw, read_size=INPUT_CHUNK, read_across_frames=True, closefd=False)

    def read(self, size: int = -1) -> bytes:
        try:
            return self._reader.read(CHUNK if size is None or size < 0 else size)
        except zstandard.ZstdError as exc:
            raise DecompressError(str(exc)) from None


def decompressing(suffix: str | None, raw, *, xz_memory: int, zstd_window: int):
    """A readable stream of `raw` decompressed by its file suffix (`.gz`, `.xz`, `.zst`, or none).
    Reads raise DecompressError on corrupt input or a decoder that would need more memory."""
    if not suffix:
        return raw
    if suffix == ".gz":
        return _Decompressing(raw, lambda: zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), (zlib.error,))
    if suffix == ".xz":
        return _Decompressing(raw, lambda: lzma.LZMADecompressor(memlimit=xz_memory), (lzma.LZMAError,))
    if suffix == ".zst":
        return _Zstd(raw, zstd_window)
    raise ValueError(f"unknown compression {suffix!r}")


class CountingReader(ReadOnlyStream):
    """Reads from `raw` and reports every byte count to `spend(n)` (which may raise)."""

    def __init__(self, raw, spend: Callable[[int], None]):
        self._raw = raw
        self._spend = spend

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(CHUNK if size is None or size < 0 else size)
        if data:
            self._spend(len(data))
        return data

