"""Internal API v1/v2 over HTTP (no token: reachable only inside the deployment)."""

from __future__ import annotations

from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from inventory.api import render
from tests.inventory.conftest import T0, attrs_of, pred

I1 = "/api/internal/v1/inventory"
I2 = "/api/internal/v2/inventory"


def test_alive_and_health(client):
    assert client.get(I1 + "/alive").status_code == 204
    assert client.get(I1 + "/health").status_code == 204


def test_create_tenant(client):
    assert client.post(I1 + "/tenants", json={"tenant_id": "t1"}).status_code == 201
    assert client.post(I1 + "/tenants", json={"tenant": 1}).status_code == 400


def test_create_device(client, svc):
    body = {"id": "d1", "attributes": [{"name": "ip", "value": "1.2.3.4", "scope": "inventory"},
                                       {"name": "mac", "value": "aa", "scope": "identity"}]}
    r = client.post(I1 + "/tenants/t1/devices", json=body)
    assert r.status_code == 201 and r.headers["Location"].endswith("/devices/d1")
    device = render.device(svc.get_device("t1", "d1"))
    assert attrs_of(device, "inventory") == {"ip": "1.2.3.4"} and attrs_of(device, "identity") == {"mac": "aa"}
    # again: the attributes are upserted
    body["attributes"][0]["value"] = "5.6.7.8"
    assert client.post(I1 + "/tenants/t1/devices", json=body).status_code == 201
    assert attrs_of(svc.get_device("t1", "d1"), "inventory") == {"ip": "5.6.7.8"}
    for bad in ({}, {"id": ""}, {"id": "x", "attributes": [{"name": "a", "value": {}}]}, {"id": "x", "y": 1}, []):
        assert client.post(I1 + "/tenants/t1/devices", json=bad).status_code == 400, bad


def test_delete_device(client, svc):
    svc.set_status("t1", ["d1"], "accepted")
    assert client.delete(I1 + "/tenants/t1/devices/d1").status_code == 204
    assert client.delete(I1 + "/tenants/t1/devices/d1").status_code == 404


def test_bulk_status_with_revisions(client, svc):
    url = I1 + "/tenants/t1/devices/status/accepted"
    r = client.post(url, json=[{"id": "d1", "revision": 2}, {"id": "d2", "revision": 1}])
    assert r.status_code == 200
    assert svc.search_device_ids("t1") == (["d1", "d2"], 2)
    client.post(I1 + "/tenants/t1/devices/status/rejected", json=[{"id": "d1", "revision": 1}])  # stale
    client.post(I1 + "/tenants/t1/devices/status/rejected", json=[{"id": "d2", "revision": 3}])
    assert svc.search_device_ids("t1") == (["d1"], 1)
    assert svc.search_device_ids("t1", status="rejected") == (["d2"], 1)
    assert client.post(I1 + "/tenants/t1/devices/status/bogus", json=[{"id": "d1"}]).status_code == 400
    for bad in ({"id": "d1"}, [{"revision": 1}], [{"id": "d1", "revision": "1"}], ["d1"]):
        assert client.post(url, json=bad).status_code == 400, bad


def test_scope_patch_and_unmodified_since(client, svc, clock):
    url = I1 + "/tenants/t1/device/d1/attribute/scope/monitor"
    assert client.patch(url, json=[{"name": "alerts", "value": 3}]).status_code == 200
    assert attrs_of(svc.get_device("t1", "d1"), "monitor") == {"alerts": 3}
    old = format_datetime(datetime.fromtimestamp(T0 - 3600, tz=timezone.utc), usegmt=True)
    url = I1 + "/tenants/t1/device/d1/attribute/scope/inventory"
    r = client.patch(url, json=[{"name": "a", "value": "1"}], headers={"If-Unmodified-Since": old})
    assert r.status_code == 412 and r.get_json()["error"]
    assert client.patch(url, json=[{"name": "a", "value": "1"}], headers={"If-Unmodified-Since": "x"}).status_code == 400
    assert client.patch(I1 + "/tenants/t1/device/d1/attribute/scope/nope", json=[]).status_code == 400
    assert client.patch(url, json=[{"name": "a", "value": [1, "x"]}]).status_code == 400
    r = client.patch(I1 + "/tenants/t1/device/d1/attributes",
                     json=[{"name": "env", "value": "lab", "scope": "tags"}, {"name": "b", "value": "2"}])
    assert r.status_code == 200
    device = svc.get_device("t1", "d1")
    assert attrs_of(device, "tags") == {"env": "lab"} and attrs_of(device, "inventory") == {"b": "2"}


def test_device_groups_and_reindex(client, svc):
    svc.set_status("t1", ["d1"], "accepted")
    assert client.get(I1 + "/tenants/t1/devices/d1/groups").get_json() == {"groups": []}
    svc.assign_group("t1", "d1", "g1")
    assert client.get(I1 + "/tenants/t1/devices/d1/groups").get_json() == {"groups": ["g1"]}
    assert client.get(I1 + "/tenants/t1/devices/nope/groups").status_code == 404
    assert client.post(I1 + "/tenants/t1/devices/d1/reindex?service=x").status_code == 200


def test_internal_v2_search_and_statistics(client, svc):
    svc.set_status("t1", ["a", "b"], "accepted")
    svc.update_device_attributes("t1", "a", [{"name": "cpu", "value": "arm"}], True)
    r = client.post(I2 + "/tenants/t1/filters/search", json={"filters": [pred("cpu", "$eq", "arm")]})
    assert r.status_code == 200 and [d["id"] for d in r.get_json()] == ["a"] and r.headers["X-Total-Count"] == "1"
    assert client.post(I2 + "/tenants/t1/filters/search").headers["X-Total-Count"] == "2"
    assert client.post(I2 + "/tenants/t2/filters/search").headers["X-Total-Count"] == "0"
    assert client.post(I2 + "/tenants/t1/filters/search", json={"per_page": 501}).status_code == 400
    r = client.get(I2 + "/tenants/t1/statistics")
    assert r.get_json()["devices_by_status"]["accepted"]["standard"] == 2
