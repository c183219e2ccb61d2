"""Inventory values, attributes and compiled search conditions: plain data and validation rules."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadRequest
from common.text import check_printable

SCOPE_IDENTITY = "identity"
SCOPE_INVENTORY = "inventory"
SCOPE_SYSTEM = "system"
SCOPE_MONITOR = "monitor"
SCOPE_TAGS = "tags"
SCOPES = (SCOPE_SYSTEM, SCOPE_IDENTITY, SCOPE_INVENTORY, SCOPE_MONITOR, SCOPE_TAGS)

# system-scope attribute names the server maintains
ATTR_GROUP = "group"
ATTR_STATUS = "status"
ATTR_CREATED = "created_ts"
ATTR_UPDATED = "updated_ts"
ATTR_CHECK_IN = "check_in_time"

# limits (documented in docs/inventory.md); attribute and tag counts are settings
MAX_NAME_LENGTH = 1024          # characters of an attribute name
MAX_DESCRIPTION_LENGTH = 1024   # characters of a description
MAX_VALUE_BYTES = 16 * 1024     # UTF-8 bytes of a value (an array: all its elements together)
MAX_ARRAY_ELEMENTS = 1024       # elements of an array value
MAX_GROUP_LENGTH = 256
GROUP_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
STATUSES = ("pending", "accepted", "rejected", "preauthorized", "noauth")


@dataclass(slots=True)
class Attribute:
    """One attribute: value is a str, a float, or a list of str or of float."""

    scope: str
    name: str
    value: Any
    description: str | None = None
    timestamp: float | None = None  # tags only: when it was last set

    def key(self) -> tuple[str, str]:
        return (self.scope, self.name)

    def same_content(self, other: "Attribute") -> bool:
        return self.value == other.value and (self.description or None) == (other.description or None)


@dataclass(slots=True)
class Device:
    """A device's inventory: its attributes (ordered by scope and name; only the scopes or names a
    read asked for), `version` (bumped by every write, for optimistic concurrency), `revision`
    (the status revision from devauth) and the ETag of its tags."""

    id: str
    created_ts: float
    updated_ts: float
    version: int = 0
    revision: int = 0
    tags_etag: str = ""
    attributes: list[Attribute] = field(default_factory=list)


@dataclass(slots=True)
class Filter:
    """A saved search: v2 predicates `{scope, attribute, type, value}`."""

    id: str
    name: str
    terms: list[dict]
    created_ts: float = 0.0


@dataclass(slots=True)
class AttributeCount:
    """How many devices have an attribute (the filter attributes list)."""

    scope: str
    name: str
    count: int


@dataclass(slots=True)
class AttributeValueCount:
    """How many devices of a set hold a value of an attribute (an array counts each element)."""

    scope: str
    name: str
    value: str | float
    count: int


def check_group_name(name: Any) -> str:
    """A valid group name, or BadRequest."""
    if not isinstance(name, str) or not name:
        raise BadRequest("group: must be a non-empty string")
    if len(name) > MAX_GROUP_LENGTH:
        raise BadRequest(f"group: at most {MAX_GROUP_LENGTH} characters")
    if not GROUP_NAME.fullmatch(name):  # match() with `$` would let a trailing newline through
        raise BadRequest("group: only letters, digits, '_' and '-' are allowed")
    return name


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{where}: must be a string, a number, or an array of strings or of numbers")
    try:
        number = float(value)
    except OverflowError:
        raise BadRequest(f"{where}: number out of range") from None
    if not math.isfinite(number):
        raise BadRequest(f"{where}: number must be finite")
    return number


def check_value(value: Any, where: str = "value") -> Any:
    """Normalize a JSON attribute value: str, float, list[str] or list[float]; BadRequest otherwise."""
    if isinstance(value, str):
        if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise BadRequest(f"{where}: longer than {MAX_VALUE_BYTES} bytes")
        return value
    if isinstance(value, list):
        if len(value) > MAX_ARRAY_ELEMENTS:
            raise BadRequest(f"{where}: more than {MAX_ARRAY_ELEMENTS} elements")
        if all(isinstance(v, str) for v in value):
            if sum(len(v.encode("utf-8", "surrogatepass")) for v in value) > MAX_VALUE_BYTES:
                raise BadRequest(f"{where}: longer than {MAX_VALUE_BYTES} bytes")
            return list(value)
        if any(isinstance(v, str) for v in value):
            raise BadRequest(f"{where}: mixed-type arrays are not allowed")
        return [_number(v, where) for v in value]
    return _number(value, where)


def parse_attributes(body: Any, scope: str, *, limit: int | None = None, allow_scope: bool = False,
                     string_only: bool = False) -> list[Attribute]:
    """Validate a request body `[{name, value, description?}]` into attributes of `scope`.

    With `allow_scope`, each item may carry its own `scope` (internal API). Raises BadRequest
    naming the first bad item.
    """
    if not isinstance(body, list):
        raise BadRequest("body: must be a JSON array of attributes")
    if limit is not None and len(body) > limit:
        raise BadRequest(f"too many attributes: at most {limit}")
    allowed = {"name", "value", "description"} | ({"scope", "timestamp"} if allow_scope else set())
    if string_only:
        allowed.add("timestamp")
    seen: set[tuple[str, str]] = set()
    out = []
    for i, item in enumerate(body):
        where = f"[{i}]"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: must be an object")
        unknown = set(item) - allowed
        if unknown:
            raise BadRequest(f"{where}.{sorted(unknown)[0]}: unknown field")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.name: must be a non-empty string")
        if len(name) > MAX_NAME_LENGTH:
            raise BadRequest(f"{where}.name: longer than {MAX_NAME_LENGTH} characters")
        check_printable(name, f"{where}.name")
        if "value" not in item:
            raise BadRequest(f"{where}.value: missing")
        if string_only and not isinstance(item["value"], str):
            raise BadRequest(f"{where}.value: must be a string")
        value = check_value(item["value"], f"{where}.value")
        description = item.get("description")
        if description is not None:
            if not isinstance(description, str):
                raise BadRequest(f"{where}.description: must be a string")
            if len(description) > MAX_DESCRIPTION_LENGTH:
                raise BadRequest(f"{where}.description: longer than {MAX_DESCRIPTION_LENGTH} characters")
        item_scope = scope
        if allow_scope and item.get("scope") is not None:
            item_scope = item["scope"]
            if item_scope not in SCOPES:
                raise BadRequest(f"{where}.scope: must be one of {', '.join(SCOPES)}")
        key = (item_scope, name)
        if key in seen:
            raise BadRequest(f"{where}.name: duplicate attribute {name!r}")
        seen.add(key)
        out.append(Attribute(item_scope, name, value, description or None))
    return out


# --------------------------------------------------------------------------- search conditions

# `$ltne`: below the value, or the attribute absent (Mender's, for "not seen since": an accepted
# device that never reported a time counts as old)
OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$ltne", "$in", "$nin", "$exists", "$regex")
MAX_IN_VALUES = 1000
MAX_REGEX_LENGTH = 1024


@dataclass(frozen=True)
class Cond:
    """One compiled predicate on attribute (scope, name), or on the device id when `on_id`.

    op: eq ne gt gte lt lte ltne in nin exists regex text. For eq/gt/…: one value in `strs` or `nums`
    (ltne: some value below it, or no value at all);
    in/nin: any number in both (a value matches if it equals one of them); exists: `exists`;
    regex: `regex` (an anchored pattern) and `flags` ('' or letters of 'imsx'); text: one folded
    word in `strs` that must start a value of TEXT_SCOPES or the id (scope and name unused).
    """

    scope: str
    name: str
    op: str
    strs: tuple[str, ...] = ()
    nums: tuple[float, ...] = ()
    exists: bool = True
    regex: str = ""
    flags: str = ""
    on_id: bool = False
    valid_regex: bool = field(default=True, compare=False)


_REGEX_WITH_FLAGS = re.compile(r"^/(.*)/([a-zA-Z]*)$", re.S)


def parse_regex(raw: str) -> tuple[str, str]:
    """Mender's regex value: `pattern` or `/pattern/flags`; anchored at the start."""
    pattern, flags = raw, ""
    m = _REGEX_WITH_FLAGS.match(raw)
    if m:
        pattern, flags = m.group(1), m.group(2)
    return "^(?:" + pattern + ")", flags


def regex_compiles(pattern: str, flags: str) -> bool:
    """Whether the pattern is usable (RE2 syntax, known flags)."""
    from inventory.regex import compile_regex
    return compile_regex(pattern, flags) is not None


def compile_predicate(pred: Any, where: str = "filters") -> Cond:
    """A v2 predicate `{scope, attribute, type, value}` → Cond; BadRequest for bad input."""
    if not isinstance(pred, dict):
        raise BadRequest(f"{where}: must be an object")
    unknown = set(pred) - {"scope", "attribute", "type", "value"}
    if unknown:
        raise BadRequest(f"{where}.{sorted(unknown)[0]}: unknown field")
    scope, name, op = pred.get("scope"), pred.get("attribute"), pred.get("type")
    if scope not in SCOPES:
        raise BadRequest(f"{where}.scope: must be one of {', '.join(SCOPES)}")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"{where}.attribute: must be a non-empty string of at most {MAX_NAME_LENGTH} characters")
    if op not in OPERATORS:
        raise BadRequest(f"{where}.type: unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    if "value" not in pred:
        raise BadRequest(f"{where}.value: missing")
    value = pred["value"]
    on_id = scope == SCOPE_IDENTITY and name == "id"
    kind = op[1:]
    if op == "$exists":
        if not isinstance(value, bool):
            raise BadRequest(f"{where}.value: $exists takes true or false")
        return Cond(scope, name, "exists", exists=value, on_id=on_id)
    if op == "$regex":
        if not isinstance(value, str) or len(value) > MAX_REGEX_LENGTH:
            raise BadRequest(f"{where}.value: $regex takes a string of at most {MAX_REGEX_LENGTH} characters")
        pattern, flags = parse_regex(value)
        valid = regex_compiles(pattern, flags)
        if valid:  # one that RE2 refuses matches nothing (Mender's behaviour); one PCRE could hang on, 400
            from inventory.regex import backtracking_risk
            risk = backtracking_risk(pattern)
            if risk:
                raise BadRequest(f"{where}.value: $regex refused: {risk} (a backtracking engine could take "
                                 "exponential time on it)")
        return Cond(scope, name, "regex", regex=pattern, flags=flags, on_id=on_id, valid_regex=valid)
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise BadRequest(f"{where}.value: {op} takes an array")
        if len(value) > MAX_IN_VALUES:
            raise BadRequest(f"{where}.value: at most {MAX_IN_VALUES} values")
        strs = tuple(v for v in value if isinstance(v, str))
        nums = tuple(_number(v, f"{where}.value") for v in value if not isinstance(v, str))
        return Cond(scope, name, kind, strs=strs, nums=nums, on_id=on_id)
    if isinstance(value, list):
        raise BadRequest(f"{where}.value: {op} takes a string or a number (use $in for several values)")
    value = check_value(value, f"{where}.value")
    if isinstance(value, str):
        return Cond(scope, name, kind, strs=(value,), on_id=on_id)
    return Cond(scope, name, kind, nums=(value,), on_id=on_id)


# Free-text search (`text` of SearchParams): each word must start a string value of the device's
# identity, inventory or tags attributes, or its id; ASCII letters compare case-insensitively.
TEXT_SCOPES = (SCOPE_IDENTITY, SCOPE_INVENTORY, SCOPE_TAGS)
MAX_TEXT_WORDS = 8
MAX_TEXT_LENGTH = 256
TEXT_VALUE_CHARS = 128  # how much of a value the MongoDB store keeps for text search
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def text_fold(value: str) -> str:
    """ASCII lower case, as SQLite's lower(): the one case folding of text search."""
    return value.translate(_ASCII_LOWER)


def text_conditions(text: Any) -> list[Cond]:
    """The words of a free-text query → one `text` condition each (all must match)."""
    if text is None or text == "":
        return []
    if not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH:
        raise BadRequest(f"text: must be a string of at most {MAX_TEXT_LENGTH} characters")
    words = list(dict.fromkeys(text_fold(w)[:TEXT_VALUE_CHARS] for w in text.split()))
    if len(words) > MAX_TEXT_WORDS:
        raise BadRequest(f"text: at most {MAX_TEXT_WORDS} words")
    return [Cond("", "", "text", strs=(w,)) for w in words]


def text_values(attributes) -> list[str]:
    """The folded string values text search looks at (MongoDB keeps them on the device)."""
    out: dict[str, None] = {}
    for a in attributes:
        if a.scope not in TEXT_SCOPES or (a.scope == SCOPE_IDENTITY and a.name == ATTR_STATUS):
            continue
        for v in (a.value if isinstance(a.value, list) else [a.value]):
            if isinstance(v, str) and v:
                out[text_fold(v[:TEXT_VALUE_CHARS])] = None
    return list(out)


def id_condition(ids: list[str]) -> Cond:
    return Cond(SCOPE_IDENTITY, "id", "in", strs=tuple(ids), on_id=True)


def in_groups(groups) -> Cond:
    """Devices in one of `groups` (a role limited to device groups)."""
    return Cond(SCOPE_SYSTEM, ATTR_GROUP, "in", strs=tuple(sorted(groups)))


def eq(scope: str, name: str, value: str | float) -> Cond:
    if isinstance(value, str):
        return Cond(scope, name, "eq", strs=(value,))
    return Cond(scope, name, "eq", nums=(float(value),))


class EstimatedCount(int):
    """A search total estimated from a sample rather than counted (SQLite, when an exact count
    would probe more than COUNT_EXACT_CANDIDATES devices); the API says so in a header."""


@dataclass(frozen=True)
class Sort:
    scope: str
    name: str
    descending: bool = False
