"""Compile search conditions into SQL over `inventory_devices d`.

The most selective positive predicate drives the query (an index range on inventory_attributes);
other predicates with a small index range are membership tests against an in-memory list, large
ones correlated `[NOT] EXISTS` probes on the attribute table's primary key (tenant, device,
scope, name) for the surviving candidates: the cost follows the candidate sets, not the fleet.
"""

from __future__ import annotations

from typing import Callable, Sequence

from inventory.model import Cond

_ATTRS = "inventory_attributes"
_CMP = {"eq": "=", "ne": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "ltne": "<"}
_REGEX_SPECIAL = set(".^$*+?()[]{}|\\")
SELECTIVITY_CAP = 20000  # index entries counted per predicate when planning a search
PIVOT = object()  # stands for an estimate's pivot among sample_search's parameters


def literal_prefix(pattern: str, flags: str) -> str:
    """The literal text every match of an anchored `^(?:…)` pattern starts with ('' if unknown)."""
    if flags or "|" in pattern or not pattern.startswith("^(?:"):
        return ""
    body = pattern[4:]
    prefix: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and not body[i + 1].isalnum():
            ch, i = body[i + 1], i + 1  # an escaped punctuation character is literal
        elif ch in _REGEX_SPECIAL:
            break
        if i + 1 < len(body) and body[i + 1] in "*?{":
            break  # this literal is optional or repeated
        prefix.append(ch)
        i += 1
    return "".join(prefix)


def negated(c: Cond) -> bool:
    """Whether `c` is written as the negation of a positive predicate (value_clause's)."""
    return c.op in ("ne", "nin", "ltne") or (c.op == "exists" and not c.exists)


def value_clause(c: Cond, a: str, probe: bool = False) -> tuple[str, list]:
    """The condition on rows of alias `a` (already restricted to the scope and name) for `c`,
    with ne/nin/exists-false expressed positively (the caller negates). In a `probe`, the value
    columns are written `+col` so that SQLite looks the device up by primary key instead of
    range-scanning a value index for every candidate."""
    a = ("+" if probe else "") + a
    op = c.op
    if op in ("eq", "ne", "in", "nin"):
        parts, params = [], []
        if c.strs:
            parts.append(f"{a}.value_str IN ({','.join('?' * len(c.strs))})")
            params += list(c.strs)
        if c.nums:
            parts.append(f"{a}.value_num IN ({','.join('?' * len(c.nums))})")
            params += list(c.nums)
        if not parts:
            return "0", []
        return ("(" + " OR ".join(parts) + ")" if len(parts) > 1 else parts[0]), params
    if op in ("gt", "gte", "lt", "lte"):
        column, value = (f"{a}.value_str", c.strs[0]) if c.strs else (f"{a}.value_num", c.nums[0])
        return f"{column} {_CMP[op]} ?", [value]
    if op == "ltne":
        # negated: its positive form is "the attribute is there and none of its values is below"
        # (a row of it with no row of the same attribute below the value)
        row = a.lstrip("+")
        column, value = ("value_str", c.strs[0]) if c.strs else ("value_num", c.nums[0])
        return (f"NOT EXISTS (SELECT 1 FROM {_ATTRS} b WHERE b.tenant_id = {row}.tenant_id"
                f" AND b.device_id = {row}.device_id AND b.scope = {row}.scope AND b.name = {row}.name"
                f" AND b.{column} < ?)"), [value]
    if op == "exists":
        return "1", []
    # regex: an index range on the literal prefix, then RE2
    prefix = literal_prefix(c.regex, c.flags)
    if prefix and ord(prefix[-1]) < 0x10FFFF:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return (f"{a}.value_str >= ? AND {a}.value_str < ? AND inv_regexp(?, ?, {a}.value_str)",
                [prefix, upper, c.regex, c.flags])
    return f"inv_regexp(?, ?, {a}.value_str)", [c.regex, c.flags]


# Text search: the partial expression index inventory_attributes_text covers exactly these rows;
# a query must repeat this condition word for word for SQLite to use it.
TEXT_ROWS = "{a}.scope IN ('identity', 'inventory', 'tags') AND ({a}.scope != 'identity' OR {a}.name != 'status')"


def _prefix_range(prefix: str) -> tuple[str, str]:
    return prefix, prefix[:-1] + chr(min(ord(prefix[-1]) + 1, 0x10FFFF))


def text_subquery(tenant: str, c: Cond) -> tuple[str, list]:
    """Device ids with a value of the text-search scopes, or an id, starting with the word."""
    low, high = _prefix_range(c.strs[0])
    return (f"SELECT device_id FROM {_ATTRS} a WHERE a.tenant_id = ? AND {TEXT_ROWS.format(a='a')}"
            " AND lower(a.value_str) >= ? AND lower(a.value_str) < ?"
            " UNION SELECT id AS device_id FROM inventory_devices WHERE tenant_id = ? AND id >= ? AND id < ?",
            [tenant, low, high, tenant, low, high])


def driver_subquery(tenant: str, c: Cond) -> tuple[str, list]:
    """Device ids having a value that satisfies `c` (as a positive predicate): an index range.
    A mixed `$in` is a UNION of a string range and a number range."""
    if c.op == "text":
        return text_subquery(tenant, c)
    base = f"SELECT device_id FROM {_ATTRS} a WHERE a.tenant_id = ? AND a.scope = ? AND a.name = ?"
    if c.op in ("in", "eq", "ne", "nin") and c.strs and c.nums:
        s_sql, s_params = value_clause(Cond(c.scope, c.name, "in", strs=c.strs), "a")
        n_sql, n_params = value_clause(Cond(c.scope, c.name, "in", nums=c.nums), "a")
        return (f"{base} AND {s_sql} UNION {base} AND {n_sql}",
                [tenant, c.scope, c.name, *s_params, tenant, c.scope, c.name, *n_params])
    sql, params = value_clause(c, "a")
    return f"{base} AND {sql}", [tenant, c.scope, c.name, *params]


def _probe(c: Cond, tenant: str) -> tuple[str, list]:
    if c.op == "text":
        low, high = _prefix_range(c.strs[0])
        return (f"(x.id >= ? AND x.id < ? OR EXISTS (SELECT 1 FROM {_ATTRS} a WHERE a.tenant_id = ?"
                f" AND a.device_id = x.id AND {TEXT_ROWS.format(a='a')} AND lower(+a.value_str) >= ?"
                " AND lower(+a.value_str) < ?))", [low, high, tenant, low, high])
    sql, params = value_clause(c, "a", probe=True)
    probe = (f"EXISTS (SELECT 1 FROM {_ATTRS} a WHERE a.tenant_id = ? AND a.device_id = x.id"
             f" AND a.scope = ? AND a.name = ? AND {sql})")
    return ("NOT " + probe if negated(c) else probe), [tenant, c.scope, c.name, *params]


def _id_condition(c: Cond) -> tuple[str, list]:
    op = c.op
    if op == "exists":
        return ("1" if c.exists else "0"), []
    if op == "regex":
        return "inv_regexp(?, ?, x.id)", [c.regex, c.flags]
    if op in ("eq", "ne", "in", "nin"):
        if not c.strs:
            return ("1" if op in ("ne", "nin") else "0"), []
        negate = "NOT " if op in ("ne", "nin") else ""
        return f"x.id {negate}IN ({','.join('?' * len(c.strs))})", list(c.strs)
    if not c.strs:  # a number never compares with an id
        return "0", []
    return f"x.id {_CMP[op]} ?", [c.strs[0]]


def build_search(tenant: str, conds: Sequence[Cond], estimate: Callable[[str, list], int] | None = None,
                 plan: dict | None = None) -> tuple[str, list] | None:
    """A query of the ids (column `id`; an id may repeat) of the matching devices, or None when nothing
    can match. `estimate(sql, params)` counts the rows of a subquery up to SELECTIVITY_CAP.

    Plan: the smallest positive predicate is the driving index range; other predicates whose
    index range is small are membership tests against it (`x.id [NOT] IN (range)`), large ones
    are probes on the primary key of the few surviving candidates (`[NOT] EXISTS`). `plan`, when
    given, receives the driving predicate ("driver", its query "driver_sql" with column
    `device_id`), every predicate's estimated size ("sizes", by id()) and whether any other
    predicate filters the driver's rows ("filtered")."""
    for c in conds:
        if c.op == "regex" and not c.valid_regex:
            return None  # an invalid pattern matches nothing (as Mender)
    attr_conds = [c for c in conds if not c.on_id]
    id_lists = sorted((c for c in conds if c.on_id and c.op in ("eq", "in") and c.strs), key=lambda c: len(c.strs))
    if id_lists:
        # listed ids (a poll asking whether its device matches a dynamic deployment's filter, a
        # bulk selection) drive: a primary-key seek per id, every other condition probed on them
        # (a predicate's range would read half a fleet to answer for one device)
        ids = id_lists[0]
        source = (f"SELECT id FROM inventory_devices WHERE tenant_id = ? AND id IN ({','.join('?' * len(ids.strs))})")
        params = [tenant, *ids.strs]
        clauses = [_id_condition(c) if c.on_id else _probe(c, tenant) for c in conds if c is not ids]
        if plan is not None:
            plan.update(driver=None, sizes={id(c): 0 for c in attr_conds}, filtered=bool(clauses), driver_sql=None)
        for _, p in clauses:
            params += p
        return f"SELECT x.id AS id FROM ({source}) x WHERE {' AND '.join(sql for sql, _ in clauses) or '1'}", params
    sizes = {}
    for c in attr_conds:
        sizes[id(c)] = estimate(*driver_subquery(tenant, c)) if estimate is not None and len(attr_conds) > 1 else 0
    # at the estimate's cap, the first given drives (callers append their status and group
    # constraints after the operator's predicates, which are usually the more selective)
    positives = sorted((c for c in attr_conds if not negated(c)), key=lambda c: sizes[id(c)])
    driver = positives[0] if positives else None
    if driver is not None:
        sql, params = driver_subquery(tenant, driver)
        # may repeat an id (several array elements match): the caller drops adjacent duplicates
        source = f"SELECT device_id AS id FROM ({sql})"
    else:
        source, params = "SELECT id FROM inventory_devices WHERE tenant_id = ?", [tenant]
    memberships, probes = [], []
    for c in conds:
        if c is driver:
            continue
        if c.on_id:
            memberships.append(_id_condition(c))
        elif sizes[id(c)] < SELECTIVITY_CAP and (driver is None or sizes[id(c)] <= 8 * sizes[id(driver)] + 1000):
            # building an in-memory list of n ids costs less than probing every candidate
            sub, p = driver_subquery(tenant, c)
            memberships.append((f"x.id {'NOT ' if negated(c) else ''}IN ({sub})", p))
        else:
            probes.append(_probe(c, tenant))
    clauses = memberships + probes  # cheap membership tests first, probes on the survivors
    if plan is not None:
        plan.update(driver=driver, sizes=sizes, filtered=bool(clauses),
                    driver_sql=driver_subquery(tenant, driver) if driver is not None else None)
    where = " AND ".join(sql for sql, _ in clauses) or "1"
    for _, p in clauses:
        params += p
    return f"SELECT x.id AS id FROM ({source}) x WHERE {where}", params


def _one_type_equality(c: Cond) -> bool:
    """An equality or `$in` (or their negations) whose values are all strings or all numbers."""
    return not c.on_id and c.op in ("eq", "in", "ne", "nin") and bool(c.strs) != bool(c.nums)


def _index_probe(c: Cond, tenant: str) -> tuple[str, list]:
    """A probe of one device for an equality or `$in` of one value type by seeks in the value
    index ((tenant, scope, name, value, device id): one per value), not in the attribute table:
    the entries of a few values are a few megabytes that stay cached, where a probe of the table
    reads a page of its own for every device (the table is most of the database)."""
    column = "value_str" if c.strs else "value_num"
    values = list(c.strs or c.nums)
    probe = (f"EXISTS (SELECT 1 FROM {_ATTRS} a INDEXED BY inventory_attributes_{column[6:]} WHERE a.tenant_id = ?"
             f" AND a.scope = ? AND a.name = ? AND a.{column} IN ({','.join('?' * len(values))})"
             " AND a.device_id = x.id)")
    return ("NOT " + probe if negated(c) else probe), [tenant, c.scope, c.name, *values]


def candidate_filter(tenant: str, conds: Sequence[Cond], sizes: dict | None = None) -> tuple[str, list]:
    """A condition on `x.id` that holds for the devices matching every condition, for a walk that
    visits candidates one by one in another index's order: conditions on the id, then small
    predicates as membership tests, then probes, the most selective first (a candidate fails at
    its first probe most often); among predicates of the same (capped) size, equalities first:
    they probe the value index (_index_probe), the others the attribute table."""
    sizes = sizes or {}
    ranked = sorted(conds, key=lambda c: (not c.on_id, negated(c), sizes.get(id(c), SELECTIVITY_CAP),
                                          not _one_type_equality(c)))
    parts: list[tuple[str, list]] = []
    for c in ranked:
        if c.on_id:
            parts.append(_id_condition(c))
        elif sizes.get(id(c), SELECTIVITY_CAP) < 2000:
            sub, p = driver_subquery(tenant, c)
            parts.append((f"x.id {'NOT ' if negated(c) else ''}IN ({sub})", p))
        elif _one_type_equality(c):
            parts.append(_index_probe(c, tenant))
        else:
            parts.append(_probe(c, tenant))
    params: list = []
    for _, p in parts:
        params += p
    return " AND ".join(sql for sql, _ in parts) or "1", params


def value_ranges(tenant: str, c: Cond) -> tuple[list, tuple[str, list]] | None:
    """For an equality or `$in` of one value type: its values and the SQL of one value's index
    range (its last `?` the value), which lists device ids in id order; None otherwise."""
    if c.op not in ("eq", "in") or c.on_id or bool(c.strs) == bool(c.nums):
        return None
    column, values = ("value_str", list(c.strs)) if c.strs else ("value_num", list(c.nums))
    return values, (f"SELECT device_id FROM {_ATTRS} a WHERE a.tenant_id = ? AND a.scope = ? AND a.name = ?"
                    f" AND a.{column} = ?", [tenant, c.scope, c.name])


def sample_search(tenant: str, conds: Sequence[Cond], driver: Cond) -> tuple[str, list]:
    """A count of the devices matching `conds` among the driver's rows whose device id is at most
    a pivot (each PIVOT among the parameters, replaced by the caller): an estimate's sample. Equalities and
    `$in`s of one value type are membership tests against their own index ranges cut at the same
    pivot (a few thousand entries read in order, instead of a probe of every sampled device), the
    others probes of the survivors."""
    sql, params = driver_subquery(tenant, driver)
    memberships: list[tuple[str, list]] = []
    probes: list[tuple[str, list]] = []
    for c in conds:
        if c is driver:
            continue
        if c.on_id:
            memberships.insert(0, _id_condition(c))
        elif _one_type_equality(c):
            sub, p = value_clause(c, "a")
            memberships.append((f"x.id {'NOT ' if negated(c) else ''}IN (SELECT device_id FROM {_ATTRS} a"
                                f" WHERE a.tenant_id = ? AND a.scope = ? AND a.name = ? AND {sub}"
                                " AND a.device_id <= ?)", [tenant, c.scope, c.name, *p, PIVOT]))
        else:
            probes.append(_probe(c, tenant))
    where = " AND ".join(s for s, _ in memberships + probes) or "1"
    out = [*params, PIVOT]
    for _, p in memberships + probes:
        out += p
    return (f"SELECT count(DISTINCT x.id) FROM (SELECT device_id AS id FROM ({sql}) WHERE device_id <= ?) x"
            f" WHERE {where}"), out
