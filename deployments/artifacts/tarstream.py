"""A streaming tar reader for untrusted input: ustar, pax and GNU long names, every size bounded.

The stdlib's `tarfile` believes the sizes in headers: it reads a pax record or a GNU long name
whole, whatever its header claims, and its pax parser backtracks on long length fields
(CVE-2024-6232, still in Python 3.11.7). This reader checks each size against a limit before
reading it (`limits.MAX_PAX_HEADER`, `MAX_LONG_NAME`), keeps only the pax keywords it uses,
counts every header block against the artifact's budget and never reads past what it needs
(so the caller can check what follows the archive).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from deployments.artifacts.limits import (MAX_LONG_NAME, MAX_META_CHAIN, MAX_PAX_HEADER, Budget,
                                          InvalidArtifact, size_text)

BLOCK = 512
_CHUNK = 1024 * 1024

REGULAR = "file"
_KINDS = {b"0": REGULAR, b"\0": REGULAR, b"7": REGULAR, b"1": "hard link", b"2": "symbolic link",
          b"3": "character device", b"4": "block device", b"5": "directory", b"6": "fifo"}
_PAX_KEYS = (b"path", b"linkpath", b"size", b"mtime", b"hdrcharset")
_POSIX_MAGIC = b"ustar\x0000"
_MAX_SIZE = 1 << 63
_ZERO_BLOCK = bytes(BLOCK)
_UNSIGNED = struct.Struct("148B8x356B")  # the checksum counts its own field as 8 spaces (256)
_SIGNED = struct.Struct("148b8x356b")
_MTIME = re.compile(rb"-?[0-9]{1,20}(\.[0-9]{0,20})?")


def _fail(where: str, message: str) -> None:
    raise InvalidArtifact(f"invalid artifact: {where}: {message}")


@dataclass
class TarEntry:
    name: str
    size: int
    mtime: float
    kind: str  # REGULAR, "directory", "symbolic link" … or "type X"

    @property
    def is_regular(self) -> bool:
        return self.kind == REGULAR


def _number(field: bytes, where: str, what: str) -> int:
    """An octal (NUL/space padded) or base-256 numeric header field."""
    if field[:1] in (b"\x80", b"\xff"):
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:
            value -= 1 << (8 * (len(field) - 1))
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not all(48 <= c <= 55 for c in text):
        _fail(where, f"the {what} field of a tar header is not a number")
    return int(text, 8)


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        _fail(where, f"a file name is not UTF-8 ({raw[:100]!r})")


def parse_pax(data: bytes, where: str) -> dict[bytes, bytes]:
    """The pax records this reader uses (`path`, `linkpath`, `size`, `mtime`, `hdrcharset`);
    InvalidArtifact on a malformed record or a sparse file."""
    records: dict[bytes, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 0 and not data[pos:].strip(b"\0"):
            break  # NUL padding after the last record (some writers)
        space = data.find(b" ", pos, pos + 12)
        digits = data[pos:space] if space > pos else b""
        if not digits or not digits.isdigit():
            _fail(where, "malformed pax record length")
        length = int(digits)
        if length <= len(digits) + 3 or pos + length > end or data[pos + length - 1] != 0x0A:
            _fail(where, "malformed pax record")
        key, sep, value = data[space + 1:pos + length - 1].partition(b"=")
        if not sep or not key:
            _fail(where, "malformed pax record")
        if key.startswith(b"GNU.sparse."):
            _fail(where, "sparse files are not supported")
        if key in _PAX_KEYS:
            records[key] = value
        pos += length
    return records


class TarReader:
    """Iterate the entries of a tar stream: `next()` → TarEntry or None at the end; `read(n)` reads
    the current entry's data. `where` names the archive in errors."""

    def __init__(self, raw, budget: Budget, where: str):
        self._raw = raw
        self._budget = budget
        self._where = where
        self._left = 0      # data bytes of the current entry not yet read
        self._pad = 0       # padding after them
        self._globals: dict[bytes, bytes] = {}
        self._done = False
        self.offset = 0     # bytes consumed from `raw`

    # ------------------------------------------------------------------ raw input
    def _read_raw(self, n: int) -> bytes:
        self._budget.tick()
        data = self._raw.read(n)
        self.offset += len(data)
        return data

    def _exact(self, n: int, what: str) -> bytes:
        parts, left = [], n
        while left:
            data = self._read_raw(left)
            if not data:
                _fail(self._where, f"truncated ({what})")
            parts.append(data)
            left -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _skip(self, n: int, what: str) -> None:
        while n:
            data = self._read_raw(min(n, _CHUNK))
            if not data:
                _fail(self._where, f"truncated ({what})")
            n -= len(data)

    # ------------------------------------------------------------------ entries
    def read(self, n: int = -1) -> bytes:
        """Up to `n` bytes of the current entry's data (b"" at its end); InvalidArtifact if truncated."""
        if n is None or n < 0:
            n = _CHUNK
        n = min(n, self._left)
        if n <= 0:
            return b""
        data = self._read_raw(n)
        if not data:
            _fail(self._where, "truncated (file data)")
        self._left -= len(data)
        return data

    def _header_block(self) -> bytes | None:
        first = self._read_raw(BLOCK)
        if not first:
            return None  # end of stream on a block boundary: as good as an end-of-archive marker
        block = first if len(first) == BLOCK else first + self._exact(BLOCK - len(first), "header")
        return block

    def next(self) -> TarEntry | None:
        """The next entry (its data unread), or None after the end-of-archive marker."""
        if self._done:
            return None
        self._skip(self._left + self._pad, "file data")
        self._left = self._pad = 0
        pax: dict[bytes, bytes] = {}
        long_name: bytes | None = None
        long_link_seen = False
        chain = 0
        while True:
            block = self._header_block()
            if block is None or block == _ZERO_BLOCK:
                self._done = True
                return None
            self._budget.entry(self._where)
            self._check_sum(block)
            kind = block[156:157]
            size = _number(block[124:136], self._where, "size")
            if size < 0 or size >= _MAX_SIZE:
                _fail(self._where, "a tar header has an impossible size")
            if kind in (b"x", b"g", b"L", b"K"):
                chain += 1
                if chain > MAX_META_CHAIN:
                    _fail(self._where, f"more than {MAX_META_CHAIN} pax or GNU records in front of one file")
                limit = MAX_PAX_HEADER if kind in (b"x", b"g") else MAX_LONG_NAME
                if size > limit:
                    label = "pax header" if kind in (b"x", b"g") else "GNU long name"
                    _fail(self._where, f"a {label} of {size} bytes (at most {size_text(limit)})")
                data = self._exact(size, "pax or GNU record")
                self._skip(-size % BLOCK, "padding")
                if kind == b"x":
                    pax.update(parse_pax(data, self._where))
                elif kind == b"g":
                    self._globals.update(parse_pax(data, self._where))
                elif kind == b"L":
                    long_name = data.split(b"\0", 1)[0]
                else:
                    long_link_seen = True  # a link target: links are refused by kind below
                continue
            return self._entry(block, kind, size, {**self._globals, **pax}, long_name, long_link_seen)

    def _check_sum(self, block: bytes) -> None:
        stored = _number(block[148:156], self._where, "checksum")
        unsigned = 256 + sum(_UNSIGNED.unpack(block))
        if stored != unsigned and stored != 256 + sum(_SIGNED.unpack(block)):
            _fail(self._where, "bad tar header checksum")

    def _entry(self, block: bytes, kind: bytes, size: int, pax: dict[bytes, bytes], long_name: bytes | None,
               long_link: bool) -> TarEntry:
        if b"path" in pax:
            raw_name = pax[b"path"]
        elif long_name is not None:
            raw_name = long_name
        else:
            raw_name = block[0:100].split(b"\0", 1)[0]
            if block[257:265] == _POSIX_MAGIC:
                prefix = block[345:500].split(b"\0", 1)[0]
                if prefix:
                    raw_name = prefix + b"/" + raw_name
        if b"size" in pax:
            value = pax[b"size"]
            if not value.isdigit() or len(value) > 19:
                _fail(self._where, "malformed pax size")
            size = int(value)
        mtime: float = _number(block[136:148], self._where, "mtime")
        if b"mtime" in pax:
            if not _MTIME.fullmatch(pax[b"mtime"]):
                _fail(self._where, "malformed pax mtime")
            mtime = float(pax[b"mtime"])
        name = _text(raw_name, self._where)
        label = _KINDS.get(kind, f"type {kind!r}")
        if long_link and label == REGULAR:
            label = "hard link"
        if label == REGULAR:
            self._left, self._pad = size, -size % BLOCK
        else:
            self._done = True  # never read past a non-file: the caller refuses it
        return TarEntry(name=name, size=size, mtime=mtime, kind=label)
