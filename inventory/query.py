"""Search requests → conditions: the v1 query-string form and the v2 `SearchParams` body."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from common.errors import BadRequest
from common.limits import MAX_PER_PAGE
from inventory.model import (ATTR_GROUP, MAX_NAME_LENGTH, SCOPE_INVENTORY, SCOPE_SYSTEM, SCOPES, Cond, Sort,
                             check_group_name, compile_predicate, id_condition, text_conditions)

MAX_FILTERS = 100
MAX_SORT_KEYS = 10
MAX_SELECT = 500
MAX_DEVICE_IDS = 10000
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_V1_SORT = re.compile(r"^(?:([A-Za-z]+)/)?([^:,/]+)(?::(asc|desc))?$")


@dataclass
class SearchQuery:
    conds: list[Cond] = field(default_factory=list)
    sort: list[Sort] = field(default_factory=list)
    page: int = 1
    per_page: int = 20
    select: list[tuple[str, str]] | None = None
    empty: bool = False  # known to match nothing (e.g. an unknown scope in a v1 filter)


def _int(value: Any, name: str, default: int, upper: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{name}: must be an integer")
    if value < 1 or value > upper:
        raise BadRequest(f"{name}: must be between 1 and {upper}")
    return value


def _scoped(item: Any, where: str) -> tuple[str, str]:
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: must be an object")
    scope, name = item.get("scope"), item.get("attribute")
    if scope not in SCOPES:
        raise BadRequest(f"{where}.scope: must be one of {', '.join(SCOPES)}")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        raise BadRequest(f"{where}.attribute: must be a non-empty string")
    return scope, name


def compile_filters(filters: Any, where: str = "filters") -> list[Cond]:
    """A list of v2 predicates → conditions (BadRequest for anything malformed)."""
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise BadRequest(f"{where}: must be an array")
    if len(filters) > MAX_FILTERS:
        raise BadRequest(f"{where}: at most {MAX_FILTERS} predicates")
    return [compile_predicate(p, f"{where}[{i}]") for i, p in enumerate(filters)]


def parse_search_params(body: Any) -> SearchQuery:
    """The v2 `SearchParams` body (may be empty) → SearchQuery."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    unknown = set(body) - {"page", "per_page", "filters", "sort", "attributes", "device_ids", "text"}
    if unknown:
        raise BadRequest(f"{sorted(unknown)[0]}: unknown field")
    q = SearchQuery(page=_int(body.get("page"), "page", 1, 10**9),
                    per_page=_int(body.get("per_page"), "per_page", 20, MAX_PER_PAGE))
    q.conds = compile_filters(body.get("filters"))
    sort = body.get("sort")
    if sort is not None:
        if not isinstance(sort, list) or len(sort) > MAX_SORT_KEYS:
            raise BadRequest(f"sort: must be an array of at most {MAX_SORT_KEYS} criteria")
        for i, item in enumerate(sort):
            scope, name = _scoped(item, f"sort[{i}]")
            order = item.get("order")
            if order not in ("asc", "desc"):
                raise BadRequest(f"sort[{i}].order: must be asc or desc")
            if set(item) - {"scope", "attribute", "order"}:
                raise BadRequest(f"sort[{i}]: unknown field")
            q.sort.append(Sort(scope, name, order == "desc"))
    attributes = body.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, list) or len(attributes) > MAX_SELECT:
            raise BadRequest(f"attributes: must be an array of at most {MAX_SELECT} attributes")
        q.select = [_scoped(item, f"attributes[{i}]") for i, item in enumerate(attributes)]
        q.select.append((SCOPE_SYSTEM, "updated_ts"))  # always returned, as Mender
    device_ids = body.get("device_ids")
    if device_ids is not None:
        if (not isinstance(device_ids, list) or len(device_ids) > MAX_DEVICE_IDS
                or not all(isinstance(i, str) for i in device_ids)):
            raise BadRequest(f"device_ids: must be an array of at most {MAX_DEVICE_IDS} strings")
        q.conds.append(id_condition(device_ids))
    q.conds += text_conditions(body.get("text"))
    return q


def _v1_value(raw: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    if raw.startswith("eq:"):
        raw = raw[3:]
    nums: tuple[float, ...] = ()
    if _NUMBER.match(raw):
        try:
            number = float(raw)
            if number == number and abs(number) != float("inf"):
                nums = (number,)
        except ValueError:
            pass
    return (raw,), nums


def parse_v1_sort(raw: str | None) -> list[Sort]:
    """`[scope/]name[:asc|desc],…` (default order desc, default scope inventory)."""
    if not raw:
        return []
    out = []
    for item in raw.split(","):
        m = _V1_SORT.match(item.strip())
        if not m or (m.group(1) and m.group(1) not in SCOPES):
            raise BadRequest(f"sort: invalid criterion {item!r}; write [scope/]name[:asc|desc]")
        out.append(Sort(m.group(1) or SCOPE_INVENTORY, m.group(2), m.group(3) != "asc"))
    if len(out) > MAX_SORT_KEYS:
        raise BadRequest(f"sort: at most {MAX_SORT_KEYS} criteria")
    return out


def parse_v1_list(args: Iterable[tuple[str, str]], page: int, per_page: int) -> SearchQuery:
    """The v1 devices list query: sort, has_group, group and `[scope/]name=[eq:]value` filters."""
    q = SearchQuery(page=page, per_page=per_page)
    for key, value in args:
        if key in ("page", "per_page"):
            continue
        if key == "sort":
            q.sort = parse_v1_sort(value)
        elif key == "has_group":
            if value.lower() not in ("true", "false", "1", "0"):
                raise BadRequest("has_group: must be true or false")
            q.conds.append(Cond(SCOPE_SYSTEM, ATTR_GROUP, "exists", exists=value.lower() in ("true", "1")))
        elif key == "group":
            q.conds.append(Cond(SCOPE_SYSTEM, ATTR_GROUP, "eq", strs=(check_group_name(value),)))
        else:
            scope, sep, name = key.partition("/")
            if not sep:
                scope, name = SCOPE_INVENTORY, key
            if not name or len(name) > MAX_NAME_LENGTH:
                raise BadRequest(f"{key}: invalid attribute filter")
            if scope not in SCOPES:
                q.empty = True  # as Mender: an unsupported scope gives no results
                continue
            strs, nums = _v1_value(value)
            q.conds.append(Cond(scope, name, "in", strs=strs, nums=nums, on_id=(scope, name) == ("identity", "id")))
        if len(q.conds) > MAX_FILTERS:
            raise BadRequest(f"at most {MAX_FILTERS} filters")
    return q


SELECTION_KEYS = ("device_ids", "filters", "text")


def parse_selection(body: Any) -> list[Cond]:
    """A bulk operation's selection: `device_ids`, v2 `filters` and `text` (any of them, combined
    with AND; `"filters": []` alone selects every device). BadRequest when none is given."""
    if not isinstance(body, dict):
        raise BadRequest("body: must be a JSON object")
    if not any(k in body for k in SELECTION_KEYS):
        raise BadRequest("select devices with device_ids, filters or text")
    conds = compile_filters(body.get("filters"))
    device_ids = body.get("device_ids")
    if device_ids is not None:
        if (not isinstance(device_ids, list) or not device_ids or len(device_ids) > MAX_DEVICE_IDS
                or not all(isinstance(i, str) and i for i in device_ids)):
            raise BadRequest(f"device_ids: must be an array of 1 to {MAX_DEVICE_IDS} device ids")
        conds.append(id_condition(list(dict.fromkeys(device_ids))))
    conds += text_conditions(body.get("text"))
    return conds
