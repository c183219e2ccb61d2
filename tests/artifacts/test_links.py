"""Download links (the server's own signed links and S3 presigned links) and direct uploads."""

from __future__ import annotations

import io
import subprocess
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.artifacts.helpers import UPLOAD, read_bytes, s3_client, stored_ids, stored_objects, upload_file
from tests.artifacts.tools import craft
from tests.helpers import accepted_device

NEXT = "/api/devices/v1/deployments/device/deployments/next"


def fetch(app, uri: str, headers=None):
    """GET a link: S3 links over real HTTP, the server's own through the test client."""
    if "/api/devices/v1/deployments/download/" in uri:
        parts = urlsplit(uri)
        r = app.test_client().get(parts.path + "?" + parts.query, headers=headers or {})
        return r.status_code, r.get_data(), r.headers
    r = requests.get(uri, headers=headers or {}, timeout=30)
    return r.status_code, r.content, r.headers


def test_download_link_serves_the_exact_file(app, operator, ma):
    path = ma.rootfs("dl", size=30000)
    a = upload_file(operator, path)
    link = operator.get(f"{UPLOAD}/{a['id']}/download").get_json()
    status, body, headers = fetch(app, link["uri"])
    assert status == 200 and body == read_bytes(path)
    assert int(headers["Content-Length"]) == len(body)
    assert headers["Content-Disposition"].replace('"', '') == "attachment; filename=dl.mender"
    assert headers["Content-Type"] == "application/vnd.mender-artifact"
    status, body, headers = fetch(app, link["uri"], {"Range": "bytes=100-199"})
    assert status == 206 and body == read_bytes(path)[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{a['size']}"
    status, body, _ = fetch(app, link["uri"], {"Range": f"bytes={a['size'] - 10}-"})
    assert status == 206 and body == read_bytes(path)[-10:]


def test_device_link_is_what_the_deployments_service_gets(app, operator, ma, svc):
    a = upload_file(operator, ma.single_file("dev"))
    with app.app_context():
        link = svc.device_link("", a["id"], "https://ota.example.com:443")
    assert link.expire > time.time()
    uri = link.uri
    if svc.storage.kind == "filesystem":
        assert uri.startswith("https://ota.example.com:443/api/devices/v1/deployments/download/artifacts/")
        uri = uri.replace("https://ota.example.com:443", "http://localhost")
    status, body, _ = fetch(app, uri)
    assert status == 200 and len(body) == a["size"]


def head_requests(storage) -> list[str]:
    """The keys of every HEAD the storage sends to S3 from now on (botocore's event hooks)."""
    keys: list[str] = []
    storage.client.meta.events.register("before-parameter-build.s3.HeadObject",
                                        lambda params, **_: keys.append(params["Key"]))
    return keys


@pytest.mark.parametrize("storage", ["s3"])
def test_a_200_poll_checks_the_object_once_per_ttl(app, operator, ma, clock):
    """A pending deployment's polls do not HEAD the artifact's object each time: once, then again
    after DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS; an object removed behind the server's back is
    noticed then, one this process deletes at once."""
    ttl = app.config["DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS"]
    upload_file(operator, ma.single_file("polled", device_types=("test-device",)))
    device = accepted_device(app, operator)
    assert operator.post("/api/management/v1/deployments/deployments", json={
        "name": "d", "artifact_name": "polled", "devices": [device.id]}).status_code == 201
    storage = app.extensions["mender"].services.artifacts.storage
    heads = head_requests(storage)

    def poll():
        return device.request("GET", NEXT, query_string={"artifact_name": "factory-image",
                                                         "device_type": "test-device"}).status_code

    assert [poll() for _ in range(5)] == [200] * 5
    assert len(heads) == 1
    key = heads[0]
    clock.advance(ttl - 1)
    assert poll() == 200 and heads == [key]
    clock.advance(1)
    assert poll() == 200 and heads == [key, key]

    s3_client(storage.uri).delete_object(Bucket=storage.bucket, Key=key)  # another process, or by hand
    assert poll() == 200 and len(heads) == 2  # still taken as there, for at most the TTL
    clock.advance(ttl)
    assert poll() == 503 and len(heads) == 3  # no link to an object that is gone
    assert poll() == 503 and len(heads) == 4  # a miss is not remembered

    storage.writer(key).commit()  # back (empty), seen again
    assert poll() == 200 and len(heads) == 5
    storage.delete(key)  # this process deletes it: forgotten at once
    assert poll() == 503 and len(heads) == 6


def test_expired_and_tampered_links_are_refused(app, operator, ma, clock, svc):
    a = upload_file(operator, ma.single_file("exp"))
    b = upload_file(operator, ma.single_file("other"))
    uri = operator.get(f"{UPLOAD}/{a['id']}/download").get_json()["uri"]
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    sig_key = "X-Amz-Signature" if "X-Amz-Signature" in query else "x-men-signature"
    sig = query[sig_key][0]
    forged_sig = uri.replace(sig, ("A" if sig[0] != "A" else "B") + sig[1:])
    other_object = uri.replace(a["id"], b["id"])
    for forged in (forged_sig, other_object):
        status, _, _ = fetch(app, forged)
        assert status == 403, forged
    if svc.storage.kind == "filesystem":
        status, _, _ = fetch(app, uri.replace("tenant_id=", "tenant_id=someone"))
        assert status == 403
        later = dict((k, v[0]) for k, v in query.items())
        later["x-men-expire"] = "2099-01-01T00:00:00Z"
        status, _, _ = fetch(app, f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(later)}")
        assert status == 403
        status, _, _ = fetch(app, f"{parts.scheme}://{parts.netloc}{parts.path}")
        assert status == 400
    # a link signed 2 hours ago with a 15-minute lifetime has expired (the storage signs at the app clock)
    clock.advance(-7200)
    with app.app_context():
        old = svc.download_link("", a["id"], "http://localhost").uri
    clock.advance(7200)
    status, _, _ = fetch(app, old)
    assert status == 403
    status, _, _ = fetch(app, uri)
    assert status == 200


def test_links_of_deleted_artifacts_stop_working(app, operator, ma):
    a = upload_file(operator, ma.single_file("gone"))
    uri = operator.get(f"{UPLOAD}/{a['id']}/download").get_json()["uri"]
    assert operator.delete(f"{UPLOAD}/{a['id']}").status_code == 204
    status, _, _ = fetch(app, uri)
    assert status == 404, status  # our own links and S3 (the bucket owner may list it) alike


def put_to(app, uri: str, data: bytes):
    if "/api/devices/v1/deployments/download/" in uri:
        parts = urlsplit(uri)
        r = app.test_client().put(parts.path + "?" + parts.query, data=data)
        return r.status_code
    return requests.put(uri, data=data, timeout=30).status_code


def test_direct_upload(app, operator, ma, svc):
    r = operator.post(UPLOAD + "/directupload")
    assert r.status_code == 200
    link = r.get_json()
    assert set(link) == {"id", "uri", "expire"}
    complete = f"{UPLOAD}/directupload/{link['id']}/complete"
    r = operator.post(complete)
    assert r.status_code == 400 and "nothing has been uploaded" in r.get_json()["error"]
    data = read_bytes(ma.single_file("direct"))
    assert put_to(app, link["uri"], data) == 200
    r = operator.post(complete, json={"size": len(data), "updates": []})
    assert r.status_code == 202 and r.get_data() == b""
    a = operator.get(f"{UPLOAD}/{link['id']}").get_json()
    assert a["name"] == "direct" and a["size"] == len(data)
    assert operator.post(complete).status_code == 404
    assert stored_ids(app) == [link["id"]]
    # our own link dies with the upload; an S3 presigned PUT cannot be revoked, but it only
    # reaches the staging key, never the registered artifact
    assert put_to(app, link["uri"], b"overwrite") == (404 if svc.storage.kind == "filesystem" else 200)
    status, body, _ = fetch(app, operator.get(f"{UPLOAD}/{link['id']}/download").get_json()["uri"])
    assert status == 200 and body == data


def test_expired_direct_uploads_leave_no_staging_object(app, operator, ma, svc, clock):
    """A PUT through the link after `complete` (an S3 presigned PUT cannot be revoked; a filesystem
    PUT in flight commits after `complete` moved the object) and an upload never completed left
    their staging objects for ever: once the link expired a grace period ago, both go."""
    from deployments.artifacts.service import DIRECT_UPLOAD_GRACE_SECONDS
    from deployments.artifacts.storage import object_key
    done = operator.post(UPLOAD + "/directupload").get_json()
    data = read_bytes(ma.single_file("swept"))
    assert put_to(app, done["uri"], data) == 200
    assert operator.post(f"{UPLOAD}/directupload/{done['id']}/complete").status_code == 202
    if svc.storage.kind == "s3":
        assert put_to(app, done["uri"], b"late") == 200
    else:  # what a PUT still in flight when `complete` ran commits
        writer = svc.storage.writer(object_key("", done["id"]) + ".upload")
        writer.write(b"late")
        writer.commit()
    abandoned = operator.post(UPLOAD + "/directupload").get_json()
    assert put_to(app, abandoned["uri"], data) == 200
    assert sorted(stored_ids(app)) == sorted([done["id"], f"{done['id']}.upload", f"{abandoned['id']}.upload"])
    assert svc.sweep_direct_uploads() == 0  # links still valid: nothing goes
    clock.advance(DIRECT_UPLOAD_GRACE_SECONDS + 3600 + 1)
    fresh = operator.post(UPLOAD + "/directupload").get_json()
    assert put_to(app, fresh["uri"], read_bytes(ma.single_file("fresh"))) == 200
    assert svc.sweep_direct_uploads() == 2
    assert stored_ids(app) == sorted([done["id"], f"{fresh['id']}.upload"])
    assert operator.post(f"{UPLOAD}/directupload/{abandoned['id']}/complete").status_code == 404
    status, body, _ = fetch(app, operator.get(f"{UPLOAD}/{done['id']}/download").get_json()["uri"])
    assert status == 200 and body == data
    assert operator.post(f"{UPLOAD}/directupload/{fresh['id']}/complete").status_code == 202


def test_direct_upload_errors(app, operator, ma):
    assert operator.post(f"{UPLOAD}/directupload/{'0' * 8}-0000-0000-0000-{'0' * 12}/complete").status_code == 404
    assert operator.post(f"{UPLOAD}/directupload/not-an-id/complete").status_code == 404
    link = operator.post(UPLOAD + "/directupload").get_json()
    r = operator.post(f"{UPLOAD}/directupload/{link['id']}/complete", json={"size": "big"})
    assert r.status_code == 400
    assert put_to(app, link["uri"], craft(corrupt_manifest=["version"])) == 200
    r = operator.post(f"{UPLOAD}/directupload/{link['id']}/complete")
    assert r.status_code == 400 and "checksum mismatch" in r.get_json()["error"]
    assert operator.get(UPLOAD).get_json() == [] and stored_objects(app) == []
    assert operator.post(f"{UPLOAD}/directupload/{link['id']}/complete").status_code == 404
    # another tenant cannot complete it
    other = operator.post(UPLOAD + "/directupload").get_json()
    from tests.helpers import Operator
    intruder = Operator.create(app, operator.client, tenant="intruder")
    assert intruder.post(f"{UPLOAD}/directupload/{other['id']}/complete").status_code == 404


def test_generate_a_single_file_artifact(app, operator, ma, tmp_path):
    content = b"config=1\n" * 1000
    form = {"name": "gen-1", "description": "generated", "device_types_compatible": ["dt1", "dt2"],
            "type": "single_file", "args": '{"dest_dir": "/etc/app"}', "file": (io.BytesIO(content), "app.conf")}
    r = operator.post(UPLOAD + "/generate", data=form, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    a = operator.get(r.headers["Location"]).get_json()
    assert a["name"] == "gen-1" and a["description"] == "generated"
    assert a["device_types_compatible"] == ["dt1", "dt2"]
    files = {f["name"]: f for f in a["updates"][0]["files"]}
    assert set(files) == {"dest_dir", "filename", "permissions", "app.conf"} and files["app.conf"]["size"] == len(content)
    status, body, _ = fetch(app, operator.get(f"{UPLOAD}/{a['id']}/download").get_json()["uri"])
    out = tmp_path / "gen.mender"
    out.write_bytes(body)
    read = ma.read(str(out))
    assert read["name"] == "gen-1" and read["device_types"] == ["dt1", "dt2"]
    assert read["updates"][0]["type"] == "single-file"
    assert read["updates"][0]["provides"] == {"rootfs-image.single-file.version": "gen-1"}
    assert subprocess.run(["mender-artifact", "validate", str(out)], capture_output=True).returncode == 0
    r = operator.post(UPLOAD + "/generate", data=dict(form, file=(io.BytesIO(content), "app.conf")),
                      content_type="multipart/form-data")
    assert r.status_code == 409


@pytest.mark.parametrize("change,reason", [
    ({"name": ""}, "name"), ({"type": "rootfs"}, "type"), ({"device_types_compatible": []}, "device_types"),
    ({"args": "{}"}, "dest_dir"), ({"args": "not json"}, "args"), ({"args": '{"dest_dir": "/x", "permissions": "9"}'},
                                                                    "permissions"),
    ({"file": None}, "file")])
def test_generate_errors(app, operator, change, reason):
    form = {"name": "g", "device_types_compatible": ["dt1"], "type": "single_file", "args": '{"dest_dir": "/x"}',
            "file": (io.BytesIO(b"data"), "f.txt")}
    form.update(change)
    form = {k: v for k, v in form.items() if v is not None}
    r = operator.post(UPLOAD + "/generate", data=form, content_type="multipart/form-data")
    assert r.status_code == 400 and reason in r.get_json()["error"], r.get_json()
    assert stored_objects(app) == []


def test_own_links_answer_head_and_bad_ranges(make_app, backend, ma):
    from tests.helpers import Operator
    app = make_app(backend)  # filesystem storage: S3 serves its own links
    operator = Operator.create(app)
    a = upload_file(operator, ma.single_file("head"))
    parts = urlsplit(operator.get(f"{UPLOAD}/{a['id']}/download").get_json()["uri"])
    client = app.test_client()
    r = client.head(parts.path + "?" + parts.query)
    assert r.status_code == 200 and r.headers["Content-Length"] == str(a["size"]) and r.get_data() == b""
    assert r.headers["Accept-Ranges"] == "bytes"
    r = client.get(parts.path + "?" + parts.query, headers={"Range": f"bytes={a['size'] + 10}-"})
    assert r.status_code == 416 and r.get_json()["request_id"]
    whole = client.get(parts.path + "?" + parts.query).get_data()
    # several ranges (satisfiable ones among them), another unit, a malformed one: ignored (RFC
    # 9110 14.2), the whole file; werkzeug answered 416
    for rng in ("bytes=0-1,5-9", f"bytes=0-1,{a['size'] + 10}-", "bytes=-5,0-1", "items=0-1", "bytes=9-1", "bytes=x"):
        r = client.get(parts.path + "?" + parts.query, headers={"Range": rng})
        assert r.status_code == 200 and r.get_data() == whole and "Content-Range" not in r.headers, rng
    r = client.get(parts.path + "?" + parts.query, headers={"Range": "bytes=5-9"})
    assert r.status_code == 206 and r.get_data() == whole[5:10]
    r = client.put(parts.path + "?" + parts.query, data=b"x")
    assert r.status_code == 405


def test_a_put_landing_while_complete_parses_is_never_the_artifact(app, operator, ma, svc, monkeypatch):
    """The link's PUT still in flight when `complete` runs commits to the staging key while the
    parser reads the bytes put before: those parsed bytes are the artifact, never the late ones
    (the staging key used to be parsed, then moved: the late PUT's unparsed bytes became the
    artifact, under the metadata and size of the parsed ones)."""
    link = operator.post(UPLOAD + "/directupload").get_json()
    data = read_bytes(ma.single_file("parsed"))
    assert put_to(app, link["uri"], data) == 200
    from deployments.artifacts.storage import object_key
    storage = svc.storage
    staging = object_key("", link["id"]) + ".upload"
    assert storage.exists(staging)
    real_open = storage.open

    def open_then_late_put(key):
        source = real_open(key)
        writer = storage.writer(staging)  # what the late PUT's commit does, now
        writer.write(b"never parsed")
        writer.commit()
        return source

    monkeypatch.setattr(storage, "open", open_then_late_put)
    assert operator.post(f"{UPLOAD}/directupload/{link['id']}/complete").status_code == 202
    monkeypatch.undo()
    a = operator.get(f"{UPLOAD}/{link['id']}").get_json()
    assert a["name"] == "parsed" and a["size"] == len(data)
    status, body, _ = fetch(app, operator.get(f"{UPLOAD}/{link['id']}/download").get_json()["uri"])
    assert status == 200 and body == data
