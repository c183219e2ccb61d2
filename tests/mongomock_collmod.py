"""mongomock has no `collMod`. The server uses one form of it (auditlogs: a TTL index's
`expireAfterSeconds` changed in place), so the suite teaches mongomock that form, answered as
MongoDB answers it (IndexNotFound, code 27, for an index that does not exist). `calls` lists the
commands it was given. Every mongomock app of a test worker shares one database, so any app's
startup may meet a TTL that an earlier test changed."""

from __future__ import annotations

import mongomock.database
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
    mongomock.database.Database.command = _command
