"""Artifact listing, details, editing, deletion and storage usage (each database × each storage)."""

from __future__ import annotations

import uuid

import pytest

from tests.artifacts.helpers import (ARTIFACTS_V2, UPLOAD, abort, deploy, stored_ids, stored_objects,
                                     upload_file)


@pytest.fixture
def three(operator, ma, clock):
    """Three artifacts: app-1 (rpi, 'first'), app-2 (rpi, 'second'), base (bbb, 'first build'), uploaded in that order."""
    out = {}
    for name, dt, desc in [("app-1", "rpi", "first"), ("app-2", "rpi", "second"), ("base", "bbb", "first build")]:
        out[name] = upload_file(operator, ma.single_file(name, device_types=(dt,)), description=desc)
        clock.advance(10)
    return out


def names(r):
    assert r.status_code == 200, r.get_json()
    return [a["name"] for a in r.get_json()]


def test_v1_list_and_filters(operator, three):
    assert names(operator.get(UPLOAD)) == ["app-1", "app-2", "base"]
    assert names(operator.get(UPLOAD + "?name=base")) == ["base"]
    assert names(operator.get(UPLOAD + "?name=app*")) == ["app-1", "app-2"]
    assert names(operator.get(UPLOAD + "?device_type=rpi")) == ["app-1", "app-2"]
    assert names(operator.get(UPLOAD + "?description=first*")) == ["app-1", "base"]
    assert names(operator.get(UPLOAD + "?name=nothing")) == []
    assert names(operator.get(UPLOAD + "?unknown=1")) == ["app-1", "app-2", "base"]


def test_v1_paged_list(operator, three):
    r = operator.get(UPLOAD + "/list?per_page=2&page=1")
    assert names(r) == ["app-1", "app-2"] and r.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in r.headers["Link"] and "page=2" in r.headers["Link"]
    r = operator.get(UPLOAD + "/list?per_page=2&page=2")
    assert names(r) == ["base"] and 'rel="prev"' in r.headers["Link"] and 'rel="next"' not in r.headers["Link"]
    assert names(operator.get(UPLOAD + "/list?sort=modified:desc")) == ["base", "app-2", "app-1"]
    assert names(operator.get(UPLOAD + "/list?sort=name:desc&device_type=rpi")) == ["app-2", "app-1"]
    for bad in ("sort=size:asc", "sort=name:up", "per_page=501", "page=0", "per_page=x"):
        r = operator.get(UPLOAD + "/list?" + bad)
        assert r.status_code == 400 and r.get_json()["request_id"], bad


def test_v2_list(operator, three):
    r = operator.get(ARTIFACTS_V2 + "?per_page=1")
    assert names(r) == ["app-1"] and 'rel="next"' in r.headers["Link"]
    assert names(operator.get(ARTIFACTS_V2 + "?name=base&name=app-2")) == ["app-2", "base"]
    assert names(operator.get(ARTIFACTS_V2 + "?name=app*")) == ["app-1", "app-2"]
    assert names(operator.get(ARTIFACTS_V2 + "?device_type=bb*")) == ["base"]
    assert names(operator.get(ARTIFACTS_V2 + "?description=second")) == ["app-2"]
    r = operator.get(ARTIFACTS_V2 + "?name=app*&name=base")
    assert r.status_code == 400 and "prefix" in r.get_json()["error"]
    assert operator.get(ARTIFACTS_V2 + "?per_page=1000").status_code == 400
    assert operator.client.get(ARTIFACTS_V2).status_code == 401


def test_get_edit_and_errors(operator, three, clock):
    a = three["app-1"]
    assert operator.get(f"{UPLOAD}/{a['id']}").get_json() == a
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        r = operator.get(f"{UPLOAD}/{missing}")
        assert r.status_code == 404 and r.get_json()["error"] == "artifact not found"
    clock.advance(100)
    r = operator.put(f"{UPLOAD}/{a['id']}", json={"description": "edited"})
    assert r.status_code == 204 and r.get_data() == b""
    edited = operator.get(f"{UPLOAD}/{a['id']}").get_json()
    assert edited["description"] == "edited" and edited["modified"] > a["modified"]
    assert operator.put(f"{UPLOAD}/{uuid.uuid4()}", json={"description": "x"}).status_code == 404
    r = operator.put(f"{UPLOAD}/{a['id']}", json={"description": "x", "name": "hijack"})
    assert r.status_code == 400 and "name" in r.get_json()["error"]
    assert operator.put(f"{UPLOAD}/{a['id']}", json={"description": 5}).status_code == 400
    assert operator.put(f"{UPLOAD}/{a['id']}", json={"description": "d" * 5000}).status_code == 400
    assert operator.put(f"{UPLOAD}/{a['id']}", data="[", content_type="application/json").status_code == 400
    assert operator.get(f"{UPLOAD}/{a['id']}").get_json()["name"] == "app-1"


def test_delete_removes_record_and_file(app, operator, three):
    a = three["app-2"]
    assert len(stored_objects(app)) == 3
    r = operator.delete(f"{UPLOAD}/{a['id']}")
    assert r.status_code == 204
    assert operator.get(f"{UPLOAD}/{a['id']}").status_code == 404
    assert operator.delete(f"{UPLOAD}/{a['id']}").status_code == 404
    assert a["id"] not in stored_ids(app) and len(stored_objects(app)) == 2


def test_artifacts_in_use_cannot_be_deleted_or_edited(operator, three):
    a = three["base"]
    deployment = deploy(operator, "base")
    r = operator.delete(f"{UPLOAD}/{a['id']}")
    assert r.status_code == 409 and "active deployment" in r.get_json()["error"]
    r = operator.put(f"{UPLOAD}/{a['id']}", json={"description": "x"})
    assert r.status_code == 422
    abort(operator, deployment)
    assert operator.delete(f"{UPLOAD}/{a['id']}").status_code == 204


def test_storage_usage(operator, three, ma):
    r = operator.get("/api/management/v1/deployments/limits/storage")
    assert r.status_code == 200
    assert r.get_json() == {"limit": 0, "usage": sum(a["size"] for a in three.values())}


def test_download_link_shape(operator, three, storage):
    a = three["app-1"]
    r = operator.get(f"{UPLOAD}/{a['id']}/download")
    assert r.status_code == 200
    link = r.get_json()
    assert set(link) == {"uri", "expire"} and link["expire"].endswith("Z")
    assert link["uri"].startswith("http")
    assert operator.get(f"{UPLOAD}/{uuid.uuid4()}/download").status_code == 404
