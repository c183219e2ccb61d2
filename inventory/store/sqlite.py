"""SQLite inventory store: one row per attribute value (one per array element), indexed by
(tenant, scope, name, value) so that every search predicate is an index range."""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Sequence

from common.errors import Conflict
from inventory.model import (ATTR_GROUP, ATTR_STATUS, SCOPE_IDENTITY, SCOPE_SYSTEM, Attribute, AttributeCount,
                             AttributeValueCount, Cond, Device, EstimatedCount, Filter)
from inventory.regex import regex_match
from inventory.store import InventoryStore
from inventory.store.sqlite_search import (SELECTIVITY_CAP, TEXT_ROWS, build_search, candidate_filter, negated,
                                           sample_search, value_ranges)
from inventory.store.sqlite_walk import COUNT_EXACT_CANDIDATES, estimated_count, walk_page

# a device's status row (one per device, written by the server); {r}: '', 'new.' or 'old.'
_STATUS_ROW = ("{r}scope = 'identity' AND {r}name = 'status' AND {r}pos = -1 AND {r}value_str IS NOT NULL")

MIGRATIONS = [
    [
        "CREATE TABLE inventory_devices ("
        " tenant_id TEXT NOT NULL, id TEXT NOT NULL,"
        " created_ts REAL NOT NULL, updated_ts REAL NOT NULL,"
        " version INTEGER NOT NULL DEFAULT 0, revision INTEGER NOT NULL DEFAULT 0,"
        " tags_etag TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, id)) WITHOUT ROWID",
        # pos: -1 a scalar, 0.. the elements of an array, -2 the marker of an empty array
        "CREATE TABLE inventory_attributes ("
        " tenant_id TEXT NOT NULL, device_id TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL,"
        " pos INTEGER NOT NULL, value_str TEXT, value_num REAL, description TEXT, ts REAL,"
        " PRIMARY KEY (tenant_id, device_id, scope, name, pos)) WITHOUT ROWID",
        "CREATE INDEX inventory_attributes_str ON inventory_attributes (tenant_id, scope, name, value_str)",
        "CREATE INDEX inventory_attributes_num ON inventory_attributes (tenant_id, scope, name, value_num)",
        "CREATE TABLE inventory_filters ("
        " tenant_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, terms TEXT NOT NULL,"
        " created_ts REAL NOT NULL,"
        " PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, name))",
    ],
    [
        # free-text search: values of identity (but its status), inventory and tags, ASCII case-folded
        "CREATE INDEX inventory_attributes_text ON inventory_attributes (tenant_id, lower(value_str))"
        " WHERE " + TEXT_ROWS.replace("{a}.", ""),
    ],
    [
        # devices per tenant and per identity/status, kept by triggers in the writing transaction:
        # the counts of the whole fleet and of a status (the UI's device list) are one row, not an
        # index range of a million entries (see _count)
        "CREATE TABLE inventory_device_counts (tenant_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID",
        "INSERT INTO inventory_device_counts (tenant_id, n) SELECT tenant_id, count(*) FROM inventory_devices"
        " GROUP BY tenant_id",
        "CREATE TRIGGER inventory_device_counts_insert AFTER INSERT ON inventory_devices BEGIN"
        " INSERT INTO inventory_device_counts (tenant_id, n) VALUES (new.tenant_id, 1)"
        " ON CONFLICT DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER inventory_device_counts_delete AFTER DELETE ON inventory_devices BEGIN"
        " UPDATE inventory_device_counts SET n = n - 1 WHERE tenant_id = old.tenant_id; END",
        "CREATE TABLE inventory_status_counts (tenant_id TEXT NOT NULL, status TEXT NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (tenant_id, status)) WITHOUT ROWID",
        "INSERT INTO inventory_status_counts (tenant_id, status, n) SELECT tenant_id, value_str, count(*)"
        f" FROM inventory_attributes WHERE {_STATUS_ROW.format(r='')} GROUP BY tenant_id, value_str",
        "CREATE TRIGGER inventory_status_counts_insert AFTER INSERT ON inventory_attributes"
        f" WHEN {_STATUS_ROW.format(r='new.')} BEGIN"
        " INSERT INTO inventory_status_counts (tenant_id, status, n) VALUES (new.tenant_id, new.value_str, 1)"
        " ON CONFLICT DO UPDATE SET n = n + 1; END",
        "CREATE TRIGGER inventory_status_counts_delete AFTER DELETE ON inventory_attributes"
        f" WHEN {_STATUS_ROW.format(r='old.')} BEGIN"
        " UPDATE inventory_status_counts SET n = n - 1 WHERE tenant_id = old.tenant_id AND status = old.value_str;"
        " END",
        # an update is the delete of the old row and the insert of the new one (each if it counts)
        "CREATE TRIGGER inventory_status_counts_update_old AFTER UPDATE ON inventory_attributes"
        f" WHEN {_STATUS_ROW.format(r='old.')} BEGIN"
        " UPDATE inventory_status_counts SET n = n - 1 WHERE tenant_id = old.tenant_id AND status = old.value_str;"
        " END",
        "CREATE TRIGGER inventory_status_counts_update_new AFTER UPDATE ON inventory_attributes"
        f" WHEN {_STATUS_ROW.format(r='new.')} BEGIN"
        " INSERT INTO inventory_status_counts (tenant_id, status, n) VALUES (new.tenant_id, new.value_str, 1)"
        " ON CONFLICT DO UPDATE SET n = n + 1; END",
    ],
]

_ATTR_COLS = "scope, name, pos, value_str, value_num, description, ts"
_ROWS_PER_STATEMENT = 500  # rows of one multi-row INSERT/DELETE (9 bound values each: under SQLite's 32,766)
# attributes only the server writes, always as one scalar (one row per device)
_SCALAR = {(SCOPE_IDENTITY, ATTR_STATUS), (SCOPE_SYSTEM, ATTR_STATUS), (SCOPE_SYSTEM, ATTR_GROUP)}


def attribute_rows(tenant: str, device_id: str, attr: Attribute) -> list[tuple]:
    """The rows that store one attribute."""
    base = (tenant, device_id, attr.scope, attr.name)
    tail = (attr.description, attr.timestamp)
    value = attr.value
    if isinstance(value, list):
        if not value:
            return [base + (-2, None, None) + tail]
        return [base + ((i, v, None) if isinstance(v, str) else (i, None, v)) + tail
                for i, v in enumerate(value)]
    return [base + ((-1, value, None) if isinstance(value, str) else (-1, None, value)) + tail]


def _status_value(c) -> str | None:
    """X when `c` is `identity/status = X` (a string), else None."""
    if (c.scope, c.name) == (SCOPE_IDENTITY, ATTR_STATUS) and c.op == "eq" and len(c.strs) == 1 and not c.nums:
        return c.strs[0]
    return None


def _walk_key(sort) -> tuple | None | bool:
    """What a bounded walk follows for `sort`: None (id order), ("id", descending), the
    attribute's (scope, name) when sorted by it descending (ties by id), or False: a sort the walk
    cannot follow (ascending by an attribute puts the devices lacking it first; several keys)."""
    keys = list(sort)
    if len(keys) > 1 and (keys[-1].scope, keys[-1].name, keys[-1].descending) == (SCOPE_IDENTITY, "id", False):
        keys = keys[:-1]  # ties are by ascending id anyway
    if not keys:
        return None
    if len(keys) > 1:
        return False
    s = keys[0]
    if (s.scope, s.name) == (SCOPE_IDENTITY, "id"):
        return ("id", s.descending)
    return (s.scope, s.name) if s.descending else False


def rows_to_attributes(rows: Iterable[sqlite3.Row]) -> list[Attribute]:
    """Rows ordered by (scope, name, pos) → attributes."""
    out: list[Attribute] = []
    for row in rows:
        value = row["value_str"] if row["value_str"] is not None else row["value_num"]
        pos = row["pos"]
        if pos >= 0 and out and pos > 0 and out[-1].key() == (row["scope"], row["name"]):
            out[-1].value.append(value)
            continue
        if pos == -2:
            value = []
        elif pos >= 0:
            value = [value]
        out.append(Attribute(row["scope"], row["name"], value, row["description"], row["ts"]))
    return out


class SqliteInventoryStore(InventoryStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self.db = db

    @property
    def conn(self) -> sqlite3.Connection:
        conn = self.db.conn
        # register the regex function once per connection
        if not getattr(self.db._local, "inventory_regexp", None) is conn:
            conn.create_function("inv_regexp", 3, regex_match, deterministic=True)
            self.db._local.inventory_regexp = conn
        return conn

    # devices ------------------------------------------------------------------
    def _insert_attrs(self, conn, tenant: str, device_id: str, attrs: Sequence[Attribute]) -> None:
        # one INSERT of many rows (bound values: no executemany, whose every row is a step, and a
        # turn of the GIL taken back, under the writer lock)
        rows = [r for a in attrs for r in attribute_rows(tenant, device_id, a)]
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start:start + _ROWS_PER_STATEMENT]
            conn.execute("INSERT INTO inventory_attributes (tenant_id, device_id, " + _ATTR_COLS + ") VALUES "
                         + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)), [v for r in chunk for v in r])

    def create_device(self, tenant, device_id, now, etag, attributes=()):
        with self.db.transaction() as conn:
            cur = conn.execute("INSERT INTO inventory_devices (tenant_id, id, created_ts, updated_ts, tags_etag)"
                               " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (tenant, device_id, now, now, etag))
            if cur.rowcount == 0:
                return False
            self._insert_attrs(conn, tenant, device_id, attributes)
            return True

    def import_devices(self, tenant, devices, now, etag_factory):
        # one transaction; the existing ids read under the writer lock, then one executemany per
        # table for the whole chunk (not a statement per device)
        devices = list(devices)
        count = 0
        with self.db.transaction() as conn:
            for start in range(0, len(devices), 500):
                chunk = devices[start:start + 500]
                ids = [device_id for device_id, _ in chunk]
                known = {r[0] for r in conn.execute(
                    f"SELECT id FROM inventory_devices WHERE tenant_id = ? AND id IN ({','.join('?' * len(ids))})",
                    (tenant, *ids))}
                fresh = {}
                for device_id, attrs in chunk:
                    if device_id not in known and device_id not in fresh:
                        fresh[device_id] = attrs
                if not fresh:
                    continue
                conn.executemany("INSERT INTO inventory_devices (tenant_id, id, created_ts, updated_ts, tags_etag)"
                                 " VALUES (?, ?, ?, ?, ?)",
                                 [(tenant, device_id, now, now, etag_factory()) for device_id in fresh])
                rows = [r for device_id, attrs in fresh.items() for a in attrs
                        for r in attribute_rows(tenant, device_id, a)]
                if rows:
                    conn.executemany("INSERT INTO inventory_attributes (tenant_id, device_id, " + _ATTR_COLS +
                                     ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                count += len(fresh)
        return count

    @staticmethod
    def _record(row, attrs: list[Attribute]) -> Device:
        return Device(id=row["id"], created_ts=row["created_ts"], updated_ts=row["updated_ts"], version=row["version"],
                      revision=row["revision"], tags_etag=row["tags_etag"], attributes=attrs)

    def get_device(self, tenant, device_id, scopes=None):
        conn = self.conn
        row = conn.execute("SELECT * FROM inventory_devices WHERE tenant_id = ? AND id = ?",
                           (tenant, device_id)).fetchone()
        if row is None:
            return None
        sql = f"SELECT {_ATTR_COLS} FROM inventory_attributes WHERE tenant_id = ? AND device_id = ?"
        params = [tenant, device_id]
        if scopes is not None:
            sql += f" AND scope IN ({','.join('?' * len(scopes))})"
            params += list(scopes)
        rows = conn.execute(sql + " ORDER BY scope, name, pos", params).fetchall()
        return self._record(row, rows_to_attributes(rows))

    def get_devices(self, tenant, device_ids, select=None):
        if not device_ids:
            return []
        conn = self.conn
        marks = ",".join("?" * len(device_ids))
        devices = {r["id"]: r for r in conn.execute(
            f"SELECT * FROM inventory_devices WHERE tenant_id = ? AND id IN ({marks})", (tenant, *device_ids))}
        rows = conn.execute(f"SELECT device_id, {_ATTR_COLS} FROM inventory_attributes WHERE tenant_id = ?"
                            f" AND device_id IN ({marks}) ORDER BY device_id, scope, name, pos",
                            (tenant, *device_ids)).fetchall()
        by_device: dict[str, list] = {}
        for r in rows:
            by_device.setdefault(r["device_id"], []).append(r)
        wanted = set(select) if select is not None else None
        out = []
        for device_id in device_ids:
            row = devices.get(device_id)
            if row is None:
                continue
            attrs = rows_to_attributes(by_device.get(device_id, []))
            if wanted is not None:
                attrs = [a for a in attrs if a.key() in wanted]
            out.append(self._record(row, attrs))
        return out

    def apply(self, tenant, device_id, version, set_attrs, unset, updated_ts=None, tags_etag=None):
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE inventory_devices SET version = version + 1,"
                " updated_ts = coalesce(?, updated_ts), tags_etag = coalesce(?, tags_etag)"
                " WHERE tenant_id = ? AND id = ? AND version = ?",
                (updated_ts, tags_etag, tenant, device_id, version))
            if cur.rowcount == 0:
                return False
            keys = list(unset) + [a.key() for a in set_attrs]
            for start in range(0, len(keys), _ROWS_PER_STATEMENT):  # one DELETE for the keys
                chunk = keys[start:start + _ROWS_PER_STATEMENT]
                conn.execute("DELETE FROM inventory_attributes WHERE tenant_id = ? AND device_id = ?"
                             " AND (scope, name) IN (VALUES " + ", ".join(["(?, ?)"] * len(chunk)) + ")",
                             (tenant, device_id, *(v for k in chunk for v in k)))
            self._insert_attrs(conn, tenant, device_id, set_attrs)
            return True

    def set_status(self, tenant, items, status):
        count = 0
        with self.db.transaction() as conn:
            for device_id, revision in items:
                if revision is None:
                    cur = conn.execute("UPDATE inventory_devices SET version = version + 1"
                                       " WHERE tenant_id = ? AND id = ?", (tenant, device_id))
                else:
                    cur = conn.execute("UPDATE inventory_devices SET version = version + 1, revision = ?"
                                       " WHERE tenant_id = ? AND id = ? AND revision < ?",
                                       (revision, tenant, device_id, revision))
                if cur.rowcount == 0:
                    continue
                count += 1
                for scope in (SCOPE_IDENTITY, SCOPE_SYSTEM):
                    conn.execute("INSERT INTO inventory_attributes (tenant_id, device_id, scope, name, pos,"
                                 " value_str) VALUES (?, ?, ?, ?, -1, ?) ON CONFLICT DO UPDATE"
                                 " SET value_str = excluded.value_str, value_num = NULL",
                                 (tenant, device_id, scope, ATTR_STATUS, status))
        return count

    def delete_device(self, tenant, device_id):
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM inventory_attributes WHERE tenant_id = ? AND device_id = ?",
                         (tenant, device_id))
            cur = conn.execute("DELETE FROM inventory_devices WHERE tenant_id = ? AND id = ?",
                               (tenant, device_id))
            return cur.rowcount > 0

    def set_group(self, tenant, device_ids, group):
        matched = changed = 0
        with self.db.transaction() as conn:
            for device_id in dict.fromkeys(device_ids):
                if conn.execute("SELECT 1 FROM inventory_devices WHERE tenant_id = ? AND id = ?",
                                (tenant, device_id)).fetchone() is None:
                    continue
                matched += 1
                cur = conn.execute(
                    "INSERT INTO inventory_attributes (tenant_id, device_id, scope, name, pos, value_str)"
                    " VALUES (?, ?, ?, ?, -1, ?) ON CONFLICT DO UPDATE SET value_str = excluded.value_str"
                    " WHERE value_str IS NOT excluded.value_str",
                    (tenant, device_id, SCOPE_SYSTEM, ATTR_GROUP, group))
                if cur.rowcount:
                    changed += 1
                    conn.execute("UPDATE inventory_devices SET version = version + 1"
                                 " WHERE tenant_id = ? AND id = ?", (tenant, device_id))
        return matched, changed

    def clear_group(self, tenant, group, device_ids=None):
        with self.db.transaction() as conn:
            sql = ("SELECT device_id FROM inventory_attributes WHERE tenant_id = ? AND scope = ?"
                   " AND name = ? AND value_str = ?")
            params: list = [tenant, SCOPE_SYSTEM, ATTR_GROUP, group]
            if device_ids is not None:
                if not device_ids:
                    return 0
                sql += f" AND device_id IN ({','.join('?' * len(device_ids))})"
                params += list(device_ids)
            ids = [r[0] for r in conn.execute(sql, params)]
            for device_id in ids:
                conn.execute("DELETE FROM inventory_attributes WHERE tenant_id = ? AND device_id = ?"
                             " AND scope = ? AND name = ?", (tenant, device_id, SCOPE_SYSTEM, ATTR_GROUP))
                conn.execute("UPDATE inventory_devices SET version = version + 1"
                             " WHERE tenant_id = ? AND id = ?", (tenant, device_id))
            return len(ids)

    def record_check_ins(self, tenant, device_ids, value, stale_before):
        # one statement for the whole batch (the ids as a JSON array): executemany would step once
        # per device, each step a turn of the GIL taken back while this holds the writer lock
        # (one statement: it commits on its own, no BEGIN/COMMIT around it)
        self.db.conn.execute(
            "INSERT INTO inventory_attributes (tenant_id, device_id, scope, name, pos, value_str)"
            " SELECT ?, ids.value, 'system', 'check_in_time', -1, ? FROM json_each(?) AS ids"
            " WHERE EXISTS (SELECT 1 FROM inventory_devices WHERE tenant_id = ? AND id = ids.value)"
            " ON CONFLICT DO UPDATE SET value_str = excluded.value_str WHERE value_str < ?",
            (tenant, value, json.dumps(list(device_ids)), tenant, stale_before))

    # search -------------------------------------------------------------------
    @staticmethod
    def _matching(conn, tenant, conds, plan: dict | None = None):
        """The SQL (and its parameters) selecting the ids matching `conds`, or None (nothing can)."""
        def estimate(sql: str, params: list) -> int:
            return conn.execute(f"SELECT count(*) FROM ({sql} LIMIT {SELECTIVITY_CAP})", params).fetchone()[0]

        return build_search(tenant, conds, estimate, plan)

    def search(self, tenant, conds, sort, skip, limit, exact=True):
        conn = self.conn
        plan: dict = {}
        if conds:
            built = self._matching(conn, tenant, conds, plan)
            if built is None:
                return [], 0
            matching, params = built
        else:
            matching, params = "SELECT id FROM inventory_devices WHERE tenant_id = ?", [tenant]
        driver = plan.get("driver")
        # the driving predicate's rows are many and others filter them: probing every one of them
        # (for the count, or to sort them) costs more than a bounded walk and an estimate
        probed = driver is not None and plan["filtered"]
        large = probed and plan["sizes"][id(driver)] >= COUNT_EXACT_CANDIDATES
        ids = None
        key = _walk_key(sort)
        # a sort over few candidates is cheap as it is; over many (or the whole fleet) walk
        if not exact and key is not False and (large or (sort and not probed)):
            where, where_params = candidate_filter(tenant, conds, plan.get("sizes"))
            ids = walk_page(conn, tenant, where, where_params, key, skip + limit)
        if ids is not None and len(ids) < skip + limit:  # the walk reached the end: every match seen
            return ids[skip:], len(ids)
        if ids is None and sort:
            return self._sorted(conn, tenant, matching, params, sort, skip, limit)
        if large and not exact:
            driver_sql, driver_params = plan["driver_sql"]
            size = plan["sizes"][id(driver)]
            ranges = value_ranges(tenant, driver)
            total, estimated = estimated_count(conn, tenant, self._device_count(conn, tenant), driver_sql,
                                               driver_params, size if size < SELECTIVITY_CAP else None,
                                               *sample_search(tenant, conds, driver), matching, params,
                                               *(ranges or (None, None)))
            if estimated:
                total = EstimatedCount(max(len(ids or ()), total))
        else:
            total = self._count(conn, conds, matching, params, tenant)
        if ids is not None:
            return ids[skip:], total
        if not isinstance(total, EstimatedCount) and (total == 0 or skip >= total):
            return [], total
        # one page in SQL in id order, not every matching id through Python (a million accepted
        # devices: seconds). Attributes the server keeps scalar have one row per device, so their
        # matches need no DISTINCT (the ids come in index order).
        if not conds:
            rows = conn.execute("SELECT id FROM inventory_devices WHERE tenant_id = ? ORDER BY id LIMIT ? OFFSET ?",
                                (tenant, limit, skip)).fetchall()
        else:
            distinct = "" if all((c.scope, c.name) in _SCALAR for c in conds) else "DISTINCT "
            rows = conn.execute(f"SELECT {distinct}m.id FROM ({matching}) m ORDER BY m.id LIMIT ? OFFSET ?",
                                (*params, limit, skip)).fetchall()
        return [r[0] for r in rows], total

    @staticmethod
    def _sorted(conn, tenant, matching, params, sort, skip, limit):
        # one pass: every matching id, sorted; the total is their number
        order, order_params = [], []
        for s in sort:
            if (s.scope, s.name) == (SCOPE_IDENTITY, "id"):  # the device id itself
                order.append("m.id" + (" DESC" if s.descending else " ASC"))
                continue
            agg = "max" if s.descending else "min"
            order.append(f"(SELECT {agg}(coalesce(a.value_num, a.value_str)) FROM inventory_attributes a"
                         " WHERE a.tenant_id = ? AND a.device_id = m.id AND a.scope = ? AND a.name = ?)"
                         + (" DESC" if s.descending else " ASC"))
            order_params += [tenant, s.scope, s.name]
        order.append("m.id")
        rows = conn.execute(f"SELECT m.id FROM ({matching}) m ORDER BY {', '.join(order)}",
                            (*params, *order_params)).fetchall()
        ids = list(dict.fromkeys(r[0] for r in rows))  # duplicates (array elements) are adjacent
        return ids[skip:skip + limit], len(ids)

    def _count(self, conn, conds, matching, params, tenant) -> int:
        if not conds:
            return self._device_count(conn, tenant)
        if len(conds) == 1 and _status_value(conds[0]) is not None:
            return self._status_count(conn, tenant)[0].get(_status_value(conds[0]), 0)
        by_status = self._count_by_complement(conn, tenant, conds)
        if by_status is not None:
            return by_status
        distinct = "" if all((c.scope, c.name) in _SCALAR for c in conds) else "DISTINCT "
        return conn.execute(f"SELECT count({distinct}id) FROM ({matching})", params).fetchone()[0]

    def _count_by_complement(self, conn, tenant, conds) -> int | None:
        """One predicate and `identity/status = X` (what every deployment's filter and the UI's
        device list ask): the predicate's devices (an index count) minus those whose status is
        another value (small index ranges), instead of probing the status of each of them (half
        a million random reads for half a fleet). Valid only when every device has a status row
        (the server writes one per device): checked by two counts, else None."""
        status = [c for c in conds if _status_value(c) is not None]
        rest = [c for c in conds if c not in status]
        if len(status) != 1 or len(rest) != 1 or rest[0].on_id or negated(rest[0]) or rest[0].op == "text":
            return None
        if self._status_count(conn, tenant)[1] != self._device_count(conn, tenant):
            return None
        value = _status_value(status[0])
        total = 0
        for sign, part in ((1, []), (-1, [Cond(SCOPE_IDENTITY, ATTR_STATUS, "lt", strs=(value,))]),
                           (-1, [Cond(SCOPE_IDENTITY, ATTR_STATUS, "gt", strs=(value,))])):
            built = self._matching(conn, tenant, rest + part)
            if built is None:
                return None
            sql, params = built
            distinct = "" if (rest[0].scope, rest[0].name) in _SCALAR else "DISTINCT "
            total += sign * conn.execute(f"SELECT count({distinct}id) FROM ({sql})", params).fetchone()[0]
        return total

    @staticmethod
    def _device_count(conn, tenant) -> int:
        row = conn.execute("SELECT n FROM inventory_device_counts WHERE tenant_id = ?", (tenant,)).fetchone()
        return row[0] if row else 0

    @staticmethod
    def _status_count(conn, tenant) -> tuple[dict[str, int], int]:
        """({status: devices}, devices with a status row), from the triggers' table."""
        counts = dict(conn.execute("SELECT status, n FROM inventory_status_counts WHERE tenant_id = ?", (tenant,)))
        return counts, sum(counts.values())

    def matching_ids(self, tenant, conds, limit):
        conn = self.conn
        if not conds:
            sql, params = "SELECT id FROM inventory_devices WHERE tenant_id = ?", [tenant]
        else:
            built = self._matching(conn, tenant, conds)
            if built is None:
                return []
            sql, params = built
        rows = conn.execute(f"SELECT DISTINCT m.id FROM ({sql}) m ORDER BY m.id LIMIT ?", (*params, limit))
        return [r[0] for r in rows]

    def status_tier_counts(self, tenant, statuses, tier):
        rows = self.conn.execute(
            "SELECT s.value_str, t.value_str, count(*) FROM inventory_attributes s"
            " LEFT JOIN inventory_attributes t ON t.tenant_id = s.tenant_id AND t.device_id = s.device_id"
            " AND t.scope = ? AND t.name = ? AND t.pos = -1"
            f" WHERE s.tenant_id = ? AND s.scope = ? AND s.name = ? AND s.value_str IN ({','.join('?' * len(statuses))})"
            " GROUP BY 1, 2", (tier[0], tier[1], tenant, SCOPE_IDENTITY, ATTR_STATUS, *statuses)).fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def groups(self, tenant, status=None):
        # A skip scan of the group index: one seek per distinct group (a fleet has a few groups
        # and up to millions of devices; DISTINCT read every device's row). With a status, a
        # group is kept at the first of its devices found with it.
        conn, out, last = self.conn, [], None
        while True:
            row = conn.execute("SELECT min(value_str) FROM inventory_attributes WHERE tenant_id = ? AND scope = ?"
                               " AND name = ? AND value_str > ?",
                               (tenant, SCOPE_SYSTEM, ATTR_GROUP, "" if last is None else last)).fetchone()
            if row is None or row[0] is None:
                return out
            last = row[0]
            if status is None or conn.execute(
                    "SELECT 1 FROM inventory_attributes g WHERE g.tenant_id = ? AND g.scope = ? AND g.name = ?"
                    " AND g.value_str = ? AND EXISTS (SELECT 1 FROM inventory_attributes s WHERE s.tenant_id = ?"
                    " AND s.device_id = g.device_id AND s.scope = ? AND s.name = ? AND +s.value_str = ?) LIMIT 1",
                    (tenant, SCOPE_SYSTEM, ATTR_GROUP, last, tenant, SCOPE_IDENTITY, ATTR_STATUS, status)).fetchone():
                out.append(last)

    def attribute_counts(self, tenant, sample, limit):
        # the sampled ids drive the join (CROSS JOIN keeps them the outer loop): one primary-key
        # range per device, never a scan of every attribute row of the tenant
        rows = self.conn.execute(
            "SELECT a.scope, a.name, count(DISTINCT a.device_id) AS n"
            " FROM (SELECT id FROM inventory_devices WHERE tenant_id = ? ORDER BY id LIMIT ?) s"
            " CROSS JOIN inventory_attributes a ON a.tenant_id = ? AND a.device_id = s.id"
            " GROUP BY a.scope, a.name ORDER BY n DESC, a.scope, a.name LIMIT ?",
            (tenant, sample, tenant, limit)).fetchall()
        return [AttributeCount(r[0], r[1], r[2]) for r in rows]

    def attribute_value_counts(self, tenant, device_ids, scope, names):
        if not device_ids:
            return []
        # the ids drive the join (CROSS JOIN keeps them the outer loop): one primary-key range
        # per device, never a scan of the tenant's attributes
        name_clause = f" AND a.name IN ({','.join('?' * len(names))})" if names else ""
        rows = self.conn.execute(
            "WITH ids(device_id) AS MATERIALIZED (SELECT DISTINCT value FROM json_each(?))"
            " SELECT a.name, a.value_str, a.value_num, count(*) FROM ids CROSS JOIN inventory_attributes a"
            " ON a.tenant_id = ? AND a.device_id = ids.device_id AND a.scope = ?" + name_clause +
            " WHERE a.value_str IS NOT NULL OR a.value_num IS NOT NULL GROUP BY a.name, a.value_str, a.value_num",
            (json.dumps(list(device_ids)), tenant, scope, *(names or ()))).fetchall()
        return [AttributeValueCount(scope, r[0], r[1] if r[1] is not None else r[2], r[3]) for r in rows]

    # saved filters ------------------------------------------------------------
    def insert_filter(self, tenant, saved):
        try:
            self.conn.execute("INSERT INTO inventory_filters (tenant_id, id, name, terms, created_ts)"
                              " VALUES (?, ?, ?, ?, ?)",
                              (tenant, saved.id, saved.name, json.dumps(saved.terms), saved.created_ts))
        except sqlite3.IntegrityError:
            raise Conflict("a filter with this name already exists") from None

    @staticmethod
    def _filter(row) -> Filter:
        return Filter(id=row["id"], name=row["name"], terms=json.loads(row["terms"]), created_ts=row["created_ts"])

    def list_filters(self, tenant, skip, limit):
        conn = self.conn
        total = conn.execute("SELECT count(*) FROM inventory_filters WHERE tenant_id = ?", (tenant,)).fetchone()[0]
        rows = conn.execute("SELECT * FROM inventory_filters WHERE tenant_id = ? ORDER BY name LIMIT ? OFFSET ?",
                            (tenant, limit, skip)).fetchall()
        return [self._filter(r) for r in rows], total

    def get_filter(self, tenant, filter_id):
        row = self.conn.execute("SELECT * FROM inventory_filters WHERE tenant_id = ? AND id = ?",
                                (tenant, filter_id)).fetchone()
        return self._filter(row) if row else None

    def delete_filter(self, tenant, filter_id):
        cur = self.conn.execute("DELETE FROM inventory_filters WHERE tenant_id = ? AND id = ?", (tenant, filter_id))
        return cur.rowcount > 0

    def delete_tenant(self, tenant: str) -> None:
        self.db.delete_tenant_rows(("inventory_attributes", "inventory_devices", "inventory_filters",
                                    "inventory_status_counts", "inventory_device_counts"), tenant)
