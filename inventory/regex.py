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


MAX_UNBOUNDED_REPEATS = 3


def backtracking_risk(pattern: str) -> str | None:
    """Why MongoDB's PCRE, which backtracks, could take exponential or high polynomial time on
    this pattern (None when it cannot): a repeat inside a repeat (`(a+)+`, `(a*b?)*`), an
    alternation under a repeat (`(a|ab)*`), or more than MAX_UNBOUNDED_REPEATS unbounded repeats
    (`.*a.*b.*c.*d`). RE2 runs every pattern in linear time, but the same filter must be safe on
    both backends, so these are refused on both. A pattern this check cannot parse is refused too."""
    import re._parser as sre_parse
    import re._constants as c

    try:
        tree = sre_parse.parse(pattern)
    except Exception:  # RE2 syntax that Python's parser does not know: not provably safe
        return "a construct this server cannot check"
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT))
    unbounded = 0

    def walk(items, under_repeat: bool) -> str | None:
        nonlocal unbounded
        for op, av in items:
            if op in repeats:
                low, high, body = av
                if high == c.MAXREPEAT:
                    unbounded += 1
                if high > 1:
                    if under_repeat:
                        return "a repeat inside a repeat"
                    why = walk(body, True)
                else:
                    why = walk(body, under_repeat)
            elif op == c.BRANCH:
                if under_repeat:
                    return "an alternation inside a repeat"
                why = next((w for b in av[1] if (w := walk(b, under_repeat))), None)
            elif op == c.SUBPATTERN:
                why = walk(av[-1], under_repeat)
            elif op in (c.ASSERT, c.ASSERT_NOT):
                why = walk(av[1], under_repeat)
            else:
                why = None
            if why:
                return why
        return None

    why = walk(tree, False)
    if why is None and unbounded > MAX_UNBOUNDED_REPEATS:
        why = f"more than {MAX_UNBOUNDED_REPEATS} unbounded repeats"
    return why


def regex_match(pattern: str, flags: str, value) -> int:
    """SQLite function: 1 when `value` (a string) matches, else 0."""
    if not isinstance(value, str):
        return 0
    compiled = compile_regex(pattern, flags)
    return 1 if compiled is not None and compiled.search(value) is not None else 0
