"""The iot-manager management and internal APIs over HTTP (Flask's test client), on every backend."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.helpers import Operator
from tests.iotmanager.conftest import HOOKS, add_webhook, drain

INTERNAL = "/api/internal/v1/iot-manager"
SECRET = "c0ffee00" * 8


def _webhook(url="https://hooks.example.com/mender", secret=None, **extra):
    http = {"url": url}
    if secret is not None:
        http["secret"] = secret
    return {"provider": "webhook", "credentials": {"type": "http", "http": http}, **extra}


def test_integrations_crud_and_the_secret_never_shown(client, operator):
    r = operator.get(f"{HOOKS}/integrations")
    assert r.status_code == 200 and r.get_json() == []
    r = operator.post(f"{HOOKS}/integrations", json=_webhook(secret=SECRET, description="our ticketing system"))
    assert r.status_code == 201 and r.data == b""
    location = r.headers["Location"]
    assert location.startswith(f"{HOOKS}/integrations/")
    integration_id = location.rsplit("/", 1)[1]
    assert str(uuid.UUID(integration_id)) == integration_id
    expected = {"id": integration_id, "provider": "webhook", "description": "our ticketing system",
                "credentials": {"type": "http", "http": {"url": "https://hooks.example.com/mender",
                                                          "secret": "<omitted>"}}}
    assert operator.get(location).get_json() == expected
    r = operator.get(f"{HOOKS}/integrations")
    assert r.get_json() == [expected] and "Link" in r.headers
    assert SECRET not in r.get_data(as_text=True)

    # credentials replaced: a new URL without a secret
    r = operator.put(f"{location}/credentials", json={"type": "http", "http": {"url": "http://other.example.com/x"}})
    assert r.status_code == 204 and r.data == b""
    assert operator.get(location).get_json()["credentials"] == {"type": "http", "http": {"url": "http://other.example.com/x"}}
    r = operator.put(f"{location}/credentials", json={"type": "http", "http": {"url": "https://a.example.com", "secret": SECRET}})
    assert r.status_code == 204
    assert operator.get(location).get_json()["credentials"]["http"]["secret"] == "<omitted>"

    r = operator.delete(location)
    assert r.status_code == 204 and r.data == b""
    assert operator.get(location).status_code == 404
    assert operator.delete(location).status_code == 404
    assert operator.put(f"{location}/credentials", json={"type": "http", "http": {"url": "https://a.example.com"}}).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"credentials": {"type": "http", "http": {"url": "https://a.example.com"}}}, "provider"),
    (_webhook() | {"provider": "carrier-pigeon"}, "provider"),
    (_webhook() | {"provider": "iot-hub"}, "provider: iot-hub is not supported"),
    ({"provider": "webhook", "credentials": {"type": "sas", "connection_string": "x"}}, "incompatible"),
    ({"provider": "webhook", "credentials": {"type": "http"}}, "incompatible"),
    ({"provider": "webhook"}, "credentials"),
    (_webhook(url="ftp://files.example.com/"), "credentials.http.url: must be an http or https URL"),
    (_webhook(url="https://"), "credentials.http.url: must name a host"),
    (_webhook(url="https://user:pw@a.example.com/"), "must not carry credentials"),
    (_webhook(url="https://a.example.com/a b"), "spaces or control"),
    (_webhook(url="https://a.example.com:99999/"), "invalid port"),
    (_webhook(url="https://a.example.com/" + "x" * 2100), "longer than 2048"),
    (_webhook(secret="xyz"), "credentials.http.secret"),
    (_webhook(secret="abc"), "whole bytes"),
    (_webhook(secret="ab" * 33), "at most 64"),
    (_webhook(secret=12), "credentials.http.secret"),
    (_webhook(description="x" * 1025), "description"),
    (_webhook(description="bell\x07"), "description: must not contain control characters"),
    (_webhook() | {"scopes": ["deviceauth"]}, "scopes"),
])
def test_invalid_integrations_are_400_naming_the_field(client, operator, body, field):
    r = operator.post(f"{HOOKS}/integrations", json=body)
    assert r.status_code == 400, r.data
    assert field in r.get_json()["error"] and r.get_json()["request_id"]
    assert SECRET not in r.get_data(as_text=True)


def test_secret_in_error_messages_never_echoed(client, operator):
    r = operator.post(f"{HOOKS}/integrations", json=_webhook(secret="not-hex-" + SECRET))
    assert r.status_code == 400 and SECRET not in r.get_data(as_text=True)


def test_ids_must_be_uuids_and_other_organizations_see_nothing(app, client, operator):
    assert operator.get(f"{HOOKS}/integrations/not-a-uuid").status_code == 400
    assert operator.delete(f"{HOOKS}/integrations/not-a-uuid").status_code == 400
    assert operator.get(f"{HOOKS}/events?integration_id=nope").status_code == 400
    integration = add_webhook(operator, "https://hooks.example.com/x")
    stranger = Operator.create(app, client, tenant="another-org")
    assert stranger.get(f"{HOOKS}/integrations").get_json() == []
    assert stranger.get(f"{HOOKS}/integrations/{integration}").status_code == 404
    assert stranger.delete(f"{HOOKS}/integrations/{integration}").status_code == 404
    r = stranger.put(f"{HOOKS}/integrations/{integration}/credentials",
                     json={"type": "http", "http": {"url": "https://evil.example.com"}})
    assert r.status_code == 404
    assert operator.get(f"{HOOKS}/integrations/{integration}").get_json()["credentials"]["http"]["url"] == "https://hooks.example.com/x"


def test_integrations_per_organization_are_bounded(client, operator):
    from iotmanager.service import MAX_INTEGRATIONS
    for n in range(MAX_INTEGRATIONS):
        add_webhook(operator, f"https://hooks.example.com/{n}")
    r = operator.post(f"{HOOKS}/integrations", json=_webhook())
    assert r.status_code == 409
    r = operator.get(f"{HOOKS}/integrations?per_page=5&page=2")
    assert [i["credentials"]["http"]["url"] for i in r.get_json()] == [f"https://hooks.example.com/{n}" for n in range(5, 10)]
    assert operator.get(f"{HOOKS}/integrations?per_page=501").status_code == 400


def test_management_needs_a_user_token(client, device_factory):
    assert client.get(f"{HOOKS}/integrations").status_code == 401
    assert client.post(f"{HOOKS}/integrations", json=_webhook()).status_code == 401
    assert client.get(f"{HOOKS}/events").status_code == 401
    device = device_factory()
    assert client.get(f"{HOOKS}/integrations", headers=device.headers).status_code == 401


def test_device_state_is_not_kept_here(client, operator):
    device = str(uuid.uuid4())
    integration = str(uuid.uuid4())
    for method, path in (("GET", f"/devices/{device}/state"), ("GET", f"/devices/{device}/state/{integration}"),
                         ("DELETE", f"/devices/{device}")):
        r = operator.request(method, HOOKS + path)
        assert r.status_code == 404 and "IoT Hub and IoT Core are not supported" in r.get_json()["error"]
    r = operator.put(f"{HOOKS}/devices/{device}/state/{integration}", json={"desired": {"a": 1}})
    assert r.status_code == 404
    r = operator.put(f"{HOOKS}/devices/{device}/state/{integration}", json={"wanted": 1})
    assert r.status_code == 400


def test_events_list_paged_and_filtered(hook_app, hook_operator, receiver):
    a = add_webhook(hook_operator, receiver.url)
    b = add_webhook(hook_operator, receiver.url + "/b")
    with hook_app.app_context():
        ids = [hook_app.extensions["mender"].services.iotmanager.emit("", "device-decommissioned", {"id": f"d{n}"})
               for n in range(5)]
    drain(hook_app)
    r = hook_operator.get(f"{HOOKS}/events?per_page=2")
    assert [e["id"] for e in r.get_json()] == ids[::-1][:2] and 'rel="next"' in r.headers["Link"]
    r = hook_operator.get(f"{HOOKS}/events?per_page=2&page=3")
    assert [e["id"] for e in r.get_json()] == [ids[0]] and 'rel="next"' not in r.headers["Link"]
    event = r.get_json()[0]
    assert event["type"] == "device-decommissioned" and event["data"] == {"id": "d0"}
    assert sorted(s["integration_id"] for s in event["delivery_statuses"]) == sorted([a, b])
    assert len(hook_operator.get(f"{HOOKS}/events?integration_id={a}&per_page=500").get_json()) == 5
    assert hook_operator.get(f"{HOOKS}/events?integration_id={uuid.uuid4()}").get_json() == []
    # a removed integration's history stays; its undelivered events are given up
    with hook_app.app_context():
        pending = hook_app.extensions["mender"].services.iotmanager.emit("", "device-decommissioned", {"id": "d9"})
    assert hook_operator.delete(f"{HOOKS}/integrations/{a}").status_code == 204
    latest = hook_operator.get(f"{HOOKS}/events?per_page=1").get_json()[0]
    assert latest["id"] == pending
    gone = next(s for s in latest["delivery_statuses"] if s["integration_id"] == a)
    assert (gone["state"], gone["success"], gone["error"]) == ("failed", False, "integration removed")


def test_internal_device_lifecycle_calls_validated(hook_client):
    device = str(uuid.uuid4())
    assert hook_client.post(f"{INTERNAL}/tenants/org1/devices", json={"status": "accepted"}).status_code == 400
    assert hook_client.post(f"{INTERNAL}/tenants/org1/devices", json=[1]).status_code == 400
    assert hook_client.post(f"{INTERNAL}/tenants/org1/devices", json={"id": device, "status": "lost"}).status_code == 400
    # an organization without webhooks: accepted, nothing kept
    assert hook_client.post(f"{INTERNAL}/tenants/org1/devices", json={"id": device}).status_code == 202
    assert hook_client.delete(f"{INTERNAL}/tenants/org1/devices/{device}").status_code == 202
    r = hook_client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/accepted", json=[{"id": device, "revision": 2}])
    assert r.status_code == 202
    assert hook_client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/lost", json=[{"id": device}]).status_code == 400
    r = hook_client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/accepted", json=[{"id": str(n)} for n in range(101)])
    assert r.status_code == 400
    assert hook_client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/accepted", json=[{}]).status_code == 400
    assert hook_client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/accepted", json={"id": "x"}).status_code == 400


def test_internal_calls_for_an_organization_with_a_webhook(make_app, backend, clock, receiver):
    app = make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0, _CLOCK=clock)
    client = app.test_client()
    operator = Operator.create(app, client, tenant="org1")
    add_webhook(operator, receiver.url)
    device = str(uuid.uuid4())
    provision = {"device_id": device, "status": "accepted", "created_ts": "2026-01-02T03:04:05Z", "revision": 3,
                 "auth_sets": [{"id": "a1", "device_id": device, "identity_data": {"mac": "x"}, "pubkey": "PEM",
                                "status": "accepted", "ts": "2026-01-02T03:04:05Z"}]}
    assert client.post(f"{INTERNAL}/tenants/org1/devices", json=provision).status_code == 202
    assert client.put(f"{INTERNAL}/tenants/org1/bulk/devices/status/rejected",
                      json=[{"id": device}, {"id": "other"}]).status_code == 202
    assert client.delete(f"{INTERNAL}/tenants/org1/devices/{device}").status_code == 202
    drain(app)
    got = [r.json for r in receiver.wait_for(4)]
    assert [(g["type"], g["data"]) for g in got] == [
        ("device-provisioned", {"id": device, "status": "accepted", "auth_sets": provision["auth_sets"],
                                "created_ts": "2026-01-02T03:04:05Z"}),
        ("device-status-changed", {"id": device, "status": "rejected"}),
        ("device-status-changed", {"id": "other", "status": "rejected"}),
        ("device-decommissioned", {"id": device}),
    ]
    assert client.get(f"{INTERNAL}/health").status_code == 204
    assert client.get(f"{INTERNAL}/alive").status_code == 204
    assert client.delete(f"{INTERNAL}/tenants/org1").status_code == 204
    assert operator.get(f"{HOOKS}/integrations").get_json() == []
    assert operator.get(f"{HOOKS}/events").get_json() == []


def test_internal_paths_name_the_default_organization_default(hook_app, hook_client, hook_operator, receiver):
    add_webhook(hook_operator, receiver.url)
    device = str(uuid.uuid4())
    assert hook_client.delete(f"{INTERNAL}/tenants/default/devices/{device}").status_code == 202
    drain(hook_app)
    assert [(r.json["type"], r.json["data"]) for r in receiver.wait_for(1)] == [("device-decommissioned", {"id": device})]
    assert hook_client.delete(f"{INTERNAL}/tenants/default").status_code == 204
    assert hook_operator.get(f"{HOOKS}/integrations").get_json() == []


def test_secret_never_logged(make_app, clock, receiver, caplog, monkeypatch):
    """What the service logs (structlog events and stdlib records) never holds a secret or a URL;
    tests/iotmanager/test_gunicorn.py reads a real server's whole log for the same."""
    import structlog
    from structlog.testing import CapturingLogger

    import iotmanager.delivery
    captured = CapturingLogger()
    monkeypatch.setattr(iotmanager.delivery, "log", structlog.wrap_logger(
        captured, processors=[structlog.processors.JSONRenderer()], wrapper_class=structlog.BoundLogger))
    app = make_app("sqlite", IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0,
                   MENDER_LOG_LEVEL="debug", _CLOCK=clock)
    operator = Operator.create(app, app.test_client())
    caplog.set_level(logging.DEBUG)
    integration = add_webhook(operator, receiver.url, secret=SECRET)
    operator.put(f"{HOOKS}/integrations/{integration}/credentials",
                 json={"type": "http", "http": {"url": receiver.url, "secret": SECRET[::-1]}})
    operator.post(f"{HOOKS}/integrations", json=_webhook(secret="zz" + SECRET))
    receiver.behaviour.fail_first = 1
    with app.app_context():
        app.extensions["mender"].services.iotmanager.emit("", "device-decommissioned", {"id": "d"})
    drain(app)
    clock.advance(600)
    drain(app)
    assert len(receiver.requests) == 2
    logged = caplog.text + "\n".join(repr(call) for call in captured.calls)
    assert "webhook delivery attempt" in logged  # the log was captured
    for secret in (SECRET, SECRET[::-1]):
        assert secret not in logged and secret.upper() not in logged
    assert "/hook" not in logged  # nor the URL, where receivers often keep a token
