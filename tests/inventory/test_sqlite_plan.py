"""The SQLite query planner answers search predicates from the attribute indexes, not by scanning."""

from __future__ import annotations

import pytest

from inventory.model import compile_predicate
from inventory.store.sqlite_search import build_search, literal_prefix
from tests.helpers import traced_writes
from tests.inventory.conftest import pred


@pytest.fixture
def conn(sqlite_app):
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.inventory.store.conn


def table_scans(steps: list[str]) -> list[str]:
    """Full scans of a table (scanning the driving subquery's own rows, `x`, is the point)."""
    return [s for s in steps if s.startswith("SCAN") and s.split()[1] not in ("x", "m")]


def plan(conn, preds, estimate=None) -> list[str]:
    sql, params = build_search("", [compile_predicate(p) for p in preds], estimate)
    return [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("predicate,index", [
    (pred("cpu", "$eq", "arm"), "inventory_attributes_str (tenant_id=? AND scope=? AND name=? AND value_str=?)"),
    (pred("mem", "$gt", 5), "inventory_attributes_num (tenant_id=? AND scope=? AND name=? AND value_num>?)"),
    (pred("cpu", "$in", ["a", "b"]), "inventory_attributes_str (tenant_id=? AND scope=? AND name=? AND value_str=?)"),
    (pred("cpu", "$regex", "arm"), "inventory_attributes_str (tenant_id=? AND scope=? AND name=? "
                                   "AND value_str>? AND value_str<?)"),
    (pred("cpu", "$exists", True), "(tenant_id=? AND scope=? AND name=?)"),
])
def test_single_predicate_uses_an_index(conn, predicate, index):
    steps = plan(conn, [predicate])
    assert any(index in s for s in steps), steps
    assert not table_scans(steps), steps


STR_EQ = "INDEX inventory_attributes_str (tenant_id=? AND scope=? AND name=? AND value_str=?)"
NUM_GE = "INDEX inventory_attributes_num (tenant_id=? AND scope=? AND name=? AND value_num>?)"
PROBE = "PRIMARY KEY (tenant_id=? AND device_id=? AND scope=? AND name=?)"


def test_three_small_predicates_are_three_index_ranges(conn):
    steps = plan(conn, [pred("cpu", "$eq", "arm"), pred("mem", "$gte", 512), pred("os", "$ne", "x")],
                 estimate=lambda sql, params: 10)
    assert sum("INDEX inventory_attributes_str (tenant_id=? AND scope=? AND name=? AND value_str=?" in s
               for s in steps) == 2, steps
    assert sum(NUM_GE in s for s in steps) == 1, steps
    assert not table_scans(steps), steps


def test_large_predicates_become_primary_key_probes(conn):
    sizes = {"cpu": 10, "mem": 10**6, "os": 10**6}

    def estimate(sql, params):
        return next(n for name, n in sizes.items() if name in params)

    steps = plan(conn, [pred("mem", "$gte", 512), pred("cpu", "$eq", "arm"), pred("os", "$ne", "x")], estimate)
    assert sum(STR_EQ in s for s in steps) == 1, steps  # the smallest drives
    assert sum(PROBE in s for s in steps) == 2, steps  # the large ones are probed per candidate
    assert not any(NUM_GE in s for s in steps), steps
    assert not table_scans(steps), steps


def test_only_negative_predicates_walk_the_devices(conn):
    steps = plan(conn, [pred("os", "$ne", "x")])
    assert any("inventory_devices USING PRIMARY KEY (tenant_id=?)" in s for s in steps), steps
    assert any(STR_EQ in s for s in steps), steps  # NOT IN a small index range
    steps = plan(conn, [pred("os", "$ne", "x"), pred("os", "$ne", "y")], estimate=lambda sql, params: 10**6)
    assert sum(PROBE in s for s in steps) == 2, steps  # large ranges: NOT EXISTS probes


@pytest.mark.parametrize("pattern,prefix", [
    ("^(?:arm)", "arm"), ("^(?:ar*m)", "a"), ("^(?:a|b)", ""), ("^(?:.x)", ""), ("^(?:ab+)", "ab"),
    ("^(?:00\\:01\\.x)", "00:01.x"), ("^(?:a\\d)", "a"), ("^(?:ab?)", "a"),
])
def test_literal_prefix(pattern, prefix):
    assert literal_prefix(pattern, "") == prefix
    assert literal_prefix(pattern, "i") == ""


def test_listed_ids_drive_and_every_predicate_is_probed(conn):
    """Whether one device matches a dynamic deployment's filter (asked on its polls): its id is a
    primary-key seek and each predicate a probe of it, never a range of the predicate's devices
    (half a fleet)."""
    from inventory.model import id_condition
    conds = [compile_predicate(pred("group", "$in", ["g0", "g1"], scope="system")),
             compile_predicate(pred("status", "$eq", "accepted", scope="identity")), id_condition(["dev-1"])]
    sql, params = build_search("", conds, estimate=lambda sql, params: 10**6)
    steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    assert any("inventory_devices USING PRIMARY KEY (tenant_id=? AND id=?)" in s for s in steps), steps
    assert sum(PROBE in s for s in steps) == 2, steps
    assert not any("inventory_attributes_str" in s for s in steps), steps
    assert not table_scans(steps), steps


def test_a_walk_probes_equalities_in_the_value_index_and_ranges_by_primary_key(conn):
    """A walk's candidates (in the sort index's order) are probed for an equality or `$in` by
    seeks in the value index, (value, device id) per value, which stay cached, and for other
    predicates by primary key; equalities first among predicates of the same size."""
    from inventory.store.sqlite_search import candidate_filter
    conds = [compile_predicate(p) for p in (pred("mem", "$gte", 512), pred("cpu", "$eq", "arm"),
                                            pred("hw", "$in", [1, 2]), pred("site", "$nin", ["a", "b"]))]
    where, params = candidate_filter("", conds)
    steps = [r[3] for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT x.id FROM (SELECT id FROM inventory_devices WHERE tenant_id = ?) x WHERE {where}",
        ["", *params])]
    assert sum("COVERING INDEX inventory_attributes_str (tenant_id=? AND scope=? AND name=? AND value_str=?"
               " AND device_id=?)" in s for s in steps) == 2, steps
    assert sum("COVERING INDEX inventory_attributes_num (tenant_id=? AND scope=? AND name=? AND value_num=?"
               " AND device_id=?)" in s for s in steps) == 1, steps
    assert sum(PROBE in s for s in steps) == 1, steps
    assert where.index("'cpu'") if False else params.index("cpu") < params.index("hw") < params.index("mem")
    assert not table_scans(steps), steps


def test_an_estimates_sample_reads_equalities_as_ranges_cut_at_the_pivot(conn):
    from inventory.store.sqlite_search import PIVOT, sample_search
    conds = [compile_predicate(p) for p in (pred("cpu", "$eq", "arm"), pred("mem", "$gte", 512),
                                            pred("site", "$in", ["a", "b"]))]
    sql, params = sample_search("", conds, conds[0])
    assert params.count(PIVOT) == 2
    steps = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", ["zz" if p is PIVOT else p for p in params])]
    assert any(STR_EQ[:-1] + " AND device_id<?)" in s for s in steps), steps
    assert any(PROBE in s for s in steps), steps
    assert not table_scans(steps), steps


def test_an_inventory_upload_writes_a_statement_per_step_not_per_attribute(sqlite_app):
    """A device's upload that changes several attributes, lists among them: BEGIN, the version's
    UPDATE, one DELETE of the changed keys, one multi-row INSERT, COMMIT, whatever the number of
    attributes or rows (executemany stepped once per row, each step a turn of the GIL taken back
    under the writer lock); what is stored reads back as sent, NUL and all."""
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    svc = ctx.services.inventory
    conn = svc.store.db.conn
    first = [{"name": "a", "value": "1"}, {"name": "b", "value": ["x", "y"]}, {"name": "c", "value": 3}]
    svc.update_device_attributes("", "d1", first, replace=True)
    writes = traced_writes(conn, lambda: svc.update_device_attributes(
        "", "d1", [{"name": "a", "value": "2\x00z"}, {"name": "b", "value": [1.5, 2, 3]},
                   {"name": "c", "value": 3}, {"name": "d", "value": ["p", "q"]}], replace=True))
    assert [s.split()[0] for s in writes] == ["BEGIN", "UPDATE", "DELETE", "INSERT", "COMMIT"], writes
    device = svc.store.get_device("", "d1", ("inventory",))
    got = {a.name: a.value for a in device.attributes if a.scope == "inventory"}
    assert got == {"a": "2\x00z", "b": [1.5, 2.0, 3.0], "c": 3.0, "d": ["p", "q"]}
