"""Which strings a name may be: printable text, as Mender's `unicode.IsGraphic` checks."""

from __future__ import annotations

import unicodedata

from common.errors import BadRequest

# Unicode general categories that are not text one can see or type: controls (NUL, CR, LF, ESC…),
# format characters (bidirectional overrides and marks, zero-width joiners), surrogates, private
# use, unassigned code points, and the line and paragraph separators.
_NOT_PRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def is_printable(text: str, allow_newlines: bool = False) -> bool:
    """Whether every character of `text` is printable: letters, marks, digits, punctuation,
    symbols and spaces (Go's `unicode.IsGraphic`). `allow_newlines` also lets LF, CR and TAB
    through (multi-line text such as release notes)."""
    if text.isprintable():  # the common case, at C speed; it refuses the non-ASCII spaces too
        return True
    for ch in text:
        if allow_newlines and ch in "\n\r\t":
            continue
        if unicodedata.category(ch) in _NOT_PRINTABLE:
            return False
    return True


def check_printable(text: str, field: str, allow_newlines: bool = False) -> str:
    """`text` when it is printable (see `is_printable`), else BadRequest naming the field."""
    if not is_printable(text, allow_newlines):
        raise BadRequest(f"{field}: only printable characters are allowed")
    return text


def validate_printable(text: str) -> None:
    """A marshmallow validator: printable text (see `is_printable`)."""
    from marshmallow import ValidationError
    if isinstance(text, str) and not is_printable(text):
        raise ValidationError("only printable characters are allowed")


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_controls(text: str) -> str:
    """`text` with every character `is_printable` refuses written as a backslash escape (`\\n`,
    `\\r`, `\\t`, `\\xNN`, `\\uNNNN`, `\\UNNNNNNNN`) and the backslash itself doubled: one line of
    text whatever it holds (no CR/LF, terminal escape or bidirectional override reaches a reader),
    and the original recoverable."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable() or unicodedata.category(ch) not in _NOT_PRINTABLE:
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)
