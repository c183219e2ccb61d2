"""multipart/form-data read part by part from a stream; file contents are handed on, never spooled.

Werkzeug's form parser writes file parts to temporary files; an artifact upload must instead
flow straight into storage and the parser, so this reads the request stream itself with
werkzeug's sans-IO `MultipartDecoder`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from werkzeug.exceptions import HTTPException
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData, Preamble

from common.errors import BadRequest

READ_SIZE = 256 * 1024
MAX_FIELD = 64 * 1024       # a form field's value
MAX_HEADER_BYTES = 64 * 1024  # preamble and part headers
MAX_PARTS = 32


@dataclass
class Part:
    name: str
    filename: str | None


class MultipartReader:
    """Iterate parts with `next_part()`; read a field with `value()` or a file with `chunks()`."""

    def __init__(self, stream, boundary: str, read_size: int = READ_SIZE):
        if not boundary or len(boundary) > 200:
            raise BadRequest("multipart boundary is missing or invalid")
        self._stream = stream
        self._decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=MAX_PARTS)
        self._read_size = read_size
        self._eof = False
        self._in_part = False

    def _event(self):
        decoder = self._decoder
        while True:
            try:
                event = decoder.next_event()
            except ValueError:
                raise BadRequest("malformed multipart body") from None
            except HTTPException:
                raise BadRequest(f"too many multipart parts (at most {MAX_PARTS})") from None
            if not isinstance(event, NeedData):
                return event
            if not self._in_part and len(decoder.buffer) > MAX_HEADER_BYTES:
                raise BadRequest("malformed multipart body: no part boundary found")
            data = self._stream.read(self._read_size)
            if not data:
                if self._eof:
                    raise BadRequest("multipart body is truncated")
                self._eof = True
                decoder.receive_data(None)
            else:
                decoder.receive_data(data)

    def next_part(self) -> Part | None:
        """The next part's name and filename, or None after the last part (the body is then read to its end)."""
        if self._in_part:
            for _ in self.chunks():
                pass
        while True:
            event = self._event()
            if isinstance(event, Preamble):
                continue
            if isinstance(event, (Field, File)):
                self._in_part = True
                return Part(event.name or "", getattr(event, "filename", None))
            if isinstance(event, Epilogue):
                return None
            raise BadRequest("malformed multipart body")

    def chunks(self) -> Iterator[bytes]:
        """The current part's data, as it arrives."""
        while self._in_part:
            event = self._event()
            if not isinstance(event, Data):
                raise BadRequest("malformed multipart body")
            if not event.more_data:
                self._in_part = False
            if event.data:
                yield event.data

    def value(self, limit: int = MAX_FIELD) -> str:
        """The current part's data as text (at most `limit` bytes)."""
        parts, size = [], 0
        for data in self.chunks():
            size += len(data)
            if size > limit:
                raise BadRequest(f"a form field is longer than {limit} bytes")
            parts.append(data)
        try:
            return b"".join(parts).decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("form fields must be UTF-8") from None

    def finish(self) -> None:
        """Read to the end of the body; BadRequest if another part follows."""
        if self.next_part() is not None:
            raise BadRequest("the file must be the last part of the request")
