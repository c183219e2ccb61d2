"""The SQLite query planner answers search predicates from the attribute indexes, not by scanning."""

from __future__ import annotations

import pytest

from inventory.model import compile_predicate
from inventory.store.sqlite_search import build_search, literal_prefix
from tests.inventory.conftest import pred


@pytest.fixture
def conn(sqlite_app):
    ctx = sqlite_app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.inventory.store.conn


def plan(conn, preds) -> list[str]:
    where, params = build_search("", [compile_predicate(p) for p in preds])
    rows = conn.execute(f"EXPLAIN QUERY PLAN SELECT count(*) FROM inventory_devices d WHERE {where}", params)
    return [r[3] for r in rows]


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
    assert not any(s.startswith("SCAN") for s in steps), steps


def test_three_predicates_use_indexes(conn):
    steps = plan(conn, [pred("cpu", "$eq", "arm"), pred("mem", "$gte", 512), pred("os", "$ne", "x")])
    assert sum("USING COVERING INDEX inventory_attributes_" in s for s in steps) == 3, steps
    assert not any(s.startswith("SCAN") for s in steps), steps


@pytest.mark.parametrize("pattern,prefix", [
    ("^(?:arm)", "arm"), ("^(?:ar*m)", "a"), ("^(?:a|b)", ""), ("^(?:.x)", ""), ("^(?:ab+)", "ab"),
])
def test_literal_prefix(pattern, prefix):
    assert literal_prefix(pattern, "") == prefix
    assert literal_prefix(pattern, "i") == ""
