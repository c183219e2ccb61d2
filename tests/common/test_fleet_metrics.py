"""/metrics: fleet gauges (devices, deployments, devices of unfinished deployments by status),
counted at most once per MENDER_METRICS_FLEET_SECONDS, and route labels in one form; the OpenAPI
document's security schemes."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.helpers import Device, Operator


def gauges(client) -> dict[tuple[str, str], float]:
    text = client.get("/metrics").get_data(as_text=True)
    out = {}
    for name, status, value in re.findall(r'^(mender_\w+)\{status="([^"]+)"\} (\S+)$', text, re.M):
        out[(name, status)] = float(value)
    return out


@pytest.mark.parametrize("ttl", [0.0])
def test_fleet_gauges(make_app, backend, ttl):
    app = make_app(backend, MENDER_METRICS_FLEET_SECONDS=ttl)
    client = app.test_client()
    op = Operator.create(app, client)
    for _ in range(2):
        assert Device(client).auth().status_code == 401
    inventory = app.extensions["mender"].services.inventory
    svc = app.extensions["mender"].services.deployments
    g = gauges(client)
    assert g[("mender_devices", "pending")] == 2 and g[("mender_devices", "accepted")] == 0
    ids = [d["id"] for d in op.get("/api/management/v2/devauth/devices").get_json()]
    assert op.put("/api/management/v2/devauth/devices/status",
                  json={"status": "accepted", "device_ids": ids}).get_json()["updated_count"] == 2
    assert inventory.search_device_ids("", status="accepted")[1] == 2
    svc._services.artifacts.find_by_name = lambda tenant, name: [SimpleNamespace(id="a1", name=name)]
    svc.create_deployment("", name="d", artifact_name="app", devices=ids)
    g = gauges(client)
    assert g[("mender_devices", "accepted")] == 2 and g[("mender_devices", "pending")] == 0
    assert g[("mender_deployments", "pending")] == 1
    assert g[("mender_deployment_devices", "pending")] == 2


def test_fleet_gauges_are_cached(make_app):
    app = make_app("sqlite", MENDER_METRICS_FLEET_SECONDS=3600)
    client = app.test_client()
    calls = []
    ctx = app.extensions["mender"]
    name, doc, label, fn = ctx.fleet_gauges[0]
    ctx.fleet_gauges[0] = (name, doc, label, lambda: calls.append(1) or fn())
    for _ in range(3):
        client.get("/metrics")
    assert len(calls) == 1


def test_route_labels_have_one_form(sqlite_client):
    from common.metrics import route_label
    assert route_label("/a/<string:deployment_id>/b/<device_id>/c/<int:n>") == "/a/{deployment_id}/b/{device_id}/c/{n}"
    sqlite_client.get("/api/management/v1/deployments/deployments/x1")
    sqlite_client.get("/api/management/v1/inventory/devices/x2")
    text = sqlite_client.get("/metrics").get_data(as_text=True)
    routes = set(re.findall(r'mender_http_requests_total\{[^}]*route="([^"]+)"', text))
    assert "/api/management/v1/deployments/deployments/{deployment_id}" in routes
    assert "/api/management/v1/inventory/devices/{device_id}" in routes
    # every matched route in the {name} form; "<unmatched>" is the one label of requests no rule
    # matched (present when an earlier test in this worker sent one: the registry is per process)
    assert not any("<" in r for r in routes - {"<unmatched>"})


def test_openapi_declares_bearer_and_basic(sqlite_client):
    spec = sqlite_client.get("/api/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ManagementJWT"] == {**schemes["ManagementJWT"], "type": "http", "scheme": "bearer"}
    assert schemes["Login"]["scheme"] == "basic"
    assert spec["paths"]["/api/management/v1/useradm/auth/login"]["post"]["security"] == [{"Login": []}]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if path.startswith("/api/management/"):
                assert op.get("security"), (method, path)
                for requirement in op["security"]:
                    assert set(requirement) <= set(schemes), (method, path)
            if path.startswith("/api/devices/") and "auth_requests" not in path:
                assert op["security"] == [{"DeviceJWT": []}], (method, path)
