"""Releases: v1 lists, v2 paged list with filters and sort, notes, tags, types, deletion."""

from __future__ import annotations

import pytest

from tests.artifacts.helpers import UPLOAD, abort, deploy, stored_ids, upload_file

V1 = "/api/management/v1/deployments/deployments/releases"
V2 = "/api/management/v2/deployments/deployments/releases"
ALL = "/api/management/v2/deployments/releases/all"


@pytest.fixture
def releases(operator, ma, clock):
    """Release 'app' (two artifacts: rpi, bbb), 'base' (rootfs, rpi), 'tool' (directory, qemu)."""
    out = {"app": [upload_file(operator, ma.single_file("app", device_types=("rpi",)), description="d1")]}
    clock.advance(10)
    out["app"].append(upload_file(operator, ma.single_file("app", device_types=("bbb",))))
    clock.advance(10)
    out["base"] = [upload_file(operator, ma.rootfs("base", device_types=("rpi",)))]
    clock.advance(10)
    out["tool"] = [upload_file(operator, ma.directory("tool", device_types=("qemu",)))]
    return out


def v2_names(r):
    assert r.status_code == 200, r.get_json()
    return [x["name"] for x in r.get_json()]


def test_v1_lists(operator, releases):
    r = operator.get(V1)
    assert r.status_code == 200
    body = r.get_json()
    assert [x["Name"] for x in body] == ["app", "base", "tool"]
    assert body[0]["ArtifactsCount"] == 2 and len(body[0]["Artifacts"]) == 2
    assert {a["id"] for a in body[0]["Artifacts"]} == {a["id"] for a in releases["app"]}
    assert [x["Name"] for x in operator.get(V1 + "?device_type=rpi").get_json()] == ["app", "base"]
    assert [x["Name"] for x in operator.get(V1 + "?update_type=directory").get_json()] == ["tool"]
    assert [x["Name"] for x in operator.get(V1 + "?description=d1").get_json()] == ["app"]
    r = operator.get(V1 + "/list?per_page=2&sort=modified:desc")
    assert [x["Name"] for x in r.get_json()] == ["tool", "base"] and r.headers["X-Total-Count"] == "3"
    assert 'rel="next"' in r.headers["Link"]
    assert operator.get(V1 + "/list?sort=bogus:asc").status_code == 400


def test_v2_list_filters_and_sort(operator, releases):
    r = operator.get(V2)
    body = r.get_json()
    assert [x["name"] for x in body] == ["app", "base", "tool"] and r.headers["X-Total-Count"] == "3"
    assert body[0]["artifacts_count"] == 2 and body[0]["tags"] == [] and body[0]["notes"] == ""
    assert body[0]["modified"] == releases["app"][1]["modified"]
    assert v2_names(operator.get(V2 + "?name=ba")) == ["base"]
    assert v2_names(operator.get(V2 + "?update_type=rootfs-image")) == ["base"]
    assert v2_names(operator.get(V2 + "?sort=artifacts_count:desc")) == ["app", "base", "tool"]
    assert v2_names(operator.get(V2 + "?sort=name:desc&per_page=1&page=2")) == ["base"]
    assert v2_names(operator.get(V2 + "?sort=modified:asc")) == ["app", "base", "tool"]
    for bad in ("sort=size:asc", "per_page=501", "page=-1"):
        assert operator.get(V2 + "?" + bad).status_code == 400


def test_get_release_notes_and_tags(operator, releases):
    r = operator.get(f"{V2}/app")
    assert r.status_code == 200 and r.get_json()["artifacts_count"] == 2
    assert operator.get(f"{V2}/nothing").status_code == 404
    assert operator.patch(f"{V2}/app", json={"notes": "Security fixes"}).status_code == 204
    assert operator.get(f"{V2}/app").get_json()["notes"] == "Security fixes"
    assert operator.patch(f"{V2}/app", json={"notes": "n" * 1025}).status_code == 400
    assert operator.patch(f"{V2}/app", json={"notes": "x", "name": "y"}).status_code == 400
    assert operator.patch(f"{V2}/nothing", json={"notes": "x"}).status_code == 404
    assert operator.put(f"{V2}/app/tags", json=["prod", "v1", "prod"]).status_code == 204
    assert operator.put(f"{V2}/base/tags", json=["beta"]).status_code == 204
    assert operator.get(f"{V2}/app").get_json()["tags"] == ["prod", "v1"]
    assert v2_names(operator.get(V2 + "?tag=beta&tag=v1")) == ["app", "base"]
    assert v2_names(operator.get(V2 + "?sort=tags:asc")) == ["tool", "base", "app"]
    assert operator.get(f"{ALL}/tags").get_json() == ["beta", "prod", "v1"]
    assert operator.get(f"{ALL}/types").get_json() == ["directory", "rootfs-image", "single-file"]
    assert operator.put(f"{V2}/app/tags", json=["bad tag!"]).status_code == 400
    assert operator.put(f"{V2}/app/tags", json={"tags": []}).status_code == 400
    assert operator.put(f"{V2}/app/tags", json=[f"t{i}" for i in range(21)]).status_code == 400
    assert operator.put(f"{V2}/nothing/tags", json=["x"]).status_code == 404
    assert operator.put(f"{V2}/app/tags", json=[]).status_code == 204
    assert operator.get(f"{ALL}/tags").get_json() == ["beta"]


def test_unique_tag_limit_is_409(operator, releases, ma):
    for name in ("r4", "r5", "r6"):
        upload_file(operator, ma.single_file(name))
    for k, name in enumerate(["app", "base", "tool", "r4", "r5"]):
        assert operator.put(f"{V2}/{name}/tags", json=[f"t{k}-{j}" for j in range(20)]).status_code == 204
    assert len(operator.get(f"{ALL}/tags").get_json()) == 100
    r = operator.put(f"{V2}/r6/tags", json=["brand-new"])
    assert r.status_code == 409 and "unique tags" in r.get_json()["error"]
    assert operator.put(f"{V2}/r6/tags", json=["t0-0", "t1-1"]).status_code == 204
    assert operator.put(f"{V2}/app/tags", json=["t1-2"]).status_code == 204  # frees 19
    assert operator.put(f"{V2}/r6/tags", json=["brand-new"]).status_code == 204


def test_delete_releases(app, operator, releases):
    deployment = deploy(operator, "base")
    r = operator.delete(V2 + "?name=app&name=base")
    assert r.status_code == 409 and "active deployments" in r.get_json()["error"]
    assert len(operator.get(UPLOAD).get_json()) == 4
    abort(operator, deployment)
    assert operator.delete(V2 + "?name=app&name=base&name=unknown").status_code == 204
    assert [a["name"] for a in operator.get(UPLOAD).get_json()] == ["tool"]
    assert v2_names(operator.get(V2)) == ["tool"]
    assert stored_ids(app) == [releases["tool"][0]["id"]]
    assert operator.delete(V2).status_code == 400
    assert operator.get(f"{V2}/app").status_code == 404


def test_v1alpha1_software(operator, releases):
    url = "/api/management/v1alpha1/deployments/software"
    assert operator.put(f"{V2}/app/tags", json=["prod"]).status_code == 204
    r = operator.get(url)
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "3"
    app = r.get_json()[0]
    assert app["name"] == "app" and app["kind"] == "release" and app["tags"] == ["prod"]
    assert app["compatible_types"] == ["bbb", "rpi"]
    assert [s["name"] for s in operator.get(url + "?name=base&name=tool").get_json()] == ["base", "tool"]
    assert [s["name"] for s in operator.get(url + "?name_prefix=ba").get_json()] == ["base"]
    assert [s["name"] for s in operator.get(url + "?tag=prod").get_json()] == ["app"]
    assert operator.get(url + "?kind=manifest").get_json() == []
    assert operator.get(url + "?kind=other").status_code == 400
    assert operator.get(url + "?name=a&name_prefix=b").status_code == 400
    assert operator.get(url + "?sort=artifacts_count:asc").status_code == 400
    assert operator.get(url + "/tags").get_json() == ["prod"]
    assert operator.get(url + "/tags?kind=manifest").get_json() == []
