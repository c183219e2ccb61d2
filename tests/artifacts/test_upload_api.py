"""Artifact upload through the management and internal APIs, on each database × each storage."""

from __future__ import annotations

import io
import uuid

import pytest

from tests.artifacts.helpers import (UPLOAD, assert_nothing_left, read_bytes, stored_ids, stored_objects, upload,
                                     upload_file)
from tests.artifacts.tools import craft
from tests.helpers import Operator


def test_upload_registers_and_stores_the_artifact(app, operator, ma):
    path = ma.single_file("app-1.0", device_types=("dt1", "dt2"), provides=["foo:bar"])
    data = read_bytes(path)
    r = upload(operator, data, description="first build")
    assert r.status_code == 201 and r.get_data() == b""
    artifact_id = r.headers["Location"].rsplit("/", 1)[-1]
    assert r.headers["Location"] == f"{UPLOAD}/{artifact_id}"
    a = operator.get(r.headers["Location"]).get_json()
    assert a["id"] == artifact_id and a["name"] == "app-1.0" and a["description"] == "first build"
    assert a["device_types_compatible"] == ["dt1", "dt2"] and a["size"] == len(data)
    assert a["info"] == {"format": "mender", "version": 3} and a["signed"] is False
    assert a["artifact_provides"]["foo"] == "bar"
    assert a["artifact_depends"] == {"device_type": ["dt1", "dt2"]}
    assert a["updates"][0]["type_info"] == {"type": "single-file"}
    assert stored_ids(app) == [artifact_id]
    assert [x["id"] for x in operator.get(UPLOAD).get_json()] == [artifact_id]


def test_client_chosen_artifact_id(app, operator, ma):
    chosen = str(uuid.uuid4())
    data = read_bytes(ma.single_file("with-id"))
    r = upload(operator, data, artifact_id=chosen)
    assert r.status_code == 201 and r.headers["Location"].endswith(chosen)
    r = upload(operator, read_bytes(ma.single_file("other-name")), artifact_id=chosen)
    assert r.status_code == 409
    r = upload(operator, data, artifact_id="../../etc/passwd")
    assert r.status_code == 400 and "artifact_id" in r.get_json()["error"]
    assert stored_ids(app) == [chosen]


def test_same_name_and_depends_conflict(app, operator, ma):
    upload_file(operator, ma.single_file("rel", device_types=("dt1", "dt2")))
    r = upload(operator, read_bytes(ma.single_file("rel", device_types=("dt2", "dt3"))))
    assert r.status_code == 409
    body = r.get_json()
    assert "same name and depends" in body["error"] and "dt2" in body["error"] and body["request_id"]
    assert body["metadata"]["conflict"]["artifact_depends"] == {"device_type": "dt2"}
    assert len(stored_objects(app)) == 1
    # another device type, or the same one with other depends, is a new artifact of the release
    upload_file(operator, ma.single_file("rel", device_types=("dt3",)))
    upload_file(operator, ma.single_file("rel", device_types=("dt1",), depends=["rootfs-image.checksum:x"]))
    assert len(operator.get(UPLOAD).get_json()) == 3


def test_signed_and_version_2_artifacts(operator, ma, signing_keys):
    assert upload_file(operator, ma.single_file("s", key=signing_keys["ec"]))["signed"] is True
    a = upload_file(operator, ma.rootfs("v2", version=2))
    assert a["info"]["version"] == 2 and a["updates"][0]["type_info"]["type"] == "rootfs-image"


@pytest.mark.parametrize("case", ["empty", "not-tar", "truncated", "corrupted", "traversal", "unlisted",
                                  "trailing-garbage"])
def test_invalid_artifacts_are_refused_and_leave_nothing(app, operator, ma, case):
    good = read_bytes(ma.rootfs("r", compression="none"))
    data = {"empty": b"", "not-tar": b"GIF89a" + b"\0" * 5000, "truncated": good[: len(good) // 2],
            "corrupted": good[:-5000] + bytes([good[-5000] ^ 1]) + good[-4999:],
            "traversal": craft(files=[("../../etc/cron.d/x", b"* * * * * root sh")]),
            "unlisted": craft(extra_outer=[("data/0001.tar.gz", b"")]),
            "trailing-garbage": good + b"garbage" * 100}[case]
    r = upload(operator, data)
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["error"].startswith(("invalid artifact", "size:")) and r.get_json()["request_id"]
    assert_nothing_left(app, operator)


def test_size_field_must_match(app, operator, ma):
    data = read_bytes(ma.single_file("sz"))
    r = operator.post(UPLOAD, data={"size": str(len(data) + 1), "artifact": (io.BytesIO(data), "a.mender")},
                      content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"].startswith("size:")
    r = operator.post(UPLOAD, data={"size": "many", "artifact": (io.BytesIO(data), "a.mender")},
                      content_type="multipart/form-data")
    assert r.status_code == 400
    assert_nothing_left(app, operator)


def test_malformed_requests(app, operator, ma):
    data = read_bytes(ma.single_file("m"))
    assert operator.post(UPLOAD, data=data, content_type="application/octet-stream").status_code == 400
    r = operator.post(UPLOAD, data={"description": "no file"}, content_type="multipart/form-data")
    assert r.status_code == 400 and "artifact" in r.get_json()["error"]
    body = b"--XYZ\r\nContent-Disposition: form-data; name=\"artifact\"; filename=\"a\"\r\n\r\n" + data[:3000]
    r = operator.post(UPLOAD, data=body, content_type="multipart/form-data; boundary=XYZ")
    assert r.status_code == 400
    r = operator.post(UPLOAD, data=b"x" * 100000, content_type="multipart/form-data; boundary=XYZ")
    assert r.status_code == 400
    r = operator.post(UPLOAD, data={"artifact": (io.BytesIO(data), "a.mender"), "zzz_after": (io.BytesIO(b"x"), "x")},
                      content_type="multipart/form-data")
    assert r.status_code == 400 and "last part" in r.get_json()["error"]
    r = operator.post(UPLOAD, data={"description": "d" * 70000, "artifact": (io.BytesIO(data), "a.mender")},
                      content_type="multipart/form-data")
    assert r.status_code == 400
    assert_nothing_left(app, operator)


def test_over_the_size_limit_is_413(make_app, backend, storage_config, ma):
    app = make_app(backend, DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE=20000, **storage_config)
    op = Operator.create(app)
    small = read_bytes(ma.single_file("small"))
    assert upload(op, small).status_code == 201
    big = read_bytes(ma.rootfs("big", size=60000, compression="none"))
    r = upload(op, big)
    assert r.status_code == 413 and r.get_json()["request_id"]
    assert r.headers.get("Connection") == "close"
    assert len(stored_objects(app)) == 1
    # a declared length over limit + multipart overhead is refused before the body is read
    r = op.post(UPLOAD, data=b"x" * (20000 + 1024 * 1024 + 1), content_type="multipart/form-data; boundary=b")
    assert r.status_code == 413


def test_json_routes_keep_the_small_body_limit(operator):
    r = operator.put(f"{UPLOAD}/{uuid.uuid4()}", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                     content_type="application/json")
    assert r.status_code == 413


def test_authentication_and_tenants(app, client, operator, ma):
    data = read_bytes(ma.single_file("mine"))
    r = client.post(UPLOAD, data={"artifact": (io.BytesIO(data), "a.mender")}, content_type="multipart/form-data")
    assert r.status_code == 401
    mine = upload_file(operator, ma.single_file("mine"))
    other = Operator.create(app, client, tenant="tenantb")
    assert other.get(UPLOAD).get_json() == []
    for method in ("get", "delete"):
        r = getattr(other, method)(f"{UPLOAD}/{mine['id']}")
        assert r.status_code == 404 and r.get_json()["error"] == "artifact not found"
    assert other.get(f"{UPLOAD}/{mine['id']}/download").status_code == 404
    # the same name and device type in another tenant is no conflict
    theirs = upload_file(other, ma.single_file("mine"))
    assert stored_ids(app) == sorted([mine["id"], f"tenantb/{theirs['id']}"])


def test_internal_upload_for_a_tenant(app, client, operator, ma):
    data = read_bytes(ma.single_file("internal"))
    url = "/api/internal/v1/deployments/tenants/{}/artifacts"
    r = client.post(url.format("tenantc"), data={"artifact": (io.BytesIO(data), "a.mender")},
                    content_type="multipart/form-data")
    assert r.status_code == 404  # no such organization
    other = Operator.create(app, client, tenant="tenantc")
    r = client.post(url.format("tenantc"), data={"artifact": (io.BytesIO(data), "a.mender"), "description": "x"},
                    content_type="multipart/form-data")
    assert r.status_code == 201
    assert [a["name"] for a in other.get(UPLOAD).get_json()] == ["internal"]
    r = client.post(url.format("default"), data={"artifact": (io.BytesIO(data), "a.mender")},
                    content_type="multipart/form-data")
    assert r.status_code == 201 and len(operator.get(UPLOAD).get_json()) == 1
    r = client.post(url.format("bad..tenant"), data={"artifact": (io.BytesIO(data), "a.mender")},
                    content_type="multipart/form-data")
    assert r.status_code == 404  # not an organization id: no such route
    client.put("/api/internal/v1/tenantadm/tenants/tenantc/status", json={"status": "suspended"})
    r = client.post(url.format("tenantc"), data={"artifact": (io.BytesIO(data), "a.mender")},
                    content_type="multipart/form-data")
    assert r.status_code == 409 and "suspended" in r.get_json()["error"]


def test_storage_down_is_503_not_500(make_app, backend, ma, unique):
    from tests.artifacts.conftest import s3_config
    app = make_app(backend, **s3_config("http://127.0.0.1:9", unique("dead")))
    op = Operator.create(app)
    r = upload(op, read_bytes(ma.single_file("nowhere")))
    assert r.status_code == 503 and r.get_json()["error"] == "artifact storage failed"
    assert op.get(UPLOAD).get_json() == []
    assert op.post(UPLOAD + "/directupload").status_code == 503
