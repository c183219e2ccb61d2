"""The rules for the strings an artifact declares, as Mender's.

mender-artifact (`utils.ValidateString`, which Mender's deployments service applies when it reads
an upload) allows an artifact name, artifact group, device types and the names an artifact depends
on only if every character is printable (Unicode letters, marks, numbers, punctuation, symbols and
the ASCII space: Go's `unicode.IsPrint`, Python's `str.isprintable`) and the string has at most
256 bytes. The other provides and depends keys and values, clears_artifact_provides and payload
types get the same printable rule here (they reach device inventories and the UI), bounded by the
4096 bytes Mender's deployments model allows its strings.
"""

from __future__ import annotations

from urllib.parse import quote

MAX_NAME_BYTES = 256     # mender-artifact's utils.MaxStringLength
MAX_VALUE_BYTES = 4096   # Mender deployments' lengthIn1To4096
# a description is free text (it may hold line breaks and tabs) but no other control character
_DESCRIPTION_CONTROLS = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r") | {"\x7f"}


def string_problem(value: str, max_bytes: int = MAX_VALUE_BYTES) -> str | None:
    """Why `value` is not allowed (a phrase), or None when it is."""
    if not value.isprintable():  # also refuses lone surrogates, which no encoder accepts
        bad = next(c for c in value if not c.isprintable())
        return f"contains a character that is not printable (U+{ord(bad):04X})"
    if len(value.encode("utf-8")) > max_bytes:
        return f"is longer than {max_bytes} bytes"
    return None


def description_problem(value: str) -> str | None:
    """Why a description is not allowed, or None."""
    for c in value:
        if c in _DESCRIPTION_CONTROLS or 0xD800 <= ord(c) <= 0xDFFF:
            return f"contains a control character (U+{ord(c):04X})"
    return None


def content_disposition(filename: str) -> str:
    """`attachment` naming `filename` as RFC 6266 asks, safe for any stored name: a quoted
    ASCII fallback (`filename="…"`, every character that is not printable ASCII, and `"` and `\\`,
    replaced by `_`) and, when that differs, the exact name RFC 8187-encoded (`filename*=UTF-8''…`)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="!#$&+-.^_`|~", errors="replace")
    return value
