"""Compile search conditions into SQL over `inventory_devices d`: each attribute predicate
becomes `d.id [NOT] IN (an index range on inventory_attributes)`."""

from __future__ import annotations

from typing import Sequence

from inventory.model import Cond

_SUB = "SELECT device_id FROM inventory_attributes WHERE tenant_id = ? AND scope = ? AND name = ?"
_CMP = {"eq": "=", "ne": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")


def literal_prefix(pattern: str, flags: str) -> str:
    """The literal text every match of an anchored `^(?:…)` pattern starts with ('' if unknown)."""
    if flags or "|" in pattern or not pattern.startswith("^(?:"):
        return ""
    body = pattern[4:]
    prefix = []
    for i, ch in enumerate(body):
        if ch in _REGEX_SPECIAL:
            if ch in "*?{" and prefix:  # the last literal is optional or repeated
                prefix.pop()
            break
        prefix.append(ch)
    return "".join(prefix)


def _value_subquery(tenant: str, c: Cond, params: list) -> str:
    """A subquery of the device ids having an attribute value that satisfies `c` (op as eq/in)."""
    parts = []
    op = c.op
    if op in ("eq", "ne", "in", "nin"):
        if c.strs:
            parts.append((f"{_SUB} AND value_str IN ({','.join('?' * len(c.strs))})",
                          [tenant, c.scope, c.name, *c.strs]))
        if c.nums:
            parts.append((f"{_SUB} AND value_num IN ({','.join('?' * len(c.nums))})",
                          [tenant, c.scope, c.name, *c.nums]))
    elif op in ("gt", "gte", "lt", "lte"):
        column, value = ("value_str", c.strs[0]) if c.strs else ("value_num", c.nums[0])
        parts.append((f"{_SUB} AND {column} {_CMP[op]} ?", [tenant, c.scope, c.name, value]))
    elif op == "exists":
        parts.append((_SUB, [tenant, c.scope, c.name]))
    elif op == "regex":
        sql, extra = f"{_SUB} AND inv_regexp(?, ?, value_str)", [c.regex, c.flags]
        prefix = literal_prefix(c.regex, c.flags)
        if prefix and ord(prefix[-1]) < 0x10FFFF:
            upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            sql = f"{_SUB} AND value_str >= ? AND value_str < ? AND inv_regexp(?, ?, value_str)"
            extra = [prefix, upper, c.regex, c.flags]
        parts.append((sql, [tenant, c.scope, c.name, *extra]))
    if not parts:
        return ""
    for _, p in parts:
        params.extend(p)
    return " UNION ALL ".join(sql for sql, _ in parts)


def _id_condition(c: Cond, params: list) -> str:
    op = c.op
    if op == "exists":
        return "1" if c.exists else "0"
    if op == "regex":
        params.extend([c.regex, c.flags])
        return "inv_regexp(?, ?, d.id)"
    if op in ("eq", "ne", "in", "nin"):
        if not c.strs:
            return "1" if op in ("ne", "nin") else "0"
        params.extend(c.strs)
        negate = "NOT " if op in ("ne", "nin") else ""
        return f"d.id {negate}IN ({','.join('?' * len(c.strs))})"
    if not c.strs:  # a number never compares with an id
        return "0"
    params.append(c.strs[0])
    return f"d.id {_CMP[op]} ?"


def build_search(tenant: str, conds: Sequence[Cond]) -> tuple[str, list]:
    """WHERE clause (over `inventory_devices d`) and its parameters."""
    clauses = ["d.tenant_id = ?"]
    params: list = [tenant]
    for c in conds:
        if c.op == "regex" and not c.valid_regex:
            return "0", []  # an invalid pattern matches nothing (as Mender)
        if c.on_id:
            clauses.append(_id_condition(c, params))
            continue
        negate = c.op in ("ne", "nin") or (c.op == "exists" and not c.exists)
        sub = _value_subquery(tenant, c, params)
        if not sub:
            clauses.append("1" if negate else "0")
            continue
        clauses.append(f"d.id {'NOT ' if negate else ''}IN ({sub})")
    return " AND ".join(clauses), params
