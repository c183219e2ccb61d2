"""The audit log's APIs: list with Mender's filters and paging, the CSV export, the internal
API, and how a request's entry is written (caller, request id, address; nothing for a failure)."""

from __future__ import annotations

import csv
import io
import os
import time
import uuid

import pytest

from auditlogs.service import MAX_EXPORT, redact
from common.app import create_app
from common.clock import FrozenClock
from tests import mongomock_collmod
from tests.helpers import Operator, backend_config

LOGS = "/api/management/v1/auditlogs/logs"
EXPORT = "/api/management/v1/auditlogs/logs/export"
INTERNAL = "/api/internal/v1/auditlogs/tenants/{}/logs"
BACKENDS = ["sqlite", "mongomock"] + (["mongo"] if os.environ.get("TEST_MONGO_URL") else [])


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    app = create_app(backend_config(request.param, str(tmp_path_factory.mktemp("audit"))))
    client = app.test_client()
    op = Operator.create(app, client)
    yield app, client, op
    ctx = app.extensions["mender"]
    ctx.shutdown()
    if ctx.config.get("_DROP_DB"):
        ctx.db.client.drop_database(ctx.db.db_name)
    ctx.db.close()


def post_entry(client, tenant="default", **kw):
    body = {"actor": {"id": kw.pop("actor_id", "a1"), "type": kw.pop("actor_type", "user"),
                      "email": kw.pop("actor_email", "a1@example.com")},
            "action": kw.pop("action", "create"),
            "object": {"id": kw.pop("object_id", "o1"), "type": kw.pop("object_type", "user")},
            "change": kw.pop("change", "")}
    body.update(kw)
    r = client.post(INTERNAL.format(tenant), json=body)
    assert r.status_code == 201, r.data
    return r.get_json()


def test_filters_sort_and_paging(world):
    app, client, op = world
    tag = uuid.uuid4().hex[:8]
    post_entry(client, actor_id=f"alice-{tag}", object_id=f"d1-{tag}", object_type="device", action="decommission")
    post_entry(client, actor_id=f"bob-{tag}", actor_email=f"bob-{tag}@example.com", object_id=f"x-{tag}",
               object_type="deployment", object={"id": f"x-{tag}", "type": "deployment",
                                                 "deployment": {"name": f"nightly-{tag}", "artifact_name": "a-1"}})
    post_entry(client, actor_id=f"alice-{tag}", object_id=f"bob-{tag}", object_type="user")

    r = op.get(f"{LOGS}?actor_id=alice-{tag}")
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "2"
    assert [e["object"]["id"] for e in r.get_json()] == [f"bob-{tag}", f"d1-{tag}"]  # newest first
    r = op.get(f"{LOGS}?actor_id=alice-{tag}&sort=asc&per_page=1")
    assert [e["object"]["id"] for e in r.get_json()] == [f"d1-{tag}"]
    assert r.headers["X-Total-Count"] == "2" and 'rel="next"' in r.headers["Link"]
    r = op.get(f"{LOGS}?actor_email=bob-{tag}@example.com")
    (entry,) = r.get_json()
    assert entry["object"] == {"id": f"x-{tag}", "type": "deployment", "name": f"nightly-{tag}",
                               "deployment": {"name": f"nightly-{tag}", "artifact_name": "a-1"}}
    assert entry["actor"] == {"id": f"bob-{tag}", "type": "user", "email": f"bob-{tag}@example.com"}
    assert [e["object"]["id"] for e in op.get(f"{LOGS}?object_deployment_name=nightly-{tag}").get_json()] == [f"x-{tag}"]
    assert [e["action"] for e in op.get(f"{LOGS}?object_id=d1-{tag}&object_type=device").get_json()] == ["decommission"]
    now = int(time.time())
    assert op.get(f"{LOGS}?actor_id=alice-{tag}&created_after={now + 3600}").get_json() == []
    assert len(op.get(f"{LOGS}?actor_id=alice-{tag}&created_after={now - 3600}&created_before={now + 3600}")
               .get_json()) == 2
    for bad in ("sort=sideways", "per_page=501", "page=0", "actor_type=robot", "created_after=-1"):
        r = op.get(f"{LOGS}?{bad}")
        assert r.status_code == 400 and r.get_json()["request_id"], bad


def test_export_is_csv_with_separator_ignore_limit_and_defused_formulas(world):
    app, client, op = world
    tag = uuid.uuid4().hex[:8]
    for i in range(3):
        post_entry(client, actor_id=f"exp-{tag}", object_id=f"o{i}", change="=HYPERLINK(\"http://x\")" if i == 0 else "")
    r = op.get(f"{EXPORT}?actor_id=exp-{tag}&sort=asc&format_separator=_&ignore=actor_token_id&ignore=request_id")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    header = rows[0]
    assert header[:3] == ["time", "actor_type", "actor_id"] and "actor.id" not in header
    # `ignore` names columns with the default separator
    r = op.get(f"{EXPORT}?actor_id=exp-{tag}&sort=asc&ignore=actor.token_id&ignore=request_id")
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert "actor.token_id" not in rows[0] and "request_id" not in rows[0] and "client_address" in rows[0]
    assert [row[rows[0].index("object.id")] for row in rows[1:]] == ["o0", "o1", "o2"]
    assert rows[1][rows[0].index("change")] == "'=HYPERLINK(\"http://x\")"
    r = op.get(f"{EXPORT}?actor_id=exp-{tag}&limit=2")
    assert len(list(csv.reader(io.StringIO(r.get_data(as_text=True))))) == 3
    assert op.get(f"{EXPORT}?limit={MAX_EXPORT + 1}").status_code == 400
    assert op.get(f"{EXPORT}?limit=0").status_code == 400


def test_export_streams_past_one_batch(world):
    app, client, op = world
    ctx = app.extensions["mender"]
    tag = uuid.uuid4().hex[:8]
    svc = ctx.services.auditlogs
    from common.audit import Actor, AuditEvent
    with app.app_context():
        svc.record(svc.entries_for([AuditEvent("update", "device", f"d{i}") for i in range(1234)],
                                   tenant="", actor=Actor("user", f"bulk-{tag}")))
    r = op.get(f"{EXPORT}?actor_id=bulk-{tag}", buffered=False)
    assert r.is_streamed
    lines = r.get_data(as_text=True).strip().split("\r\n")
    assert len(lines) == 1235 and len({line.split(",")[7] for line in lines[1:]}) == 1234


def test_a_request_is_recorded_with_its_caller_id_and_address(world):
    app, client, op = world
    rid = "audit-" + uuid.uuid4().hex
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    r = op.post("/api/management/v1/useradm/users", json={"email": email, "password": "correct-horse-2"},
                headers={"X-MEN-RequestID": rid}, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert r.status_code == 201
    new_id = r.headers["Location"].rsplit("/", 1)[1]
    (entry,) = [e for e in op.get(f"{LOGS}?object_id={new_id}").get_json()]
    assert entry["request_id"] == rid and entry["client_address"] == "192.0.2.7"
    assert entry["action"] == "create" and entry["object"]["type"] == "user"
    assert entry["actor"]["email"] == op.email and entry["actor"]["type"] == "user" and entry["actor"]["id"]
    # a refused change writes nothing
    before = op.get(LOGS).headers["X-Total-Count"]
    assert op.post("/api/management/v1/useradm/users", json={"email": "not-an-email"}).status_code == 400
    assert op.get(LOGS).headers["X-Total-Count"] == before


def test_a_new_integration_is_recorded_with_its_id(world):
    """Which webhook was added (it sends the organization's device data out) is in its entry, as
    for every object created with a Location."""
    app, client, op = world
    r = op.post("/api/management/v1/iot-manager/integrations", json={
        "provider": "webhook", "credentials": {"type": "http", "http": {
            "url": "https://hooks.example.com/audit", "secret": "00112233445566778899aabbccddeeff"}}})
    assert r.status_code == 201, r.data
    new_id = r.headers["Location"].rsplit("/", 1)[1]
    (entry,) = op.get(f"{LOGS}?object_type=integration&object_id={new_id}").get_json()
    assert entry["action"] == "create" and entry["change"] == "provider: webhook"
    assert "00112233445566778899aabbccddeeff" not in str(entry)


def test_internal_api(world):
    app, client, op = world
    tenant = "t" + uuid.uuid4().hex[:10]
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 86400))
    entry = post_entry(client, tenant=tenant, object_id="x", time=when + "Z")
    assert entry["time"] == when + ".000Z"
    listed = client.get(INTERNAL.format(tenant)).get_json()
    assert [e["id"] for e in listed] == [entry["id"]]
    assert entry["id"] not in [e["id"] for e in op.get(LOGS).get_json()]  # another organization's
    for bad in ({}, {"actor": {"id": "a", "type": "robot"}, "action": "x", "object": {"type": "user"}},
                {"actor": {"id": "a\x00", "type": "user"}, "action": "x", "object": {"type": "user"}}):
        r = client.post(INTERNAL.format(tenant), json=bad)
        assert r.status_code == 400 and r.get_json()["request_id"], bad
    public = {"mender.listener": "public"}
    assert client.get(INTERNAL.format(tenant), environ_overrides=public).status_code == 404
    assert client.get("/api/internal/v1/auditlogs/health/alive").status_code == 204
    assert client.get("/api/internal/v1/auditlogs/health").status_code == 204


def test_secrets_are_redacted():
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    assert redact(f"token {jwt} used") == "token [redacted] used"
    assert redact("-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----") == "[redacted]"
    assert redact("password=hunter22 and more") == "[redacted] and more"
    assert redact("status: pending → accepted") == "status: pending → accepted"
    assert redact("x" * 5000).endswith("…") and len(redact("x" * 5000)) == 1024


def test_retention_prunes_old_entries(make_app):
    clock = FrozenClock()
    app = make_app("sqlite", _CLOCK=clock, AUDITLOGS_RETENTION_DAYS=1)
    client = app.test_client()
    op = Operator.create(app, client)  # login: one entry
    assert op.get(LOGS).headers["X-Total-Count"] == "1"
    clock.advance(2 * 86400)
    post_entry(client, object_id="fresh")  # writing sweeps what is past the retention
    assert [e["object"]["id"] for e in op.get(LOGS).get_json()] == ["fresh"]


def test_mongo_ttl_index_follows_the_setting_in_place(make_app):
    """(mongomock answers collMod through tests/mongomock_collmod.py, as MongoDB does.)"""
    calls = mongomock_collmod.calls
    app = make_app("mongomock", AUDITLOGS_RETENTION_DAYS=7)
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    calls.clear()
    entries = ctx.db.db["auditlogs_entries"]
    entries.drop_index("time_ttl")  # as a fresh database with the default age: changed in place
    entries.create_index([("time", 1)], name="time_ttl", expireAfterSeconds=90 * 86400)
    ctx.services.auditlogs.ensure_retention()
    assert entries.index_information()["time_ttl"]["expireAfterSeconds"] == 7 * 86400
    assert [c["index"]["expireAfterSeconds"] for c in calls] == [7 * 86400]  # collMod, once
    ctx.services.auditlogs.ensure_retention()  # already right: nothing asked of the server
    assert len(calls) == 1

    entries.drop_index("time_ttl")  # an index lost: collMod answers IndexNotFound, so it is created
    ctx.services.auditlogs.ensure_retention()
    assert entries.index_information()["time_ttl"]["expireAfterSeconds"] == 7 * 86400
    assert len(calls) == 2


def test_mongo_ttl_refusal_other_than_a_missing_index_is_not_hidden(make_app, monkeypatch):
    import mongomock.database
    from pymongo.errors import OperationFailure

    def refuse(db, cmd, **kwargs):
        raise OperationFailure("not authorized", code=13)

    app = make_app("mongomock", AUDITLOGS_RETENTION_DAYS=7)
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    entries = ctx.db.db["auditlogs_entries"]
    entries.drop_index("time_ttl")
    entries.create_index([("time", 1)], name="time_ttl", expireAfterSeconds=90 * 86400)
    monkeypatch.setattr(mongomock.database.Database, "command", refuse)
    with pytest.raises(OperationFailure):
        ctx.services.auditlogs.ensure_retention()
    # the index was neither dropped nor rebuilt behind the operator's back
    assert entries.index_information()["time_ttl"]["expireAfterSeconds"] == 90 * 86400


def test_admission_changes_and_remote_access_are_recorded(world):
    app, client, op = world
    from tests.helpers import Device
    device = Device(client)
    assert device.auth().status_code == 401
    record = op.find_device(device)
    aid = record["auth_sets"][0]["id"]
    r = op.put(f"/api/management/v2/devauth/devices/{record['id']}/auth/{aid}/status", json={"status": "accepted"})
    assert r.status_code == 204
    (entry,) = op.get(f"{LOGS}?object_id={record['id']}&object_type=device").get_json()
    assert entry["action"] == "update_status" and entry["change"] == "status: accepted"
    assert entry["actor"]["email"] == op.email
    # deviceconnect's hooks: a terminal session opened outside any HTTP request
    me = op.get("/api/management/v1/useradm/users/me").get_json()["id"]
    with app.app_context():
        app.extensions["mender"].services.deviceconnect.hooks("open_terminal", "", me, record["id"],
                                                              session_id="sess-1")
    entries = op.get(f"{LOGS}?object_id={record['id']}&sort=asc").get_json()
    assert [e["action"] for e in entries] == ["update_status", "open_terminal"]
    assert entries[1]["actor"] == {"id": me, "type": "user", "email": op.email}
    assert entries[1]["object"]["device"] == {"session_id": "sess-1"}


def test_every_entry_names_its_object(world, tmp_path):
    """The mutations whose entries had no object id (organization creation v1 and v2, the
    organization's settings and tenant token, a direct upload's start and completion, the bulk
    operations on devices, bulk preauthorization, deleting releases) now name it: one entry per
    device for a bulk operation, as the one-device routes write."""
    from tests.deployments.test_api import build_artifact
    from tests.helpers import Device, accepted_device
    from urllib.parse import urlsplit
    app, client, op = world
    seen = {e["id"] for e in op.get(f"{LOGS}?per_page=500").get_json()}

    def new_entries():
        entries = [e for e in op.get(f"{LOGS}?per_page=500").get_json() if e["id"] not in seen]
        seen.update(e["id"] for e in entries)
        return [(e["action"], e["object"]["type"], e["object"]["id"]) for e in entries]

    org = {"organization": f"org-{uuid.uuid4().hex[:6]}", "password": "password-of-the-org"}
    r = op.post("/api/management/v2/tenantadm/tenants", json={**org, "email": f"{uuid.uuid4().hex[:8]}@example.com"})
    assert r.status_code == 200, r.data
    assert new_entries() == [("create", "organization", r.get_json()["id"])]
    r = op.post("/api/management/v1/tenantadm/tenants", json={**org, "email": f"{uuid.uuid4().hex[:8]}@example.com"})
    assert r.status_code == 202, r.data
    [(action, kind, org_id)] = new_entries()
    assert (action, kind) == ("create", "organization") and org_id and org_id != "default"

    assert op.post("/api/management/v1/useradm/settings", json={"x": "y"}).status_code in (200, 201)
    assert op.post("/api/management/v1/tenantadm/user/tenant/tenant_token").status_code == 200
    assert sorted(new_entries()) == [("rotate_tenant_token", "organization", "default"),
                                     ("update", "settings", "default")]

    upload = op.post("/api/management/v1/deployments/artifacts/directupload").get_json()
    assert new_entries() == [("start_upload", "artifact", upload["id"])]
    parts = urlsplit(upload["uri"])
    data = build_artifact(tmp_path, f"direct-{uuid.uuid4().hex[:6]}")
    assert client.put(f"{parts.path}?{parts.query}", data=data).status_code == 200
    r = op.post(f"/api/management/v1/deployments/artifacts/directupload/{upload['id']}/complete")
    assert r.status_code == 202, r.data
    assert new_entries() == [("upload", "artifact", upload["id"])]
    release = op.get(f"/api/management/v1/deployments/artifacts/{upload['id']}").get_json()["name"]
    assert op.delete(f"/api/management/v2/deployments/deployments/releases?name={release}&name=none").status_code == 204
    assert new_entries() == [("delete", "release", release)]

    devices = [accepted_device(app, op, client) for _ in range(2)]
    new_entries()
    ids = sorted(d.id for d in devices)
    r = op.patch("/api/management/v2/inventory/devices/tags",
                 json={"device_ids": ids, "tags": [{"name": "site", "value": "lab"}]})
    assert r.status_code == 200, r.data
    assert sorted(new_entries()) == [("update_tags", "device", i) for i in ids]
    r = op.put("/api/management/v2/devauth/devices/status", json={"status": "rejected", "device_ids": ids})
    assert r.status_code == 200, r.data
    assert sorted(new_entries()) == [("update_status", "device", i) for i in ids]
    r = op.put("/api/management/v2/devauth/devices/status", json={"status": "rejected", "device_ids": ids})
    assert r.status_code == 200 and new_entries() == []  # nothing changed, nothing written
    r = op.delete("/api/management/v2/devauth/devices", json={"device_ids": ids})
    assert r.status_code == 200, r.data
    assert sorted(new_entries()) == [("decommission", "device", i) for i in ids]
    fresh = Device(client)
    r = op.post("/api/management/v2/devauth/preauthorizations", json=[
        {"identity_data": fresh.identity, "pubkey": fresh.pubkey}])
    assert r.status_code == 200, r.data
    assert new_entries() == [("preauthorize", "device", r.get_json()["results"][0]["device_id"])]
