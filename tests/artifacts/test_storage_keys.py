"""Each upload gets its own storage key, and links name it (#14): after an artifact is deleted and
uploaded again under the same id, its old links never serve the new bytes. Artifacts stored before
keys had nonces keep theirs."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

from deployments.artifacts.storage import object_key
from tests.artifacts.helpers import UPLOAD, stored_objects, upload
from tests.artifacts.test_links import fetch, put_to
from tests.artifacts.tools import craft

def test_old_links_never_serve_a_new_upload_under_the_same_id(app, operator, svc):
    chosen = str(uuid.uuid4())
    first, second = craft("same-id", files=[("f", b"first")]), craft("same-id", files=[("f", b"second")])
    assert upload(operator, first, artifact_id=chosen).status_code == 201
    management = operator.get(f"{UPLOAD}/{chosen}/download").get_json()["uri"]
    with app.app_context():
        device = svc.device_link("", chosen, "http://localhost").uri
    for link in (management, device):
        assert fetch(app, link)[:2] == (200, first)
    [old_key] = stored_objects(app)
    assert operator.delete(f"{UPLOAD}/{chosen}").status_code == 204
    assert upload(operator, second, artifact_id=chosen).status_code == 201
    [new_key] = stored_objects(app)
    assert new_key != old_key and new_key.startswith(chosen + ".")
    for link in (management, device):
        status, body, _ = fetch(app, link)
        assert status == 404 and body != second, (status, body)
    fresh = operator.get(f"{UPLOAD}/{chosen}/download").get_json()["uri"]
    assert fetch(app, fresh)[:2] == (200, second)
    if svc.storage.kind == "filesystem":
        assert parse_qs(urlsplit(fresh).query)["x-men-object"] == [new_key]


def test_direct_uploads_get_a_fresh_key_too(app, operator):
    r = operator.post(UPLOAD + "/directupload").get_json()
    assert put_to(app, r["uri"], craft("direct")) == 200
    assert operator.post(f"{UPLOAD}/directupload/{r['id']}/complete").status_code == 202
    [key] = stored_objects(app)
    assert key.startswith(r["id"] + ".") and len(key) == len(r["id"]) + 17


def _insert_legacy(ctx, tenant: str, artifact_id: str, name: str, size: int) -> None:
    """An artifact row as the schema before storage keys held it."""
    depends_idx = [json.dumps({"device_type": "dt"}, separators=(",", ":"))]
    doc = {"info": {"format": "mender", "version": 3}, "signed": False, "updates": [], "provides": {"artifact_name": name},
           "depends": {"device_type": ["dt"]}, "clears_provides": [], "depends_idx": depends_idx}
    if ctx.db.kind == "sqlite":
        ctx.db.conn.execute("INSERT INTO artifacts (tenant_id, id, name, description, device_types, update_types,"
                            " doc, size, modified) VALUES (?, ?, ?, '', '[\"dt\"]', '[]', ?, ?, 1000.0)",
                            (tenant, artifact_id, name, json.dumps(doc), size))
        ctx.db.conn.execute("INSERT INTO artifact_device_types VALUES (?, 'dt', ?)", (tenant, artifact_id))
        ctx.db.conn.execute("INSERT INTO artifact_depends VALUES (?, ?, ?, ?)",
                            (tenant, name, depends_idx[0], artifact_id))
    else:
        from datetime import datetime, timezone
        ctx.db.db["artifacts"].insert_one({
            "tenant_id": tenant, "id": artifact_id, "name": name, "description": "", "device_types": ["dt"],
            "update_types": [], "depends_idx": depends_idx, "size": size,
            "modified": datetime.fromtimestamp(1000, tz=timezone.utc),
            "doc": json.dumps({k: v for k, v in doc.items() if k != "depends_idx"})})


def test_artifacts_stored_before_nonces_keep_their_key(make_app, backend, storage_config, clock):
    app = make_app(backend, _CLOCK=clock, **storage_config)
    ctx = app.extensions["mender"]
    svc = ctx.services.artifacts
    with app.app_context():
        ctx.db.migrate("artifacts", svc.store.migrations[:1])
        legacy_id = str(uuid.uuid4())
        data = craft("legacy")
        _insert_legacy(ctx, "", legacy_id, "legacy", len(data))
        writer = svc.storage.writer(object_key("", legacy_id))
        writer.write(data)
        writer.commit()
        ctx.migrate_all()
        assert svc.store.get_artifact("", legacy_id).storage_key == legacy_id
        link = svc.download_link("", legacy_id, "http://localhost").uri
        legacy_link = None
        if svc.storage.kind == "filesystem":  # a link signed before links named their object
            query, _ = svc.signer().sign("GET", f"/api/devices/v1/deployments/download/artifacts/{legacy_id}", "", 600)
            legacy_link = f"http://localhost/api/devices/v1/deployments/download/artifacts/{legacy_id}?{query}"
    for uri in filter(None, (link, legacy_link)):
        assert fetch(app, uri)[:2] == (200, data)
    with app.app_context():
        svc.delete("", legacy_id)
        svc.upload("", iter([craft("legacy", files=[("app.conf", b"new")])]), artifact_id=legacy_id)
    for uri in filter(None, (link, legacy_link)):
        assert fetch(app, uri)[0] == 404
