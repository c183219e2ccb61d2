"""Regular expressions for `$regex` predicates: RE2 (linear time, so no pattern can hang a worker)."""

from __future__ import annotations

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


@lru_cache(maxsize=256)
def compile_regex(pattern: str, flags: str = ""):
    """The compiled pattern, or None when RE2 cannot compile it (such a filter matches nothing)."""
    if set(flags) - set("ims"):
        return None  # RE2 has no verbose mode ('x'); unknown flags make the filter match nothing
    inline = "".join(f for f in "ims" if f in flags)
    try:
        return re2.compile(f"(?{inline}){pattern}" if inline else pattern, _OPTIONS)
    except re2.error:
        return None
    except Exception:  # RE2 raises plain errors for some inputs (e.g. invalid UTF-8)
        return None


def regex_match(pattern: str, flags: str, value) -> int:
    """SQLite function: 1 when `value` (a string) matches, else 0."""
    if not isinstance(value, str):
        return 0
    compiled = compile_regex(pattern, flags)
    return 1 if compiled is not None and compiled.search(value) is not None else 0
