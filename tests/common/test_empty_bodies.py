"""Responses Mender's specs give no content: an empty body, never the JSON `null`."""

import uuid

import pytest


@pytest.mark.parametrize("service", ["devauth", "deployments", "inventory", "useradm", "deviceconfig"])
def test_internal_tenant_provisioning_is_201_without_a_body(client, service):
    """Each service's internal `POST /api/internal/v1/<service>/tenants` answers `201` ("Tenant
    was successfully provisioned") with no content (devauth and deployments sent `null`)."""
    r = client.post(f"/api/internal/v1/{service}/tenants", json={"tenant_id": uuid.uuid4().hex[:24]})
    assert r.status_code == 201, r.data
    assert r.data == b""
    assert r.headers["X-MEN-RequestID"]


def test_internal_device_delete_is_201_without_a_body(client, operator, device_factory):
    """devauth's internal `DELETE /tenants/{tid}/devices/{did}` answers `201` ("Device deleted
    successfully") with no content; the device is gone."""
    device = device_factory()
    r = client.delete(f"/api/internal/v1/devauth/tenants/default/devices/{device.id}")
    assert r.status_code == 201, r.data
    assert r.data == b""
    assert operator.get(f"/api/management/v2/devauth/devices/{device.id}").status_code == 404


def test_an_error_still_has_its_json_body(client):
    """The bodiless answer is only for success: a malformed provisioning request is still the
    `{"error", "request_id"}` 400."""
    r = client.post("/api/internal/v1/devauth/tenants", json={"tenant_id": 7})
    assert r.status_code == 400
    assert set(r.get_json()) == {"error", "request_id"}
