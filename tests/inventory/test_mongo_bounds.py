"""The MongoDB inventory search against MongoDB's real behaviour (mongomock runs the queries;
what it does not do — deadlines, sort limits, PCRE errors — is observed or injected)."""

from __future__ import annotations

import pytest
from pymongo import _csot
from pymongo.errors import OperationFailure

from common.errors import BadRequest
from inventory.model import Attribute, Sort, eq
from inventory.store.mongo import SEARCH_SECONDS, MongoInventoryStore


@pytest.fixture
def store(make_app):
    ctx = make_app("mongomock").extensions["mender"]
    ctx.ensure_migrated()
    store = ctx.services.inventory.store
    for i in range(3):
        store.create_device("t", f"d{i}", 1.0, "e", [Attribute("inventory", "n", float(i))])
    return store


class Recorder:
    """The devices collection, noting each call's deadline and each cursor option."""

    def __init__(self, collection, seen, fail=None):
        self._c, self._seen, self._fail = collection, seen, fail

    def count_documents(self, *a, **kw):
        self._seen.append(("count", _csot.get_timeout()))
        if self._fail:
            raise self._fail
        return self._c.count_documents(*a, **kw)

    def find(self, *a, **kw):
        self._seen.append(("find", _csot.get_timeout()))
        return CursorRecorder(self._c.find(*a, **kw), self._seen)


class CursorRecorder:
    def __init__(self, cursor, seen):
        self._cursor, self._seen = cursor, seen

    def __getattr__(self, name):
        def call(*a, **kw):
            self._seen.append((name, a))
            self._cursor = getattr(self._cursor, name)(*a, **kw)
            return self
        return call

    def __iter__(self):
        return iter(self._cursor)


def _record(monkeypatch, store, fail=None):
    seen = []
    real = store.devices
    monkeypatch.setattr(MongoInventoryStore, "devices", property(lambda self: Recorder(real, seen, fail)))
    return seen


def test_search_has_a_deadline_and_sorts_may_spill_to_disk(store, monkeypatch):
    seen = _record(monkeypatch, store)
    assert store.search("t", [], [Sort("inventory", "n", True)], 0, 2) == (["d2", "d1"], 3)
    deadlines = [t for op, t in seen if op in ("count", "find")]
    assert deadlines and all(t is not None and 0 < t <= SEARCH_SECONDS for t in deadlines)
    assert ("allow_disk_use", (True,)) in seen


@pytest.mark.parametrize("code, message, outcome", [
    (51091, "Regular expression is invalid: nothing to repeat", ([], 0)),
    (2, "Regular expression is invalid", ([], 0)),
    (2, "cannot sort with keys that are parallel arrays", BadRequest),
    (2, "$in needs an array", OperationFailure),  # any other BadValue is not read as "no match"
    (292, "Sort exceeded memory limit", OperationFailure),
])
def test_search_failures_are_told_apart(store, monkeypatch, code, message, outcome):
    _record(monkeypatch, store, fail=OperationFailure(message, code=code))
    conds = [eq("inventory", "n", 1.0)]
    if isinstance(outcome, tuple):
        assert store.search("t", conds, [], 0, 10) == outcome
    else:
        with pytest.raises(outcome):
            store.search("t", conds, [], 0, 10)


def test_hot_filters_have_tenant_led_indexes(store):
    """status and group (every listing, every deployment's targets, the group list) are index
    ranges led by tenant_id, in device_id order for range paging."""
    info = store.devices.index_information()
    keys = {name: [k for k, _ in spec["key"]] for name, spec in info.items()}
    status, group = "attributes.identity-status.value", "attributes.system-group.value"
    assert ["tenant_id", status, "device_id"] in keys.values()
    assert ["tenant_id", group, "device_id"] in keys.values()
    assert ["tenant_id", status, group] in keys.values()
    assert ["tenant_id", "attributes.$**"] in keys.values()


class _NoWildcardServer:
    """A database whose devices collection refuses wildcard index specs, as MongoDB < 4.2 does
    (and < 7.0 for a compound wildcard index); every other call goes to mongomock."""

    def __init__(self, db, refuse_compound_only):
        self._db, self._only_compound = db, refuse_compound_only
        self.created = []

    def __getitem__(self, name):
        collection, server = self._db[name], self

        class Devices:
            def __getattr__(self, attr):
                return getattr(collection, attr)

            def create_index(self, keys, **kw):
                wildcard = any(k.endswith("$**") for k, _ in keys)
                if wildcard and (len(keys) > 1 or not server._only_compound):
                    raise OperationFailure("bad index key pattern", code=67)
                server.created.append(kw["name"])
                return collection.create_index(keys, **kw)

        return Devices()


@pytest.mark.parametrize("refuse_compound_only", [True, False])
def test_migrations_go_on_without_wildcard_indexes(refuse_compound_only, caplog):
    import mongomock

    from inventory.store.mongo import MIGRATIONS
    db = _NoWildcardServer(mongomock.MongoClient(tz_aware=True)["t"], refuse_compound_only)
    with caplog.at_level("WARNING", logger="inventory.store.mongo"):
        for migration in MIGRATIONS:
            migration(db)
    # the hot-filter indexes exist whatever the server; the plain wildcard one only where it can
    assert {"tenant_device", "tenant_status_device", "tenant_group_device", "tenant_status_group"} <= set(db.created)
    assert ("attributes_wildcard" in db.created) is refuse_compound_only
    assert "tenant_attributes_wildcard" not in db.created
    indexes = set(db["inventory_devices"].index_information())
    assert ("attributes_wildcard" in indexes) is refuse_compound_only  # kept: no compound one replaced it
    assert "wildcard index not created" in caplog.text
