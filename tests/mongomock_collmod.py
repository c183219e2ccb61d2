"""mongomock has no `collMod`. The server uses one form of it (auditlogs: a TTL index's
`expireAfterSeconds` changed in place), so the suite teaches mongomock that form, answered as
MongoDB answers it (IndexNotFound, code 27, for an index that does not exist). `calls` lists the
commands it was given. Every mongomock app of a test worker shares one database, so any app's
startup may meet a TTL that an earlier test changed. It also spares mongomock's filter the
documents that cannot match a query, and serializes mongomock's operations (both below)."""

from __future__ import annotations

import functools
import inspect
import threading

import mongomock.collection
import mongomock.database
from mongomock.filtering import filter_applies
from pymongo.errors import OperationFailure

_original = mongomock.database.Database.command
calls: list[dict] = []


def _command(db, cmd, **kwargs):
    if not (isinstance(cmd, dict) and "collMod" in cmd):
        return _original(db, cmd, **kwargs)
    calls.append(cmd)
    collection, spec = db[cmd["collMod"]], cmd["index"]
    info = collection.index_information().get(spec["name"])
    if info is None:
        raise OperationFailure("index not found", code=27)
    collection.drop_index(spec["name"])
    collection.create_index(info["key"], name=spec["name"], expireAfterSeconds=spec["expireAfterSeconds"])
    return {"ok": 1.0}


def install() -> None:
    if getattr(mongomock.collection.Collection, "_suite_installed", False):
        return
    mongomock.database.Database.command = _command
    mongomock.collection.Collection._iter_documents = _iter_documents
    _serialize_operations()
    mongomock.collection.Collection._suite_installed = True


# mongomock is not safe for threads: an update changes the stored document in place (a `$inc` of
# a new counter adds a key to it) while another thread's query filters or copies that same
# document ("dictionary changed size during iteration", seen in the concurrent status reports'
# test on a loaded machine). MongoDB applies each operation to a document atomically; the suite
# gets the same by running each mongomock operation under one lock per process: every public
# method of a collection, and a cursor's computation of its results (queries run lazily, at the
# first document asked for).
_OPERATIONS = threading.RLock()


def _serialized(fn):
    @functools.wraps(fn)
    def operation(*args, **kwargs):
        with _OPERATIONS:
            return fn(*args, **kwargs)
    return operation


def _serialize_operations() -> None:
    collection = mongomock.collection.Collection
    for name, value in list(vars(collection).items()):
        if not name.startswith("_") and inspect.isfunction(value):
            setattr(collection, name, _serialized(value))
    cursor = mongomock.collection.Cursor
    cursor._compute_results = _serialized(cursor._compute_results)


# mongomock runs its whole filter on every document of a collection for every query, and for
# every unique index at every insert: a 1,200-device import into a fresh collection took 20 s.
# Documents are first passed over where one of the filter's top-level equalities (in `$and` too)
# on a string or an integer cannot hold: the field is missing or a scalar of another value, which
# MongoDB never matches either (an array or a subdocument is left to the filter). mongomock's
# filter then decides on the rest, as before.
_original_iter_documents = mongomock.collection.Collection._iter_documents
_MISSING = object()
_NESTED = (list, tuple, dict)


def _iter_documents(collection, filter):
    if not isinstance(filter, dict):
        return _original_iter_documents(collection, filter)
    equalities = list(_equalities(filter))
    if not equalities or collection._store.is_empty:
        return _original_iter_documents(collection, filter)
    candidates = list(collection._store.documents)
    for key, value in equalities:  # `found == value` is False for _MISSING
        candidates = [document for document in candidates
                      if (found := document.get(key, _MISSING)) == value or isinstance(found, _NESTED)]
    return (document for document in candidates if filter_applies(filter, document))


def _equalities(filter: dict):
    """The filter's top-level equalities on a string or an integer, those of `$and` included."""
    for key, value in filter.items():
        if key == "$and" and isinstance(value, list):
            for part in value:
                if isinstance(part, dict):
                    yield from _equalities(part)
        elif type(value) in (str, int) and "." not in key and not key.startswith("$"):
            yield key, value
