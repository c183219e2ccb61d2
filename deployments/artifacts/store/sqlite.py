"""The artifacts store on SQLite. Release summaries are recomputed inside the write transaction."""

from __future__ import annotations

import json
import sqlite3

from common.errors import Conflict
from deployments.artifacts.model import Artifact, ArtifactBrief, Release
from deployments.artifacts.store import ArtifactsStore, Filter, prefix_upper

# what a device's poll names of an artifact (ArtifactBrief), in its field order: read here, and by
# the deployments store beside a device's history (one statement per poll; see
# DeploymentsStore.poll_history)
BRIEF_COLUMNS = ("id", "name", "device_types", "size", "storage_key")


def brief(values) -> ArtifactBrief:
    """An ArtifactBrief from the BRIEF_COLUMNS of a row, in that order."""
    artifact_id, name, device_types, size, storage_key = values
    return ArtifactBrief(artifact_id, name, json.loads(device_types), size, storage_key)


MIGRATIONS = [
    [
        """CREATE TABLE artifacts (
            tenant_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
            device_types TEXT NOT NULL, update_types TEXT NOT NULL, doc TEXT NOT NULL,
            size INTEGER NOT NULL, modified REAL NOT NULL, PRIMARY KEY (tenant_id, id))""",
        "CREATE INDEX artifacts_by_name ON artifacts (tenant_id, name, id)",
        "CREATE INDEX artifacts_by_modified ON artifacts (tenant_id, modified)",
        "CREATE INDEX artifacts_by_description ON artifacts (tenant_id, description)",
        """CREATE TABLE artifact_device_types (tenant_id TEXT NOT NULL, device_type TEXT NOT NULL,
            artifact_id TEXT NOT NULL, PRIMARY KEY (tenant_id, device_type, artifact_id))""",
        "CREATE INDEX artifact_device_types_by_artifact ON artifact_device_types (tenant_id, artifact_id)",
        """CREATE TABLE artifact_depends (tenant_id TEXT NOT NULL, name TEXT NOT NULL, combo TEXT NOT NULL,
            artifact_id TEXT NOT NULL, PRIMARY KEY (tenant_id, name, combo))""",
        "CREATE INDEX artifact_depends_by_artifact ON artifact_depends (tenant_id, artifact_id)",
        """CREATE TABLE releases (tenant_id TEXT NOT NULL, name TEXT NOT NULL, notes TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '[]', tags_sort TEXT NOT NULL DEFAULT '', artifacts_count INTEGER NOT NULL,
            modified REAL NOT NULL, update_types TEXT NOT NULL, device_types TEXT NOT NULL,
            PRIMARY KEY (tenant_id, name))""",
        "CREATE INDEX releases_by_modified ON releases (tenant_id, modified)",
        "CREATE INDEX releases_by_count ON releases (tenant_id, artifacts_count)",
        """CREATE TABLE release_tags (tenant_id TEXT NOT NULL, tag TEXT NOT NULL, name TEXT NOT NULL,
            PRIMARY KEY (tenant_id, tag, name))""",
        "CREATE INDEX release_tags_by_name ON release_tags (tenant_id, name)",
        """CREATE TABLE release_update_types (tenant_id TEXT NOT NULL, update_type TEXT NOT NULL,
            name TEXT NOT NULL, PRIMARY KEY (tenant_id, update_type, name))""",
        "CREATE INDEX release_update_types_by_name ON release_update_types (tenant_id, name)",
        """CREATE TABLE artifact_uploads (tenant_id TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL,
            expire REAL NOT NULL, created REAL NOT NULL, PRIMARY KEY (tenant_id, id))""",
    ],
    [  # each artifact names its object; those stored before upload nonces keep `<tenant>/<id>`
        "ALTER TABLE artifacts ADD COLUMN storage_key TEXT NOT NULL DEFAULT ''",
        "UPDATE artifacts SET storage_key = CASE WHEN tenant_id = '' THEN id ELSE tenant_id || '/' || id END"
        " WHERE storage_key = ''",
    ],
    [
        """CREATE TABLE artifact_limits (tenant_id TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, name))""",
    ],
    [  # the sweep of expired direct uploads
        "CREATE INDEX artifact_uploads_by_expire ON artifact_uploads (expire)",
    ],
]

_TENANT_TABLES = ("artifact_uploads", "release_update_types", "release_tags", "releases", "artifact_depends",
                  "artifact_device_types", "artifacts", "artifact_limits")

_DOC_FIELDS = ("info", "signed", "updates", "provides", "depends", "clears_provides", "depends_idx")


def _like_range(column: str, flt: Filter, params: list) -> str:
    kind, value = flt
    if kind == "prefix":
        params += [value, prefix_upper(value)]
        return f"{column} >= ? AND {column} < ?"
    params += list(value)
    return f"{column} IN ({','.join('?' * len(value))})"


_BRIEF = f"SELECT {', '.join(BRIEF_COLUMNS)} FROM artifacts WHERE tenant_id = ? AND id = ?"


class SqliteArtifactsStore(ArtifactsStore):
    migrations = MIGRATIONS

    def __init__(self, db):
        self.db = db

    # artifacts ---------------------------------------------------------------
    @staticmethod
    def _artifact(row) -> Artifact:
        doc = json.loads(row["doc"])
        return Artifact(id=row["id"], name=row["name"], description=row["description"],
                        device_types=json.loads(row["device_types"]), update_types=json.loads(row["update_types"]),
                        size=row["size"], modified=row["modified"], storage_key=row["storage_key"],
                        **{k: doc[k] for k in _DOC_FIELDS})

    def insert_artifact(self, tenant: str, a: Artifact) -> None:
        doc = json.dumps({k: getattr(a, k) for k in _DOC_FIELDS})
        try:
            with self.db.transaction() as conn:
                conn.execute("INSERT INTO artifacts (tenant_id, id, name, description, device_types, update_types,"
                             " doc, size, modified, storage_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (tenant, a.id, a.name, a.description, json.dumps(a.device_types),
                              json.dumps(a.update_types), doc, a.size, a.modified, a.storage_key))
                conn.executemany("INSERT INTO artifact_device_types (tenant_id, device_type, artifact_id) VALUES (?, ?, ?)",
                                 [(tenant, dt, a.id) for dt in sorted(set(a.device_types))])
                conn.executemany("INSERT INTO artifact_depends (tenant_id, name, combo, artifact_id) VALUES (?, ?, ?, ?)",
                                 [(tenant, a.name, combo, a.id) for combo in a.depends_idx])
                self._refresh_release(conn, tenant, a.name)
        except sqlite3.IntegrityError:
            raise Conflict("an artifact with the same name and depends already exists") from None

    def find_conflict(self, tenant, name, depends_idx):
        if not depends_idx:
            return None
        row = self.db.conn.execute(
            f"SELECT artifact_id FROM artifact_depends WHERE tenant_id = ? AND name = ? AND combo IN "
            f"({','.join('?' * len(depends_idx))}) LIMIT 1", (tenant, name, *depends_idx)).fetchone()
        return self.get_artifact(tenant, row[0]) if row else None

    def get_artifact(self, tenant, artifact_id):
        row = self.db.conn.execute("SELECT * FROM artifacts WHERE tenant_id = ? AND id = ?",
                                   (tenant, artifact_id)).fetchone()
        return self._artifact(row) if row else None

    def get_artifact_brief(self, tenant, artifact_id):
        row = self.db.conn.execute(_BRIEF, (tenant, artifact_id)).fetchone()
        return None if row is None else brief(row)

    def artifacts_by_names(self, tenant, names):
        if not names:
            return []
        rows = self.db.conn.execute(
            f"SELECT * FROM artifacts WHERE tenant_id = ? AND name IN ({','.join('?' * len(names))})"
            " ORDER BY name, id", (tenant, *names)).fetchall()
        return [self._artifact(r) for r in rows]

    def list_artifacts(self, tenant, *, name=None, description=None, device_type=None, sort=("name", True),
                       skip=0, limit=None):
        where, params = ["a.tenant_id = ?"], [tenant]
        if name:
            where.append(_like_range("a.name", name, params))
        if description:
            where.append(_like_range("a.description", description, params))
        if device_type:
            sub: list = [tenant]
            cond = _like_range("d.device_type", device_type, sub)
            where.append(f"a.id IN (SELECT d.artifact_id FROM artifact_device_types d WHERE d.tenant_id = ? AND {cond})")
            params += sub
        clause = " AND ".join(where)
        total = self.db.conn.execute(f"SELECT count(*) FROM artifacts a WHERE {clause}", params).fetchone()[0]
        field, asc = sort
        direction = "ASC" if asc else "DESC"
        order = f"a.{field} {direction}, a.id {direction}" if field == "modified" else f"a.name {direction}, a.id"
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(skip)}"
        rows = self.db.conn.execute(f"SELECT a.* FROM artifacts a WHERE {clause} ORDER BY {order}{page}",
                                    params).fetchall()
        return [self._artifact(r) for r in rows], total

    def update_description(self, tenant, artifact_id, description, modified):
        with self.db.transaction() as conn:
            row = conn.execute("SELECT name FROM artifacts WHERE tenant_id = ? AND id = ?",
                               (tenant, artifact_id)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE artifacts SET description = ?, modified = ? WHERE tenant_id = ? AND id = ?",
                         (description, modified, tenant, artifact_id))
            self._refresh_release(conn, tenant, row["name"])
        return True

    def delete_artifact(self, tenant, artifact_id):
        with self.db.transaction() as conn:
            artifact = self.get_artifact(tenant, artifact_id)
            if artifact is None:
                return None
            for table, column in (("artifacts", "id"), ("artifact_device_types", "artifact_id"),
                                  ("artifact_depends", "artifact_id")):
                conn.execute(f"DELETE FROM {table} WHERE tenant_id = ? AND {column} = ?", (tenant, artifact_id))
            self._refresh_release(conn, tenant, artifact.name)
        return artifact

    def storage_usage(self, tenant):
        return self.db.conn.execute("SELECT coalesce(sum(size), 0) FROM artifacts WHERE tenant_id = ?",
                                    (tenant,)).fetchone()[0]

    # releases ----------------------------------------------------------------
    def _refresh_release(self, conn, tenant: str, name: str) -> None:
        rows = conn.execute("SELECT device_types, update_types, modified FROM artifacts"
                            " WHERE tenant_id = ? AND name = ?", (tenant, name)).fetchall()
        if not rows:
            conn.execute("DELETE FROM releases WHERE tenant_id = ? AND name = ?", (tenant, name))
            conn.execute("DELETE FROM release_tags WHERE tenant_id = ? AND name = ?", (tenant, name))
            conn.execute("DELETE FROM release_update_types WHERE tenant_id = ? AND name = ?", (tenant, name))
            return
        device_types = sorted({dt for r in rows for dt in json.loads(r["device_types"])})
        update_types = sorted({ut for r in rows for ut in json.loads(r["update_types"])})
        modified = max(r["modified"] for r in rows)
        conn.execute("INSERT INTO releases (tenant_id, name, artifacts_count, modified, update_types, device_types)"
                     " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET"
                     " artifacts_count = excluded.artifacts_count, modified = excluded.modified,"
                     " update_types = excluded.update_types, device_types = excluded.device_types",
                     (tenant, name, len(rows), modified, json.dumps(update_types), json.dumps(device_types)))
        conn.execute("DELETE FROM release_update_types WHERE tenant_id = ? AND name = ?", (tenant, name))
        conn.executemany("INSERT INTO release_update_types (tenant_id, update_type, name) VALUES (?, ?, ?)",
                         [(tenant, ut, name) for ut in update_types])

    @staticmethod
    def _release(row) -> Release:
        return Release(name=row["name"], notes=row["notes"], tags=json.loads(row["tags"]),
                       artifacts_count=row["artifacts_count"], modified=row["modified"],
                       update_types=json.loads(row["update_types"]), device_types=json.loads(row["device_types"]))

    def list_releases(self, tenant, *, name=None, tags=None, update_type=None, device_type=None,
                      description=None, sort=("name", True), skip=0, limit=None):
        where, params = ["r.tenant_id = ?"], [tenant]
        if name:
            where.append(_like_range("r.name", name, params))
        if tags:
            where.append(f"r.name IN (SELECT t.name FROM release_tags t WHERE t.tenant_id = ? AND t.tag IN"
                         f" ({','.join('?' * len(tags))}))")
            params += [tenant, *tags]
        if update_type:
            where.append("r.name IN (SELECT u.name FROM release_update_types u WHERE u.tenant_id = ?"
                         " AND u.update_type = ?)")
            params += [tenant, update_type]
        if device_type:
            where.append("r.name IN (SELECT a.name FROM artifacts a JOIN artifact_device_types d ON"
                         " d.tenant_id = a.tenant_id AND d.artifact_id = a.id WHERE d.tenant_id = ? AND d.device_type = ?)")
            params += [tenant, device_type]
        if description:
            where.append("r.name IN (SELECT a.name FROM artifacts a WHERE a.tenant_id = ? AND a.description = ?)")
            params += [tenant, description]
        clause = " AND ".join(where)
        total = self.db.conn.execute(f"SELECT count(*) FROM releases r WHERE {clause}", params).fetchone()[0]
        field, asc = sort
        direction = "ASC" if asc else "DESC"
        column = {"name": "r.name", "modified": "r.modified", "artifacts_count": "r.artifacts_count",
                  "tags": "r.tags_sort"}[field]
        order = f"{column} {direction}" + (", r.name ASC" if field != "name" else "")
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(skip)}"
        rows = self.db.conn.execute(f"SELECT r.* FROM releases r WHERE {clause} ORDER BY {order}{page}",
                                    params).fetchall()
        return [self._release(r) for r in rows], total

    def get_release(self, tenant, name):
        row = self.db.conn.execute("SELECT * FROM releases WHERE tenant_id = ? AND name = ?",
                                   (tenant, name)).fetchone()
        return self._release(row) if row else None

    def set_release_notes(self, tenant, name, notes):
        cur = self.db.conn.execute("UPDATE releases SET notes = ? WHERE tenant_id = ? AND name = ?",
                                   (notes, tenant, name))
        return cur.rowcount > 0

    def set_release_tags(self, tenant, name, tags, max_unique):
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM releases WHERE tenant_id = ? AND name = ?", (tenant, name)).fetchone() is None:
                return False
            others = {r[0] for r in conn.execute("SELECT DISTINCT tag FROM release_tags WHERE tenant_id = ?"
                                                 " AND name != ?", (tenant, name))}
            if len(others | set(tags)) > max_unique:
                raise Conflict("the total number of unique tags has been exceeded")
            conn.execute("UPDATE releases SET tags = ?, tags_sort = ? WHERE tenant_id = ? AND name = ?",
                         (json.dumps(tags), ",".join(sorted(tags)), tenant, name))
            conn.execute("DELETE FROM release_tags WHERE tenant_id = ? AND name = ?", (tenant, name))
            conn.executemany("INSERT INTO release_tags (tenant_id, tag, name) VALUES (?, ?, ?)",
                             [(tenant, t, name) for t in tags])
        return True

    def release_tags(self, tenant):
        return [r[0] for r in self.db.conn.execute(
            "SELECT DISTINCT tag FROM release_tags WHERE tenant_id = ? ORDER BY tag", (tenant,))]

    def update_types(self, tenant):
        return [r[0] for r in self.db.conn.execute(
            "SELECT DISTINCT update_type FROM release_update_types WHERE tenant_id = ? ORDER BY update_type", (tenant,))]

    # direct uploads ----------------------------------------------------------
    def insert_upload(self, tenant, upload_id, expire, created):
        self.db.conn.execute("INSERT INTO artifact_uploads (tenant_id, id, status, expire, created)"
                             " VALUES (?, ?, 'pending', ?, ?)", (tenant, upload_id, expire, created))

    def upload_status(self, tenant, upload_id):
        row = self.db.conn.execute("SELECT status FROM artifact_uploads WHERE tenant_id = ? AND id = ?",
                                   (tenant, upload_id)).fetchone()
        return row[0] if row else None

    def claim_upload(self, tenant, upload_id):
        cur = self.db.conn.execute("UPDATE artifact_uploads SET status = 'processing' WHERE tenant_id = ?"
                                   " AND id = ? AND status = 'pending'", (tenant, upload_id))
        return cur.rowcount > 0

    def set_upload_status(self, tenant, upload_id, status):
        self.db.conn.execute("UPDATE artifact_uploads SET status = ? WHERE tenant_id = ? AND id = ?",
                             (status, tenant, upload_id))

    def expired_uploads(self, before, limit):
        return [tuple(row) for row in self.db.conn.execute(
            "SELECT tenant_id, id, status FROM artifact_uploads WHERE expire < ? ORDER BY expire LIMIT ?",
            (before, limit))]

    def delete_upload(self, tenant, upload_id, status):
        return self.db.conn.execute("DELETE FROM artifact_uploads WHERE tenant_id = ? AND id = ? AND status = ?",
                                    (tenant, upload_id, status)).rowcount > 0

    # limits and organizations --------------------------------------------------
    def transaction(self):
        return self.db.transaction()

    def get_limit(self, tenant, name):
        row = self.db.conn.execute("SELECT value FROM artifact_limits WHERE tenant_id = ? AND name = ?",
                                   (tenant, name)).fetchone()
        return None if row is None else int(row[0])

    def set_limit(self, tenant, name, value):
        self.db.conn.execute("INSERT INTO artifact_limits (tenant_id, name, value) VALUES (?, ?, ?)"
                             " ON CONFLICT (tenant_id, name) DO UPDATE SET value = excluded.value",
                             (tenant, name, value))

    def delete_tenant(self, tenant):
        self.db.delete_tenant_rows(_TENANT_TABLES, tenant)
