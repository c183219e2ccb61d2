"""Management API v1 over HTTP: device list/get/delete, tags with ETags, groups."""

from __future__ import annotations

import pytest

from tests.inventory.conftest import attrs_of

V1 = "/api/management/v1/inventory"


@pytest.fixture
def fleet(svc):
    """Four accepted devices of the default tenant with inventory; one in another tenant."""
    svc.set_status("", ["a", "b", "c", "d"], "accepted")
    svc.update_device_attributes("", "a", [{"name": "cpu", "value": "arm"}, {"name": "mem", "value": 512}], True)
    svc.update_device_attributes("", "b", [{"name": "cpu", "value": "x86"}, {"name": "mem", "value": 2048}], True)
    svc.update_device_attributes("", "c", [{"name": "cpu", "value": "arm"}, {"name": "mem", "value": "512"}], True)
    svc.set_status("other", ["z"], "accepted")
    svc.update_device_attributes("other", "z", [{"name": "cpu", "value": "arm"}], True)
    return svc


def ids(r):
    assert r.status_code == 200, r.get_json()
    return [d["id"] for d in r.get_json()]


def test_needs_a_user_token(client):
    r = client.get(V1 + "/devices")
    assert r.status_code == 401 and r.get_json()["error"]


def test_list_paging_headers(operator, fleet):
    r = operator.get(V1 + "/devices?per_page=2&page=1")
    assert ids(r) == ["a", "b"]
    assert r.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in r.headers["Link"] and "page=2" in r.headers["Link"]
    r = operator.get(V1 + "/devices?per_page=2&page=2")
    assert ids(r) == ["c", "d"] and 'rel="next"' not in r.headers["Link"]
    device = operator.get(V1 + "/devices?per_page=1").get_json()[0]
    assert set(device) == {"id", "attributes", "updated_ts"}
    assert {"name": "cpu", "value": "arm", "scope": "inventory"} in device["attributes"]


@pytest.mark.parametrize("query,expected", [
    ("cpu=arm", ["a", "c"]),
    ("inventory/cpu=eq:arm", ["a", "c"]),
    ("mem=512", ["a", "c"]),  # a numeric-looking value matches the number and the string
    ("cpu=arm&mem=512", ["a", "c"]),
    ("identity/status=accepted", ["a", "b", "c", "d"]),
    ("system/status=accepted&cpu=x86", ["b"]),
    ("bogus/cpu=arm", []),  # an unsupported scope gives no results (as Mender)
    ("sort=mem:asc", ["d", "a", "b", "c"]),
    ("sort=mem", ["c", "b", "a", "d"]),  # default order: desc
    ("sort=inventory/cpu:asc,mem:desc", ["d", "c", "a", "b"]),
    ("sort=nothing:asc", ["a", "b", "c", "d"]),  # no such attribute: id order, no error
])
def test_list_filters_and_sort(operator, fleet, query, expected):
    assert ids(operator.get(f"{V1}/devices?{query}")) == expected


def test_list_group_filters(operator, fleet):
    fleet.assign_group("", "a", "g1")
    assert ids(operator.get(V1 + "/devices?group=g1")) == ["a"]
    assert ids(operator.get(V1 + "/devices?has_group=true")) == ["a"]
    assert ids(operator.get(V1 + "/devices?has_group=false")) == ["b", "c", "d"]


@pytest.mark.parametrize("query", ["per_page=10000", "per_page=0", "page=0", "page=x", "has_group=maybe",
                                   "sort=a:sideways", "sort=bogus/a:asc", "group=bad%20name"])
def test_list_bad_queries(operator, fleet, query):
    r = operator.get(f"{V1}/devices?{query}")
    assert r.status_code == 400 and set(r.get_json()) == {"error", "request_id"}


def test_tenant_isolation(operator, fleet):
    assert "z" not in ids(operator.get(V1 + "/devices"))
    assert operator.get(V1 + "/devices/z").status_code == 404


def test_get_and_delete_device(operator, fleet):
    r = operator.get(V1 + "/devices/a")
    assert r.status_code == 200 and r.get_json()["id"] == "a" and r.headers["ETag"]
    assert attrs_of(r.get_json(), "identity") == {"status": "accepted"}
    assert operator.get(V1 + "/devices/nope").status_code == 404
    assert operator.delete(V1 + "/devices/a").status_code == 204
    assert operator.delete(V1 + "/devices/a").status_code == 204  # idempotent
    assert operator.get(V1 + "/devices/a").status_code == 404


def test_tags_with_etag(operator, fleet):
    etag = operator.get(V1 + "/devices/a").headers["ETag"]
    r = operator.put(V1 + "/devices/a/tags", json=[{"name": "env", "value": "test", "description": "stage"}],
                     headers={"If-Match": etag})
    assert r.status_code == 200 and r.data == b""
    device = operator.get(V1 + "/devices/a")
    assert device.headers["ETag"] != etag
    tag = next(t for t in device.get_json()["attributes"] if t["scope"] == "tags")
    assert tag["value"] == "test" and tag["description"] == "stage" and tag["timestamp"].endswith("Z")
    r = operator.patch(V1 + "/devices/a/tags", json=[{"name": "x", "value": "y"}], headers={"If-Match": etag})
    assert r.status_code == 412 and r.get_json()["error"]
    r = operator.patch(V1 + "/devices/a/tags", json=[{"name": "x", "value": "y"}])  # no If-Match: unconditional
    assert r.status_code == 200
    assert attrs_of(operator.get(V1 + "/devices/a").get_json(), "tags") == {"env": "test", "x": "y"}
    assert operator.put(V1 + "/devices/nope/tags", json=[]).status_code == 404
    assert operator.put(V1 + "/devices/a/tags", json=[{"name": "n", "value": 1}]).status_code == 400
    too_many = [{"name": f"t{i}", "value": "v"} for i in range(21)]
    assert operator.put(V1 + "/devices/a/tags", json=too_many).status_code == 400
    assert operator.put(V1 + "/devices/a/tags", json={"name": "x"}).status_code == 400
    assert operator.put(V1 + "/devices/a/tags", data="[", content_type="application/json").status_code == 400


def test_device_group(operator, fleet):
    assert operator.get(V1 + "/devices/a/group").get_json() == {"group": None}
    assert operator.put(V1 + "/devices/a/group", json={"group": "g1"}).status_code == 204
    assert operator.get(V1 + "/devices/a/group").get_json() == {"group": "g1"}
    assert operator.put(V1 + "/devices/a/group", json={"group": "g2"}).status_code == 204  # moves
    assert operator.get(V1 + "/devices/a/group").get_json() == {"group": "g2"}
    for body in ({"group": "bad name"}, {"group": ""}, {"group": "x" * 257}, {"group": 5}, {}, ["g"]):
        assert operator.put(V1 + "/devices/a/group", json=body).status_code == 400, body
    assert operator.put(V1 + "/devices/nope/group", json={"group": "g1"}).status_code == 404
    assert operator.get(V1 + "/devices/nope/group").status_code == 404
    assert operator.delete(V1 + "/devices/a/group/g1").status_code == 404  # not in that group
    assert operator.delete(V1 + "/devices/a/group/g2").status_code == 204
    assert operator.delete(V1 + "/devices/a/group/g2").status_code == 404


def test_groups_and_group_devices(operator, fleet):
    fleet.set_status("", ["d"], "pending")
    r = operator.patch(V1 + "/groups/g1/devices", json=["a", "b", "d", "ghost"])
    assert r.status_code == 200 and r.get_json() == {"updated_count": 3, "matched_count": 3}
    r = operator.patch(V1 + "/groups/g1/devices", json=["a"])
    assert r.get_json() == {"updated_count": 0, "matched_count": 1}
    operator.put(V1 + "/devices/c/group", json={"group": "g2"})
    assert operator.get(V1 + "/groups").get_json() == ["g1", "g2"]
    assert operator.get(V1 + "/groups?status=pending").get_json() == ["g1"]
    r = operator.get(V1 + "/groups/g1/devices?per_page=2")
    assert r.get_json() == ["a", "b"] and r.headers["X-Total-Count"] == "3" and 'rel="next"' in r.headers["Link"]
    assert operator.get(V1 + "/groups/none/devices").status_code == 404
    assert operator.get(V1 + "/groups/g1/devices?per_page=501").status_code == 400
    r = operator.delete(V1 + "/groups/g1/devices", json=["a", "c"])
    assert r.status_code == 200 and r.get_json() == {"updated_count": 1}
    for bad in ([], [1], {"ids": []}):
        assert operator.patch(V1 + "/groups/g1/devices", json=bad).status_code == 400
        assert operator.delete(V1 + "/groups/g1/devices", json=bad).status_code == 400
    assert operator.patch(V1 + "/groups/bad!/devices", json=["a"]).status_code == 400
    r = operator.delete(V1 + "/groups/g1")
    assert r.status_code == 200 and r.get_json() == {"updated_count": 2}
    assert operator.delete(V1 + "/groups/g1").status_code == 404
    assert operator.get(V1 + "/groups").get_json() == ["g2"]
