"""The suite's mongomock (tests/mongomock_collmod.py) applies each operation atomically, as
MongoDB does, so tests of concurrent writes on the Mongo stores test the stores, not mongomock:
counters added to one document while other threads read it."""

from __future__ import annotations

import threading

import mongomock


def test_reads_while_updates_add_fields_to_the_same_document():
    coll = mongomock.MongoClient().db.counters
    coll.insert_one({"_id": 1, "stats": {}})
    errors: list[str] = []

    def guarded(fn):
        def run():
            try:
                fn()
            except Exception as exc:  # reported below
                errors.append(repr(exc))
        return run

    def writer(w):
        for i in range(500):  # a counter added to the document each time
            coll.update_one({"_id": 1}, {"$inc": {f"stats.w{w}_{i}": 1}})

    def reader():
        for _ in range(500):
            assert coll.find_one({"_id": 1}) is not None
            list(coll.find({"_id": 1}))

    threads = [threading.Thread(target=guarded(lambda w=w: writer(w))) for w in range(2)]
    threads += [threading.Thread(target=guarded(reader)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len(coll.find_one({"_id": 1})["stats"]) == 1000
