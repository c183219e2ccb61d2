"""Bounded searches over a large fleet on SQLite: a page read by walking an index in the order
asked for (the sort attribute's value index, or the device ids) while the predicates filter each
entry, and a total estimated from a sample when counting exactly would probe too many devices.

Sorting every match reads all of them (at a million devices a predicate matching one in ten is
100,000 candidates, each probed for the other predicates: most of a second); a page of 20 in the
sort order needs only the first entries of the sort index whose devices match, so the cost
follows (page end) / (share of the fleet matching), not the fleet.
"""

from __future__ import annotations

from typing import Sequence

from inventory.store.sqlite_search import PIVOT

WALK_BUDGET = 60_000  # index entries one walk reads before it gives up (the caller sorts every match)
COUNT_EXACT_CANDIDATES = 10_000  # the driving predicate's rows up to which a total is counted exactly
COUNT_SAMPLE = 4_000  # driving-predicate rows probed to estimate a total above that
_MAX_VALUE_RANGES = 32  # an $in with more values takes its sample through a bounded sort


def _source(kind: str, scope: str | None, name: str | None, tenant: str) -> tuple[str, str, list, tuple[str, ...]]:
    """(id column, FROM … WHERE, params, key columns in index order) of one walkable index."""
    if kind == "id":
        return "id", "FROM inventory_devices WHERE tenant_id = ?", [tenant], ("id",)
    return ("device_id", f"FROM inventory_attributes WHERE tenant_id = ? AND scope = ? AND name = ?"
            f" AND {kind} IS NOT NULL", [tenant, scope, name], (kind, "device_id"))


def walk_page(conn, tenant: str, filter_sql: str, filter_params: list, sort: tuple | None,
              need: int) -> list[str] | None:
    """The first `need` ids, in the order of `sort`, of the devices for which `filter_sql` (a
    condition on `x.id`) holds: `sort` is None or ("id", descending) for id order, or
    (scope, name) for that attribute descending (the largest element of an array; strings
    before numbers; ties by id ascending, as the full sort). Fewer ids when fewer devices match.
    None when the walk would read more than WALK_BUDGET index entries, or would reach the devices
    that lack the attribute (the caller then sorts every match).

    One query per index, read lazily: SQLite filters the entries as they are fetched, so the walk
    stops at the first match past the page (the rows come in the subquery's order; a row out of
    order makes the walk give up rather than answer wrongly)."""
    if sort is None or sort[0] == "id":
        descending = bool(sort and sort[1])
        sources = [("id", None, None)]
    else:
        descending = True
        sources = [("value_str", *sort), ("value_num", *sort)]  # strings sort after numbers
    seen: dict[str, object] = {}
    budget = WALK_BUDGET
    order = "DESC" if descending else "ASC"
    for kind, scope, name in sources:
        id_col, base, params, keys = _source(kind, scope, name, tenant)
        by = ", ".join(f"{k} {order}" for k in keys)
        cursor = conn.execute(f"SELECT x.id, x.v FROM (SELECT {id_col} AS id, {keys[0]} AS v {base} ORDER BY {by}"
                              f" LIMIT {budget}) x WHERE {filter_sql}", params + filter_params)
        last = threshold = None
        try:
            # row by row: the cursor steps SQLite once per row, so the walk reads no entry past the
            # one that ends the page (fetchmany(n) would run on to n more matches: 3× the probes)
            for device_id, value in cursor:
                key = (_value_key(value), device_id)
                if last is not None and (key > last if descending else key < last):
                    return None  # not in index order: never guess
                last = key
                if threshold is not None and key[0] != threshold:
                    return _page(seen, need, descending, False)  # the page's last tie group is complete
                if device_id in seen:
                    continue  # the first entry of a device holds its sort value
                seen[device_id] = value
                if len(seen) == need:
                    if kind == "id":
                        return _page(seen, need, descending, True)
                    threshold = key[0]  # the page ends in this value: read its ties
        finally:
            cursor.close()
        entries = conn.execute(f"SELECT count(*) FROM (SELECT 1 {base} LIMIT {budget + 1})", params).fetchone()[0]
        if entries > budget:
            return None
        budget -= entries
        if len(seen) >= need:
            return _page(seen, need, descending, kind == "id")
    if kind != "id":
        return None  # the devices without the attribute come next, in id order: not walkable here
    return _page(seen, len(seen), descending, True)


def _page(seen: dict, need: int, descending: bool, by_id: bool) -> list[str]:
    return [i for i, _ in _ranked(seen, descending, by_id)[:need]]


def _value_key(value) -> tuple:
    return isinstance(value, str), value


def _ranked(seen: dict, descending: bool, by_id: bool) -> list[tuple[str, object]]:
    items = sorted(seen.items())  # ties by id ascending
    if by_id:
        return items[::-1] if descending else items
    # strings after numbers (SQLite's and MongoDB's order); stable, so ties stay by id
    return sorted(items, key=lambda t: _value_key(t[1]), reverse=descending)


def estimated_count(conn, tenant: str, fleet: int, driver_sql: str, driver_params: list, driver_size: int | None,
                    sample_sql: str, sample_params: list, matching_sql: str, matching_params: list,
                    driver_values: Sequence | None, driver_range: tuple[str, list] | None) -> tuple[int, bool]:
    """How many devices `matching_sql` (column `id`) has, estimated from those whose id is at most a
    pivot: the pivot is chosen among the driving predicate's rows (`driver_sql`, column
    `device_id`) so that about COUNT_SAMPLE of them fall below it, and the share of those that
    match is measured (`sample_sql`: their count, PIVOT among its parameters; device ids
    are in no relation to attribute values, so the id prefix is a fair sample).

    `driver_size`: the driver's rows when known exactly (the planner counts up to its cap), else
    None. Known: total = driver's rows × matching share of the sampled driver rows. Unknown (at
    least the planner's cap): total = the tenant's `fleet` × matching share of the devices below
    the pivot, so a driver of half a million rows is never counted (an index count of 100,000
    entries costs ~10 ms here); the variance is the same (the sample's matches, ~COUNT_SAMPLE ×
    the driver's matching share). `driver_values`/`driver_range`: for an equality or `$in`
    driver, the SQL of one value's index range (`?` for the value) and its parameters before the
    value: each value's range is in id order, so the pivot is found by seeks, not a sort.
    Returns (count, estimated): a driver of at most COUNT_SAMPLE rows is counted exactly."""
    pivot = sampled = None
    if driver_values and driver_range and len(driver_values) <= _MAX_VALUE_RANGES:
        range_sql, range_params = driver_range
        # each value's k-th id: the smallest of them leaves at least k driver rows below it, about
        # COUNT_SAMPLE when the values are about as frequent
        k = -(-COUNT_SAMPLE // len(driver_values))
        kth = [row[0] for v in driver_values for row in conn.execute(
            f"SELECT device_id FROM ({range_sql}) ORDER BY device_id LIMIT 1 OFFSET {k - 1}", range_params + [v])]
        if kth:
            pivot = min(kth)
            if len(driver_values) == 1:
                sampled = k
    else:
        pivot = conn.execute(f"SELECT max(id), count(*) FROM (SELECT device_id AS id FROM ({driver_sql})"
                             f" ORDER BY +device_id LIMIT {COUNT_SAMPLE})", driver_params).fetchone()
        pivot = pivot[0] if pivot[1] == COUNT_SAMPLE else None
    if pivot is None:  # fewer driver rows than a sample
        return conn.execute(f"SELECT count(DISTINCT id) FROM ({matching_sql})", matching_params).fetchone()[0], False
    hits = conn.execute(sample_sql, [pivot if p is PIVOT else p for p in sample_params]).fetchone()[0]
    if driver_size is None:
        below = conn.execute("SELECT count(*) FROM inventory_devices WHERE tenant_id = ? AND id <= ?",
                             (tenant, pivot)).fetchone()[0]
        return (round(fleet * hits / below) if below else 0), True
    if sampled is None:
        sampled = conn.execute(f"SELECT count(*) FROM ({driver_sql}) WHERE device_id <= ?",
                               driver_params + [pivot]).fetchone()[0]
    return (round(driver_size * hits / sampled) if sampled else 0), True
