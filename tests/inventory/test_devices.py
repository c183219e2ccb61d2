"""Device API over HTTP with real device tokens: PUT replaces, PATCH merges, both 200; limits."""

from __future__ import annotations

import io
import json

import pytest

from tests.inventory.conftest import attrs_of

# every test here runs through the direct route and through the Flask view (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("both_paths")

URL = "/api/devices/v1/inventory/device/attributes"
V1 = "/api/management/v1/inventory"


@pytest.fixture
def device(device_factory):
    return device_factory()


def inventory_of(operator, device) -> dict:
    r = operator.get(f"{V1}/devices/{device.id}")
    assert r.status_code == 200
    return r.get_json()


def test_needs_a_device_token(client, operator):
    assert client.put(URL, json=[{"name": "a", "value": "1"}]).status_code == 401
    # a user token is not a device token
    assert client.put(URL, json=[{"name": "a", "value": "1"}], headers=operator.headers).status_code == 401


def test_accepted_device_shows_identity_and_status(operator, device):
    got = inventory_of(operator, device)
    assert attrs_of(got, "identity") == {**device.identity, "status": "accepted"}
    assert attrs_of(got, "system")["status"] == "accepted"


def test_put_replaces_patch_merges(operator, device):
    r = device.request("PUT", URL, json=[{"name": "device_type", "value": "rpi4"},
                                          {"name": "ipv4", "value": ["10.0.0.2/8", "fe80::1/64"]},
                                          {"name": "mem", "value": 1024, "description": "kB"}])
    assert r.status_code == 200 and r.data == b""
    r = device.request("PATCH", URL, json=[{"name": "artifact_name", "value": "release-2"}])
    assert r.status_code == 200 and r.data == b""
    got = inventory_of(operator, device)
    assert attrs_of(got, "inventory") == {"device_type": "rpi4", "ipv4": ["10.0.0.2/8", "fe80::1/64"],
                                          "mem": 1024, "artifact_name": "release-2"}
    assert {"name": "mem", "value": 1024, "scope": "inventory", "description": "kB"} in got["attributes"]
    assert device.request("PUT", URL, json=[{"name": "device_type", "value": "rpi5"}]).status_code == 200
    assert attrs_of(inventory_of(operator, device), "inventory") == {"device_type": "rpi5"}
    operator.client.application.extensions["mender"].services.devauth.check_ins.flush()  # written in batches
    assert "check_in_time" in attrs_of(inventory_of(operator, device), "system")


def test_chunked_upload_as_the_real_client_sends_it(operator, device):
    body = json.dumps([{"name": "device_type", "value": "qemu"}, {"name": "kernel", "value": ["5.10"]}]).encode()
    # what a WSGI server hands over for a chunked body: no Content-Length, input terminated
    r = device.request("PUT", URL, input_stream=io.BytesIO(body), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 200
    assert attrs_of(inventory_of(operator, device), "inventory") == {"device_type": "qemu", "kernel": ["5.10"]}


@pytest.mark.parametrize("body", [
    [{"name": "a", "value": {"nested": 1}}],
    [{"name": "a", "value": ["x", 1]}],
    [{"name": "a", "value": None}],
    [{"name": "a", "value": True}],
    [{"name": "", "value": "x"}],
    [{"name": "a" * 1025, "value": "x"}],
    [{"name": "a", "value": "x" * 16385}],
    [{"name": "a"}],
    {"name": "a", "value": "x"},
    "text",
])
def test_invalid_values_are_400_and_change_nothing(operator, device, body):
    device.request("PUT", URL, json=[{"name": "keep", "value": "me"}])
    r = device.request("PUT", URL, json=body)
    assert r.status_code == 400 and set(r.get_json()) == {"error", "request_id"}
    assert attrs_of(inventory_of(operator, device), "inventory") == {"keep": "me"}


def test_malformed_and_non_json(device):
    assert device.request("PUT", URL, data="[{", content_type="application/json").status_code == 400
    assert device.request("PATCH", URL, data="[]", content_type="text/plain").status_code == 415
    assert device.request("PUT", URL, data="", content_type="application/json").status_code == 400
    assert device.request("POST", URL, json=[]).status_code == 405


def test_attribute_limit(operator, device):
    r = device.request("PUT", URL, json=[{"name": f"a{i}", "value": "v"} for i in range(101)])
    assert r.status_code == 400 and "at most 100" in r.get_json()["error"]
    assert device.request("PUT", URL, json=[{"name": f"a{i}", "value": "v"} for i in range(100)]).status_code == 200
    r = device.request("PATCH", URL, json=[{"name": "one_more", "value": "v"}])
    assert r.status_code == 400
    assert len(attrs_of(inventory_of(operator, device), "inventory")) == 100


def test_request_size_limit(device):
    huge = [{"name": f"a{i}", "value": "x" * 15000} for i in range(80)]  # > 1 MiB
    r = device.request("PUT", URL, json=huge)
    assert r.status_code == 413 and r.get_json()["error"]
    body = json.dumps(huge).encode()
    r = device.request("PUT", URL, input_stream=io.BytesIO(body), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 413


def test_devices_only_write_their_own_inventory(operator, device_factory):
    one, two = device_factory(), device_factory()
    one.request("PUT", URL, json=[{"name": "who", "value": "one"}])
    two.request("PUT", URL, json=[{"name": "who", "value": "two"}])
    assert attrs_of(inventory_of(operator, one), "inventory") == {"who": "one"}
    assert attrs_of(inventory_of(operator, two), "inventory") == {"who": "two"}
    r = operator.post("/api/management/v2/inventory/filters/search",
                      json={"filters": [{"scope": "inventory", "attribute": "who", "type": "$eq", "value": "two"}]})
    assert [d["id"] for d in r.get_json()] == [two.id]


def _decommission_first(monkeypatch, store, method, services, tenant, device_id):
    """Run the operator's decommission of the device just before the upload's `store.<method>`
    (what an upload in flight meets when the decommission lands in between)."""
    real = getattr(store, method)
    fired = []

    def racing(*args, **kwargs):
        if not fired:
            fired.append(True)
            services.devauth.decommission(tenant, device_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, method, racing)
    return fired


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("step", ["apply", "create_device", "get_device"])
def test_an_upload_in_flight_does_not_bring_back_a_decommissioned_device(app, operator, device, monkeypatch,
                                                                         method, step):
    """The decommission removes the inventory record; an upload authenticated before it and
    landing after it re-created the record of a removed device (with the attributes sent)."""
    services = app.extensions["mender"].services
    store = services.inventory.store
    if step != "apply":  # the record is missing (lost, or removed first): the upload's create path
        with app.app_context():
            store.delete_device("", device.id)
    fired = _decommission_first(monkeypatch, store, step, services, "", device.id)
    r = device.request(method, URL, json=[{"name": "device_type", "value": "late"}])
    assert fired and r.status_code == 404 and set(r.get_json()) == {"error", "request_id"}
    with app.app_context():
        assert store.get_device("", device.id) is None
    assert operator.get(f"{V1}/devices/{device.id}").status_code == 404


def test_an_upload_recreates_the_lost_record_of_a_device_still_admitted(app, operator, device):
    with app.app_context():
        app.extensions["mender"].services.inventory.store.delete_device("", device.id)
    assert device.request("PATCH", URL, json=[{"name": "device_type", "value": "back"}]).status_code == 200
    assert attrs_of(inventory_of(operator, device), "inventory") == {"device_type": "back"}
