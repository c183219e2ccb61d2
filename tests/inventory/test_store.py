"""Store contract: both backends behave the same (run on SQLite and on MongoDB via mongomock)."""

from __future__ import annotations

import pytest

from common.errors import Conflict
from inventory.model import Attribute, AttributeCount, Cond, Filter, Sort, compile_predicate, eq

T = 1_780_000_000.0


def etag():
    return "etag"


def make(store, tenant, device_id, **attrs):
    store.create_device(tenant, device_id, T, "e0", [Attribute("inventory", k, v) for k, v in attrs.items()])


def ids(store, conds, sort=(), tenant="t1", skip=0, limit=100):
    return store.search(tenant, conds, list(sort), skip, limit)


def test_create_get_and_values_round_trip(store):
    assert store.create_device("t1", "d1", T, "e1", [
        Attribute("inventory", "s", "text", "a string"), Attribute("inventory", "n", 1.5),
        Attribute("inventory", "as", ["a", "b"]), Attribute("inventory", "an", [3.0, 1.0]),
        Attribute("inventory", "empty", []), Attribute("inventory", "dotted.name$", "x")])
    assert not store.create_device("t1", "d1", T, "e2")  # exists
    d = store.get_device("t1", "d1")
    assert d.tags_etag == "e1" and d.created_ts == T and d.version == 0
    got = {a.name: (a.value, a.description) for a in d.attributes}
    assert got == {"s": ("text", "a string"), "n": (1.5, None), "as": (["a", "b"], None),
                   "an": ([3.0, 1.0], None), "empty": ([], None), "dotted.name$": ("x", None)}
    assert store.get_device("t2", "d1") is None  # other tenant
    assert store.get_device("t1", "nope") is None


def test_apply_is_conditional_on_version(store):
    make(store, "t1", "d1", a="1", b="2")
    assert store.apply("t1", "d1", 0, [Attribute("inventory", "a", "one")], [("inventory", "b")], updated_ts=T + 5)
    assert not store.apply("t1", "d1", 0, [Attribute("inventory", "a", "lost")], [])  # stale version
    d = store.get_device("t1", "d1")
    assert d.version == 1 and d.updated_ts == T + 5
    assert [(a.name, a.value) for a in d.attributes] == [("a", "one")]
    assert not store.apply("t1", "gone", 0, [], [])


def test_get_devices_keeps_order_and_selects(store):
    for i in range(3):
        make(store, "t1", f"d{i}", a=str(i), b=float(i))
    got = store.get_devices("t1", ["d2", "missing", "d0"], select=[("inventory", "b")])
    assert [d.id for d in got] == ["d2", "d0"]
    assert [[(a.name, a.value) for a in d.attributes] for d in got] == [[("b", 2.0)], [("b", 0.0)]]


def test_status_revisions_and_groups(store):
    make(store, "t1", "d1")
    make(store, "t1", "d2")
    assert store.set_status("t1", [("d1", None), ("d2", 5), ("zz", None)], "accepted") == 2
    assert store.set_status("t1", [("d2", 4)], "rejected") == 0  # older revision loses
    assert store.set_status("t1", [("d2", 6)], "rejected") == 1
    d2 = store.get_device("t1", "d2")
    assert {(a.scope, a.name): a.value for a in d2.attributes} == {
        ("identity", "status"): "rejected", ("system", "status"): "rejected"}
    assert store.set_group("t1", ["d1", "d2", "zz"], "g1") == (2, 2)
    assert store.set_group("t1", ["d1"], "g1") == (1, 0)
    assert store.groups("t1") == ["g1"] and store.groups("t1", "accepted") == ["g1"]
    assert store.groups("t1", "pending") == [] and store.groups("t2") == []
    assert store.clear_group("t1", "g1", ["d1"]) == 1
    assert store.clear_group("t1", "g1") == 1
    assert store.groups("t1") == []


def test_check_in_is_debounced_and_needs_a_device(store):
    make(store, "t1", "d1")
    store.record_check_ins("t1", ["d1"], "2026-01-01T00:00:10.000Z", "2026-01-01T00:00:00.000Z")
    store.record_check_ins("t1", ["d1"], "2026-01-01T00:00:20.000Z", "2026-01-01T00:00:05.000Z")  # recent: skipped
    value = {a.name: a.value for a in store.get_device("t1", "d1").attributes}["check_in_time"]
    assert value == "2026-01-01T00:00:10.000Z"
    store.record_check_ins("t1", ["d1"], "2026-01-01T00:02:00.000Z", "2026-01-01T00:01:00.000Z")
    value = {a.name: a.value for a in store.get_device("t1", "d1").attributes}["check_in_time"]
    assert value == "2026-01-01T00:02:00.000Z"
    store.record_check_ins("t1", ["ghost"], "2026-01-01T00:02:00.000Z", "x")
    assert store.get_device("t1", "ghost") is None


def test_check_ins_in_one_batch(store):
    for d in ("d1", "d2", "d3"):
        make(store, "t1", d)
    make(store, "t2", "d4")
    store.record_check_ins("t1", ["d1"], "2026-01-01T00:00:50.000Z", "2026-01-01T00:00:00.000Z")
    store.record_check_ins("t1", ["d1", "d2", "d3", "d4", "ghost"], "2026-01-01T00:01:00.000Z",
                           "2026-01-01T00:00:30.000Z")

    def check_in(tenant, device):
        return {a.name: a.value for a in store.get_device(tenant, device).attributes}.get("check_in_time")
    assert check_in("t1", "d1") == "2026-01-01T00:00:50.000Z"  # recent: left alone
    assert check_in("t1", "d2") == check_in("t1", "d3") == "2026-01-01T00:01:00.000Z"
    assert check_in("t2", "d4") is None and store.get_device("t1", "ghost") is None  # other tenant, unknown id


def test_import_skips_existing(store):
    make(store, "t1", "d1")
    n = store.import_devices("t1", [("d1", []), ("d2", [Attribute("inventory", "a", "x")])], T, etag)
    assert n == 1
    assert [a.value for a in store.get_device("t1", "d2").attributes] == ["x"]
    # in bulk, past one chunk, an id twice in one import taken once, another tenant apart
    many = [(f"m{i:04d}", [Attribute("inventory", "n", float(i)), Attribute("inventory", "l", ["a", "b"])])
            for i in range(1100)]
    assert store.import_devices("t1", many + [("m0001", []), ("d2", [])], T, etag) == 1100
    assert store.import_devices("t2", many[:3], T, etag) == 3
    assert store.import_devices("t1", many[:3], T, etag) == 0
    got = store.get_device("t1", "m1099")
    assert [(a.name, a.value) for a in got.attributes] == [("l", ["a", "b"]), ("n", 1099.0)]
    assert store.search("t1", [], [], 0, 1)[1] == 1102
    # all of them in one query, in id order, bounded
    assert store.matching_ids("t1", [], 5000) == sorted(["d1", "d2"] + [i for i, _ in many])
    assert store.matching_ids("t1", [eq("inventory", "l", "a")], 3) == ["m0000", "m0001", "m0002"]
    assert store.matching_ids("t1", [eq("inventory", "n", 7.0)], 10) == ["m0007"]
    assert store.matching_ids("t2", [], 10) == ["m0000", "m0001", "m0002"]


@pytest.fixture
def population(store):
    make(store, "t1", "a", cpu="arm", mem=512.0, tags=["x", "y"], name="alpha")
    make(store, "t1", "b", cpu="x86", mem=2048.0, tags=["y"], name="beta")
    make(store, "t1", "c", cpu="arm64", mem="lots", name="Gamma")
    make(store, "t1", "d")
    make(store, "t2", "z", cpu="arm", mem=512.0)  # another tenant: never visible
    return store


CASES = [
    ("cpu", "$eq", "arm", ["a"]),
    ("mem", "$eq", 512, ["a"]),
    ("mem", "$eq", "512", []),  # types do not mix
    ("cpu", "$ne", "arm", ["b", "c", "d"]),
    ("mem", "$gt", 600, ["b"]),
    ("mem", "$gte", 512, ["a", "b"]),
    ("mem", "$lt", 2048, ["a"]),
    ("mem", "$lte", 2048, ["a", "b"]),
    ("mem", "$gt", "a", ["c"]),  # strings compare with strings only
    ("tags", "$eq", "y", ["a", "b"]),  # any element
    ("tags", "$in", ["x", "nope"], ["a"]),
    ("tags", "$nin", ["x"], ["b", "c", "d"]),
    ("mem", "$in", [512, "lots"], ["a", "c"]),
    ("tags", "$exists", True, ["a", "b"]),
    ("tags", "$exists", False, ["c", "d"]),
    ("cpu", "$regex", "ar", ["a", "c"]),
    ("cpu", "$regex", "rm", []),  # anchored at the start
    ("cpu", "$regex", "arm$", ["a"]),
    ("name", "$regex", "/g/i", ["c"]),
    ("name", "$regex", "a|b", ["a", "b"]),
    ("cpu", "$regex", "(unclosed", []),  # invalid: no results, no error
    ("cpu", "$regex", "(a)\\1", []),  # RE2 rejects backreferences: no results
]


@pytest.mark.parametrize("attribute,op,value,expected", CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_search_predicates(population, attribute, op, value, expected):
    cond = compile_predicate({"scope": "inventory", "attribute": attribute, "type": op, "value": value})
    found, total = ids(population, [cond])
    assert sorted(found) == expected and total == len(expected)


def text(store, query, tenant="t1"):
    from inventory.model import text_conditions
    return sorted(ids(store, text_conditions(query), tenant=tenant)[0])


def test_text_search(store):
    """Each word starts a value of identity (not its status), inventory or tags, or the id; ASCII
    letters fold; every word must match; other tenants and other scopes never do."""
    store.create_device("t1", "dev-1", T, "e", [
        Attribute("identity", "mac", "02:00:00:00:00:01"), Attribute("identity", "status", "accepted"),
        Attribute("inventory", "device_type", "RaspberryPi4"), Attribute("inventory", "ips", ["10.0.0.7", "fe80::1"]),
        Attribute("system", "group", "lab")])
    store.create_device("t1", "dev-2", T, "e", [
        Attribute("identity", "serial", "SN-0042"), Attribute("inventory", "device_type", "beaglebone"),
        Attribute("inventory", "mem", 512.0)])
    store.create_device("t2", "dev-3", T, "e", [Attribute("identity", "mac", "02:00:00:00:00:01")])
    assert text(store, "02:00:00") == ["dev-1"]
    assert text(store, "raspberry") == ["dev-1"] and text(store, "RASPBERRYPI4") == ["dev-1"]
    assert text(store, "10.0.0") == ["dev-1"] and text(store, "fe80") == ["dev-1"]  # array elements
    assert text(store, "sn-00") == ["dev-2"]
    assert text(store, "dev-") == ["dev-1", "dev-2"]  # the id
    assert text(store, "dev- beagle") == ["dev-2"]  # every word
    assert text(store, "pi4") == []  # values start with the word
    assert text(store, "accepted") == [] and text(store, "lab") == [] and text(store, "512") == []
    assert text(store, "02:00:00", tenant="t2") == ["dev-3"]
    assert text(store, "") == ids(store, [])[0]


def test_text_search_follows_writes(store):
    store.create_device("t1", "d", T, "e", [Attribute("inventory", "host", "alpha")])
    assert text(store, "alpha") == ["d"]
    version = store.get_device("t1", "d").version
    assert store.apply("t1", "d", version, [Attribute("inventory", "host", "beta"),
                                            Attribute("tags", "site", "Tallinn")], [])
    assert text(store, "alpha") == [] and text(store, "beta") == ["d"] and text(store, "tallinn") == ["d"]
    version = store.get_device("t1", "d").version
    assert store.apply("t1", "d", version, [], [("tags", "site")])
    assert text(store, "tallinn") == []
    store.set_group("t1", ["d"], "g1")
    store.set_status("t1", [("d", None)], "accepted")
    assert text(store, "beta") == ["d"] and text(store, "g1") == [] and text(store, "accepted") == []
    assert store.import_devices("t1", [("e", [Attribute("identity", "sn", "X1")])], T, etag) == 1
    assert text(store, "x1") == ["e"]
    assert store.delete_device("t1", "e") and text(store, "x1") == []


def test_text_search_with_predicates(population):
    from inventory.model import text_conditions
    conds = text_conditions("a") + [compile_predicate({"scope": "inventory", "attribute": "cpu", "type": "$eq",
                                                       "value": "arm"})]
    # "a" starts the id, "arm" and "alpha" of device a; b and c match "a" through their values or ids too
    assert sorted(ids(population, conds)[0]) == ["a"]
    assert text(population, "gamma") == ["c"] and text(population, "arm") == ["a", "c"]


def test_sort_by_device_id(population):
    assert ids(population, [], [Sort("identity", "id", True)])[0] == ["d", "c", "b", "a"]
    assert ids(population, [], [Sort("identity", "id", False)], limit=2)[0] == ["a", "b"]


def test_search_on_device_id_and_and(population):
    id_in = compile_predicate({"scope": "identity", "attribute": "id", "type": "$in", "value": ["a", "b", "z"]})
    assert ids(population, [id_in]) == (["a", "b"], 2)
    assert ids(population, [id_in, eq("inventory", "cpu", "x86")]) == (["b"], 1)
    ne = compile_predicate({"scope": "identity", "attribute": "id", "type": "$ne", "value": "a"})
    assert ids(population, [ne])[0] == ["b", "c", "d"]


def test_search_sort_and_paging(population, backend):
    by_mem = [Sort("inventory", "mem", False)]
    # missing first, numbers before strings (MongoDB's order)
    assert ids(population, [], by_mem)[0] == ["d", "a", "b", "c"]
    assert ids(population, [], [Sort("inventory", "mem", True)])[0] == ["c", "b", "a", "d"]
    assert ids(population, [], by_mem, skip=1, limit=2) == (["a", "b"], 4)
    assert ids(population, [], by_mem, skip=10, limit=2) == ([], 4)
    # arrays sort by their smallest element ascending, by their largest descending (MongoDB's rule):
    # ["a", "z"] comes first both ways against ["m"]
    assert ids(population, [], [Sort("inventory", "tags", False)])[0][2:] == ["a", "b"]
    make(population, "t3", "p", tags=["a", "z"])
    make(population, "t3", "q", tags=["m"])
    assert ids(population, [], [Sort("inventory", "tags", False)], tenant="t3")[0] == ["p", "q"]
    if backend != "mongomock":  # mongomock sorts arrays descending by their smallest element (real MongoDB does not)
        assert ids(population, [], [Sort("inventory", "tags", True)], tenant="t3")[0] == ["p", "q"]
    # an attribute nobody has: plain id order, no error
    assert ids(population, [], [Sort("tags", "nothing", True)])[0] == ["a", "b", "c", "d"]


def test_attribute_counts(population):
    counts = population.attribute_counts("t1", 5000, 500)
    assert counts[:2] == [AttributeCount("inventory", "cpu", 3), AttributeCount("inventory", "mem", 3)]
    assert AttributeCount("inventory", "tags", 2) in counts
    assert population.attribute_counts("t1", 5000, 1) == [AttributeCount("inventory", "cpu", 3)]


def test_delete_device(population):
    assert population.delete_device("t1", "a")
    assert not population.delete_device("t1", "a")
    assert population.get_device("t1", "a") is None
    assert ids(population, [eq("inventory", "cpu", "arm")]) == ([], 0)
    assert ids(population, [eq("inventory", "cpu", "arm")], tenant="t2") == (["z"], 1)


def test_saved_filters(store):
    store.insert_filter("t1", Filter("f1", "arm", [{"x": 1}], T))
    store.insert_filter("t2", Filter("f2", "arm", [], T))  # other tenant: fine
    with pytest.raises(Conflict):
        store.insert_filter("t1", Filter("f3", "arm", [], T))
    store.insert_filter("t1", Filter("f4", "b", [], T))
    assert store.get_filter("t1", "f1").terms == [{"x": 1}]
    assert store.get_filter("t1", "f2") is None
    page, total = store.list_filters("t1", 1, 10)
    assert total == 2 and [f.name for f in page] == ["b"]
    assert store.delete_filter("t1", "f1") and not store.delete_filter("t1", "f1")


def test_cond_defaults():
    assert Cond("inventory", "a", "exists").exists is True


def test_migrations_create_the_indexes(app, store):
    db = app.extensions["mender"].db
    if db.kind == "sqlite":
        names = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                               " AND tbl_name = 'inventory_attributes'")}
        assert {"inventory_attributes_str", "inventory_attributes_num"} <= names
    else:
        info = db.db["inventory_devices"].index_information()
        assert info["tenant_device"]["unique"] and info["tenant_device"]["key"] == [("tenant_id", 1),
                                                                                   ("device_id", 1)]
        # MongoDB 7.0+ compounds the wildcard index with tenant_id (migration 2); older ones keep the plain one
        wildcard = info.get("tenant_attributes_wildcard") or info["attributes_wildcard"]
        assert wildcard["key"][-1] == ("attributes.$**", 1)
        assert db.db["inventory_filters"].index_information()["tenant_name"]["unique"]


def test_attribute_value_counts_over_a_set_of_devices(store):
    from inventory.model import AttributeValueCount
    make(store, "t1", "d1", kernel="5.10", hw=2.0, ifaces=["eth0", "wlan0"], empty=[])
    make(store, "t1", "d2", kernel="5.10", hw=3.0, ifaces=["eth0"])
    make(store, "t1", "d3", kernel="6.1", hw=2.0)
    make(store, "t2", "d1", kernel="4.19")           # another tenant's device of the same id
    store.create_device("t1", "d4", T, "e", [Attribute("identity", "mac", "02:00")])

    def counts(ids, names=None, scope="inventory", tenant="t1"):
        return sorted((c.name, str(c.value), c.count) for c in store.attribute_value_counts(tenant, ids, scope, names))

    assert counts(["d1", "d2", "d3", "d4", "nope"]) == [
        ("hw", "2.0", 2), ("hw", "3.0", 1), ("ifaces", "eth0", 2), ("ifaces", "wlan0", 1),
        ("kernel", "5.10", 2), ("kernel", "6.1", 1)]
    assert counts(["d1", "d3", "d1"], names=["kernel"]) == [("kernel", "5.10", 1), ("kernel", "6.1", 1)]
    assert counts(["d1"], tenant="t2") == [("kernel", "4.19", 1)]
    assert counts(["d4"], scope="identity") == [("mac", "02:00", 1)]
    assert counts([]) == [] and counts(["d1"], names=["absent"]) == []
    got = store.attribute_value_counts("t1", ["d2"], "inventory", ["hw"])
    assert got == [AttributeValueCount("inventory", "hw", 3.0, 1)]


def test_status_tier_counts_in_one_query(store):
    for device_id, status, tier in [("a", "accepted", "micro"), ("b", "accepted", None), ("c", "accepted", "system"),
                                    ("d", "accepted", "micro"), ("e", "pending", None), ("f", "rejected", "micro"),
                                    ("g", "accepted", 5.0)]:
        attrs = [Attribute("system", "tier", tier)] if tier is not None else []
        store.create_device("t1", device_id, T, "e", attrs)
        store.set_status("t1", [(device_id, None)], status)
    store.create_device("t2", "z", T, "e")
    store.set_status("t2", [("z", None)], "accepted")
    assert store.status_tier_counts("t1", ("accepted", "pending"), ("system", "tier")) == {
        ("accepted", "micro"): 2, ("accepted", "system"): 1, ("accepted", None): 2, ("pending", None): 1}
    assert store.status_tier_counts("t3", ("accepted",), ("system", "tier")) == {}


def test_unsorted_search_pages_match_the_sorted_one(store):
    """Counted and paged in SQL (scalar server attributes without DISTINCT); arrays with several
    matching elements count their device once."""
    for i in range(30):
        store.create_device("t1", f"d{i:02d}", T, "e", [Attribute("inventory", "l", ["x", "x", "y"] if i % 2 else ["y"])])
        store.set_status("t1", [(f"d{i:02d}", None)], "accepted" if i % 3 else "pending")
    accepted = [eq("identity", "status", "accepted")]
    every = [f"d{i:02d}" for i in range(30) if i % 3]
    assert store.search("t1", accepted, [], 0, 100) == (every, 20)
    assert store.search("t1", accepted, [], 5, 5) == (every[5:10], 20)
    assert store.search("t1", accepted, [], 20, 5) == ([], 20)
    odd = [f"d{i:02d}" for i in range(30) if i % 2]
    assert store.search("t1", [eq("inventory", "l", "x")], [], 0, 4) == (odd[:4], 15)
    assert store.search("t1", [eq("inventory", "l", "x")], [], 12, 10) == (odd[12:], 15)


@pytest.fixture
def small_walks(monkeypatch):
    """The SQLite walk and estimate thresholds scaled down so that a few hundred devices take them."""
    import inventory.store.sqlite as sqlite_store
    import inventory.store.sqlite_search as sqlite_search
    import inventory.store.sqlite_walk as walk
    monkeypatch.setattr(sqlite_search, "SELECTIVITY_CAP", 60)
    monkeypatch.setattr(sqlite_store, "SELECTIVITY_CAP", 60)
    monkeypatch.setattr(sqlite_store, "COUNT_EXACT_CANDIDATES", 30)
    monkeypatch.setattr(walk, "COUNT_SAMPLE", 80)
    monkeypatch.setattr(walk, "WALK_BUDGET", 300)
    walked = []

    def walk_page(*args):
        page = walk.walk_page(*args)
        walked.append(page is not None)
        return page

    monkeypatch.setattr(sqlite_store, "walk_page", walk_page)
    return walked


def test_large_search_pages_equal_the_full_sort_and_totals_are_estimated(store, small_walks):
    """With `exact=False` (the public search) a large search reads its page by walking the sort
    order and may estimate its total: every page equals the one sorting every match, and a total
    is either exact or an EstimatedCount close to it (SQLite; MongoDB counts)."""
    import random

    from inventory.model import EstimatedCount
    rnd = random.Random(7)
    for i in range(400):
        attrs = {"kind": f"k{i % 3}", "site": f"s{rnd.randrange(8)}", "mem": float(rnd.choice([256, 512, 1024])),
                 "host": f"h{rnd.randrange(300):03d}"}  # ties on host
        if i % 17 == 0:
            attrs["host"] = float(i)  # numbers sort before strings
        if i % 23 == 0:
            del attrs["host"]  # lacking the sort key: last when descending
        if i % 29 == 0:
            attrs["host"] = [f"h{rnd.randrange(300):03d}", "h999"]  # an array sorts by its largest element
        make(store, "t1", f"d{i:03d}", **attrs)
    kind = eq("inventory", "kind", "k1")
    sites = Cond("inventory", "site", "in", strs=("s1", "s2", "s3", "s4"))
    big_mem = compile_predicate({"scope": "inventory", "attribute": "mem", "type": "$gte", "value": 512})
    rare = eq("inventory", "site", "s7")
    by_host = [Sort("inventory", "host", True)]
    # the driver (the first of several at the planner's cap): an equality, a `$in` (a sample
    # pivot from several value ranges), a range (a sorted prefix of its rows)
    for conds in ([kind, sites, big_mem], [kind, big_mem], [sites], [], [kind, rare, big_mem],
                  [sites, kind, big_mem], [big_mem, kind]):
        for sort in (by_host, [Sort("identity", "id", True)], [], [Sort("inventory", "host", False)],
                     by_host + [Sort("identity", "id", False)]):
            every, total = store.search("t1", conds, sort, 0, 1000)
            assert total == len(every)
            for skip, limit in ((0, 20), (0, 1), (13, 7), (len(every) - 3, 20), (len(every) + 5, 5)):
                page, estimated = store.search("t1", conds, sort, max(skip, 0), limit, exact=False)
                assert page == every[max(skip, 0):max(skip, 0) + limit], (conds, sort, skip)
                if isinstance(estimated, EstimatedCount):
                    assert abs(estimated - total) <= max(5, total // 2), (conds, estimated, total)
                else:
                    assert estimated == total, (conds, sort, skip)
    # the three-predicate search has its total estimated on SQLite (the driver has more rows than
    # COUNT_EXACT_CANDIDATES and others filter it), and counted on MongoDB
    sqlite = store.__class__.__name__ == "SqliteInventoryStore"
    _, total = store.search("t1", [kind, sites, big_mem], by_host, 0, 5, exact=False)
    assert isinstance(total, EstimatedCount) == sqlite
    # on SQLite pages were read by walks, and some walks gave up (budget, devices lacking the key)
    assert (True in small_walks and False in small_walks) == sqlite


def test_counts_of_a_predicate_and_a_status(store):
    """A predicate and `identity/status = X` (a deployment's filter, the UI's list) count the same
    whether or not every device has a status (SQLite counts the complement when all have one)."""
    from inventory.model import Attribute
    statuses = ["accepted", "pending", "rejected", "accepted", "noauth", "preauthorized"]
    for i in range(60):
        store.create_device("t1", f"d{i:02d}", T, "e", [Attribute("system", "group", f"g{i % 4}"),
                                                       Attribute("inventory", "l", ["x", "y"] if i % 2 else ["x"])])
        store.set_status("t1", [(f"d{i:02d}", None)], statuses[i % 6])
    group = Cond("system", "group", "in", strs=("g0", "g1"))

    def expected(status, test):
        return sum(1 for i in range(60) if statuses[i % 6] == status and test(i))

    for status in ("accepted", "pending", "preauthorized", "decommissioned"):
        accepted = eq("identity", "status", status)
        assert store.search("t1", [group, accepted], [], 0, 5)[1] == expected(status, lambda i: i % 4 < 2)
        assert store.search("t1", [eq("inventory", "l", "x"), accepted], [], 0, 5)[1] == expected(status, lambda i: True)
        assert store.search("t1", [eq("inventory", "l", "y"), accepted], [], 0, 5)[1] == expected(status, lambda i: i % 2)
    sqlite = hasattr(store, "_count_by_complement")
    accepted = [group, eq("identity", "status", "accepted")]
    if sqlite:
        assert store._count_by_complement(store.conn, "t1", accepted) == expected("accepted", lambda i: i % 4 < 2)
    store.create_device("t1", "nostatus", T, "e", [Attribute("system", "group", "g0")])  # no status row
    assert store.search("t1", accepted, [], 0, 5)[1] == expected("accepted", lambda i: i % 4 < 2)
    if sqlite:
        assert store._count_by_complement(store.conn, "t1", accepted) is None


def test_fleet_and_status_counts_follow_every_write(store):
    """The whole fleet's count and a status's count (on SQLite tables kept by triggers) equal the
    devices after creates, imports, status changes, attribute writes and deletions, per tenant."""
    import random

    from inventory.model import Attribute
    rnd = random.Random(5)
    statuses = ["accepted", "pending", "rejected"]
    truth: dict = {}
    for i in range(30):
        tenant = rnd.choice(["t1", "t2"])
        store.create_device(tenant, f"c{i}", T, "e", [Attribute("identity", "status", rnd.choice(statuses))]
                            if i % 3 else [])
    store.import_devices("t1", [(f"m{i}", [Attribute("identity", "status", "accepted")]) for i in range(10)], T, etag)
    for i in range(0, 30, 2):
        for tenant in ("t1", "t2"):
            store.set_status(tenant, [(f"c{i}", None)], rnd.choice(statuses))
    device = store.get_device("t1", "m0")
    store.apply("t1", "m0", device.version, [Attribute("inventory", "cpu", "arm")], [])
    device = store.get_device("t1", "m1")
    store.apply("t1", "m1", device.version, [], [("identity", "status")])
    for i in range(5):
        store.delete_device("t1", f"c{i}")
        store.delete_device("t2", f"c{i}")
    for tenant in ("t1", "t2", "t3"):
        every, total = store.search(tenant, [], [], 0, 1000)
        assert total == len(every)
        truth = {}
        for device in store.get_devices(tenant, every):
            value = next((a.value for a in device.attributes if a.key() == ("identity", "status")), None)
            truth[value] = truth.get(value, 0) + 1
        for status in statuses + ["noauth"]:
            assert store.search(tenant, [eq("identity", "status", status)], [], 0, 1)[1] == truth.get(status, 0)


@pytest.mark.parametrize("backend", ["sqlite"])  # MongoDB counts exactly
@pytest.mark.parametrize("planner_cap", [100, 5000])
def test_an_estimated_total_is_within_its_stated_error(store, monkeypatch, planner_cap):
    """SQLite's estimate of a large search's total on a generated fleet (4,000 devices, the
    thresholds scaled down): within three standard errors of the count, whether the planner
    counted the driving predicate exactly (its rows scaled) or only up to its cap (the fleet's
    device count scaled by the share of the id prefix that matches)."""
    import random

    import inventory.store.sqlite as sqlite_store
    import inventory.store.sqlite_search as sqlite_search
    import inventory.store.sqlite_walk as walk
    from inventory.model import EstimatedCount
    assert store.__class__.__name__ == "SqliteInventoryStore"
    monkeypatch.setattr(sqlite_search, "SELECTIVITY_CAP", planner_cap)
    monkeypatch.setattr(sqlite_store, "SELECTIVITY_CAP", planner_cap)
    monkeypatch.setattr(sqlite_store, "COUNT_EXACT_CANDIDATES", 50)
    monkeypatch.setattr(walk, "COUNT_SAMPLE", 400)
    rnd = random.Random(11)
    devices = []
    for i in range(4000):
        devices.append((f"{rnd.getrandbits(64):016x}", [
            Attribute("inventory", "kind", f"k{rnd.randrange(4)}"), Attribute("tags", "site", f"s{rnd.randrange(8)}"),
            Attribute("inventory", "mem", float(rnd.choice([256, 512, 1024]))),
            Attribute("inventory", "host", f"h{i:05d}")]))
    store.import_devices("t1", devices, T, lambda: "e")
    kind = eq("inventory", "kind", "k1")
    sites = Cond("tags", "site", "in", strs=("s1", "s2", "s3", "s4"))
    big_mem = compile_predicate({"scope": "inventory", "attribute": "mem", "type": "$gte", "value": 512})
    for conds in ([kind, sites, big_mem], [sites, kind, big_mem], [big_mem, kind, sites]):
        exact = store.search("t1", conds, [], 0, 1)[1]
        total = store.search("t1", conds, [Sort("inventory", "host", True)], 0, 20, exact=False)[1]
        assert isinstance(total, EstimatedCount), conds
        # 400 sampled driver rows (~100 per value of the `$in`): one standard error 7-12 %
        assert abs(total - exact) <= 0.35 * exact, (conds, total, exact)
