"""Internal APIs take the organization explicitly, and every one addresses the default
organization as `default` (in paths and in `tenant_id` query arguments)."""

from __future__ import annotations

from common.api import TenantConverter
from tests.helpers import Device

DEVAUTH = "/api/internal/v1/devauth"
INVENTORY = "/api/internal/v1/inventory"
DEPLOYMENTS = "/api/internal/v1/deployments"
USERADM = "/api/internal/v1/useradm"


def test_every_internal_path_names_the_organization_with_the_tenant_converter(app):
    found = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/internal/"):
            continue
        for name, converter in rule._converters.items():
            if "tenant" in name or name == "tid":
                found += 1
                assert isinstance(converter, TenantConverter), f"{rule.rule}: <{name}> takes any string"
        # a path under tenants/ names the organization
        assert "/tenants/<" not in rule.rule or "/tenants/<tenant:" in rule.rule, rule.rule
    assert found >= 20


def test_default_addresses_the_default_organization_everywhere(app, client, operator, org_factory):
    a = org_factory("A")
    device = Device(client)
    device.auth()
    operator.accept(device)
    other = Device(client, tenant_token=a.tenant_token)
    other.auth()
    a.admin.accept(other)

    assert client.get(f"{DEVAUTH}/tenants/default/devices/count").get_json() == {"count": 1}
    assert client.get(f"{DEVAUTH}/tenants/{a.id}/devices/count").get_json() == {"count": 1}
    assert [d["id"] for d in client.get(f"{DEVAUTH}/tenants/default/devices").get_json()] == [device.id]
    assert client.get(f"{DEVAUTH}/tenants/default/devices/{device.id}/status").get_json() == {"status": "accepted"}
    assert client.get(f"{DEVAUTH}/tenants/default/devices/{other.id}/status").status_code == 404
    assert client.put(f"{DEVAUTH}/tenant/default/limits/max_devices", json={"limit": 7}).status_code == 204
    assert operator.get("/api/management/v2/devauth/limits/max_devices").get_json() == {"limit": 7}
    assert a.admin.get("/api/management/v2/devauth/limits/max_devices").get_json() == {"limit": -1}

    assert client.get(f"{INVENTORY}/tenants/default/devices/{device.id}/groups").get_json() == {"groups": []}
    assert client.get(f"{INVENTORY}/tenants/default/devices/{other.id}/groups").status_code == 404
    r = client.post(f"/api/internal/v2/inventory/tenants/default/filters/search", json={})
    assert [d["id"] for d in r.get_json()] == [device.id]
    assert client.get(f"/api/internal/v2/inventory/tenants/{a.id}/statistics").status_code == 200

    assert client.get(f"{DEPLOYMENTS}/tenants/default/deployments").get_json() == []
    assert client.get(f"{DEPLOYMENTS}/tenants/default/limits/storage").get_json() == {"limit": 0, "usage": 0}
    assert client.post(f"{DEPLOYMENTS}/tenants", json={"tenant_id": a.id}).status_code == 201
    assert client.post(f"{DEPLOYMENTS}/tenants", json={}).status_code == 400

    users = client.get(f"{USERADM}/tenants/default/users").get_json()
    assert [u["email"] for u in users] == [operator.email]
    assert [u["email"] for u in client.get(f"{USERADM}/tenants/{a.id}/users").get_json()] == [a.admin.email]

    # the organization in a query argument: `default` too
    next_path = "/api/devices/v1/deployments/device/deployments/next?artifact_name=a&device_type=b"
    assert client.delete(f"{DEVAUTH}/tokens?tenant_id=default&device_id={other.id}").status_code == 204
    assert other.request("GET", next_path).status_code == 204  # A's device: not the default organization's
    assert client.delete(f"{DEVAUTH}/tokens?tenant_id=default&device_id={device.id}").status_code == 204
    assert device.request("GET", next_path).status_code == 401
    assert client.delete(f"{DEVAUTH}/tokens?tenant_id=bad/id").status_code == 400
    assert client.delete(f"{USERADM}/tokens?tenant_id=default").status_code == 204
    assert operator.get("/api/management/v1/useradm/users/me").status_code == 401
    assert a.admin.get("/api/management/v1/useradm/users/me").status_code == 200

    # malformed organization ids match no route
    for path in (f"{DEVAUTH}/tenants//devices/count", f"{DEVAUTH}/tenants/a.b/devices/count",
                 f"{DEPLOYMENTS}/tenants/{'x' * 65}/deployments"):
        assert client.get(path).status_code == 404, path
