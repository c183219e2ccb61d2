"""Isolation, proven: every management and device route of the app, called with organization B's
credentials on organization A's ids, answers as for an id that does not exist (404, or 403
where the route is for server administrators), never shows A's data, and changes nothing of A.

The routes come from the app's own URL map: a route missing from ROUTES below fails the test,
so a new route cannot be forgotten. Each entry says how to fill the route in with A's ids; the
same request is also sent with random ids, and both answers must be the same (B cannot even
tell that A's ids exist). A snapshot of every stored row of A, taken before and after, must be
identical. Runs on both databases.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import pytest

from common.app import create_app
from tests.artifacts.tools import craft
from tests.helpers import Device, Operator, backend_config, sign_body
from tests.tenantadm.conftest import create_org
from tests.tenantadm.populate import OrgData, populate, snapshot

NOT_FOUND = {404}
FORBIDDEN = {403}


@dataclass
class Call:
    """How to call one route as B on A's ids.

    params: URL argument -> attribute of A's OrgData (or a function of it);
    json/data/query: functions of (A, B) giving the request's body or query;
    expect: the statuses allowed; as_: "user" (B's operator), "fresh" (a new session of B's,
    for calls that end the session), "device" (B's device), "none" (no credentials), "link"
    (B's signed link with A's id); same_as_random: A's ids and random ids must get one answer.
    """

    params: dict[str, str | Callable] = field(default_factory=dict)
    json: Callable | None = None
    data: Callable | None = None
    content_type: str | None = None
    query: Callable | None = None
    expect: set[int] = field(default_factory=lambda: set(NOT_FOUND))
    as_: str = "user"
    same_as_random: bool = True


def list_call(**kw) -> Call:
    """A route without ids: B's own data (or nothing), never A's."""
    return Call(expect=kw.pop("expect", {200}), same_as_random=False, **kw)


def a_claims(a: OrgData) -> dict:
    return json.loads(base64.urlsafe_b64decode(a.device.token.split(".")[1] + "=="))


M = "/api/management"
A_HOOK = "6f3c1d2e-0000-4000-8000-00000000a00c"  # an integration id (A keeps no webhook: no receiver here)
D = "/api/devices"
FILTER = [{"scope": "inventory", "attribute": "os", "type": "$eq", "value": "x"}]

ROUTES: dict[tuple[str, str], Call] = {
    # ------------------------------------------------------------------ devauth
    ("GET", f"{M}/v2/devauth/devices"): list_call(),
    ("POST", f"{M}/v2/devauth/devices"): list_call(  # the same identity is another device in B
        json=lambda a, b: {"identity_data": a.pending.identity, "pubkey": a.pending.pubkey}, expect={201}),
    ("GET", f"{M}/v2/devauth/devices/<id>"): Call(params={"id": "device.id"}),
    ("DELETE", f"{M}/v2/devauth/devices"): list_call(json=lambda a, b: {"device_ids": [a.device.id]}),  # matches none
    ("PUT", f"{M}/v2/devauth/devices/status"): list_call(
        json=lambda a, b: {"status": "accepted", "device_ids": [a.pending_id]}),
    ("DELETE", f"{M}/v2/devauth/devices/<id>"): Call(params={"id": "device.id"}),
    ("DELETE", f"{M}/v2/devauth/devices/<id>/auth/<aid>"): Call(params={"id": "device.id", "aid": "auth_set_id"}),
    ("GET", f"{M}/v2/devauth/devices/<id>/auth/<aid>/status"): Call(params={"id": "pending_id", "aid": "pending_auth_set_id"}),
    ("PUT", f"{M}/v2/devauth/devices/<id>/auth/<aid>/status"): Call(
        params={"id": "pending_id", "aid": "pending_auth_set_id"}, json=lambda a, b: {"status": "accepted"}),
    ("GET", f"{M}/v2/devauth/devices/count"): list_call(),
    ("POST", f"{M}/v2/devauth/devices/search"): list_call(json=lambda a, b: {"id": [a.device.id]}),
    ("GET", f"{M}/v2/devauth/limits/max_devices"): list_call(),
    ("POST", f"{M}/v2/devauth/preauthorizations"): list_call(  # A's device identity, another key
        json=lambda a, b: [{"identity_data": a.device.identity, "pubkey": b.pending.pubkey}]),
    ("DELETE", f"{M}/v2/devauth/tokens/<id>"): Call(params={"id": lambda a: a_claims(a)["jti"]}),
    # ------------------------------------------------------------------ inventory
    ("GET", f"{M}/v1/inventory/devices"): list_call(),
    ("GET", f"{M}/v1/inventory/devices/<device_id>"): Call(params={"device_id": "device.id"}),
    ("DELETE", f"{M}/v1/inventory/devices/<device_id>"): Call(  # idempotent (spec: 204 only)
        params={"device_id": "device.id"}, expect={204}),
    ("GET", f"{M}/v1/inventory/devices/<device_id>/group"): Call(params={"device_id": "device.id"}),
    ("PUT", f"{M}/v1/inventory/devices/<device_id>/group"): Call(
        params={"device_id": "device.id"}, json=lambda a, b: {"group": "b-group"}),
    ("DELETE", f"{M}/v1/inventory/devices/<device_id>/group/<name>"): Call(
        params={"device_id": "device.id", "name": "group"}),
    ("PUT", f"{M}/v1/inventory/devices/<device_id>/tags"): Call(
        params={"device_id": "device.id"}, json=lambda a, b: [{"name": "t", "value": "v"}]),
    ("PATCH", f"{M}/v1/inventory/devices/<device_id>/tags"): Call(
        params={"device_id": "device.id"}, json=lambda a, b: [{"name": "t", "value": "v"}]),
    ("GET", f"{M}/v1/inventory/groups"): list_call(),
    ("DELETE", f"{M}/v1/inventory/groups/<name>"): Call(params={"name": "group"}),
    ("GET", f"{M}/v1/inventory/groups/<name>/devices"): Call(params={"name": "group"}),
    ("DELETE", f"{M}/v1/inventory/groups/<name>/devices"): Call(  # counts B's devices moved: none
        params={"name": "group"}, json=lambda a, b: [a.device.id], expect={200}),
    ("PATCH", f"{M}/v1/inventory/groups/<name>/devices"): Call(
        params={"name": "group"}, json=lambda a, b: [a.device.id], expect={200}),
    ("PATCH", f"{M}/v2/inventory/groups/<name>/devices"): Call(
        params={"name": "group"}, json=lambda a, b: {"device_ids": [a.device.id]}, expect={200}),
    ("DELETE", f"{M}/v2/inventory/groups/<name>/devices"): Call(
        params={"name": "group"}, json=lambda a, b: {"device_ids": [a.device.id]}, expect={200}),
    ("PATCH", f"{M}/v2/inventory/devices/tags"): list_call(
        json=lambda a, b: {"device_ids": [a.device.id], "tags": [{"name": "t", "value": "b"}]}),
    ("GET", f"{M}/v2/inventory/filters"): list_call(),
    ("POST", f"{M}/v2/inventory/filters"): list_call(json=lambda a, b: {"name": "b-filter", "terms": FILTER},
                                                     expect={201}),
    ("GET", f"{M}/v2/inventory/filters/<filter_id>"): Call(params={"filter_id": "filter_id"}),
    ("DELETE", f"{M}/v2/inventory/filters/<filter_id>"): Call(params={"filter_id": "filter_id"}),
    ("GET", f"{M}/v2/inventory/filters/<filter_id>/search"): Call(params={"filter_id": "filter_id"}),
    ("GET", f"{M}/v2/inventory/filters/attributes"): list_call(),
    ("POST", f"{M}/v2/inventory/filters/search"): list_call(json=lambda a, b: {"filters": [
        {"scope": "identity", "attribute": "sn", "type": "$eq", "value": a.device.identity["sn"]}]}),
    ("GET", f"{M}/v2/inventory/statistics"): list_call(),
    ("POST", f"{M}/v2alpha1/inventory/identities/search"): list_call(
        json=lambda a, b: {"scope": "identity", "name": "sn", "value_prefix": a.device.identity["sn"]}),
    # ------------------------------------------------------------------ artifacts and releases
    ("GET", f"{M}/v1/deployments/artifacts"): list_call(query=lambda a, b: {"name": a.artifact_name}),
    ("POST", f"{M}/v1/deployments/artifacts"): list_call(
        data=lambda a, b: {"artifact": (io.BytesIO(craft("b-uploaded", device_types=("b",))), "a.mender")},
        content_type="multipart/form-data", expect={201}),
    ("GET", f"{M}/v1/deployments/artifacts/<artifact_id>"): Call(params={"artifact_id": "artifact_id"}),
    ("PUT", f"{M}/v1/deployments/artifacts/<artifact_id>"): Call(
        params={"artifact_id": "artifact_id"}, json=lambda a, b: {"description": "b was here"}),
    ("DELETE", f"{M}/v1/deployments/artifacts/<artifact_id>"): Call(params={"artifact_id": "artifact_id"}),
    ("GET", f"{M}/v1/deployments/artifacts/<artifact_id>/download"): Call(params={"artifact_id": "artifact_id"}),
    ("POST", f"{M}/v1/deployments/artifacts/directupload"): list_call(),
    ("POST", f"{M}/v1/deployments/artifacts/directupload/<upload_id>/complete"): Call(
        params={"upload_id": "upload_id"}),
    ("POST", f"{M}/v1/deployments/artifacts/generate"): list_call(
        data=lambda a, b: {"name": "b-generated", "device_types_compatible": "b", "type": "single_file",
                           "args": json.dumps({"dest_dir": "/tmp"}), "file": (io.BytesIO(b"x"), "f.txt")},
        content_type="multipart/form-data", expect={201}),
    ("GET", f"{M}/v1/deployments/artifacts/list"): list_call(query=lambda a, b: {"name": a.artifact_name}),
    ("GET", f"{M}/v1/deployments/deployments/releases"): list_call(query=lambda a, b: {"name": a.release}),
    ("GET", f"{M}/v1/deployments/deployments/releases/list"): list_call(query=lambda a, b: {"name": a.release}),
    ("GET", f"{M}/v1/deployments/limits/storage"): list_call(),
    ("GET", f"{M}/v1alpha1/deployments/software"): list_call(),
    ("GET", f"{M}/v1alpha1/deployments/software/tags"): list_call(),
    ("GET", f"{M}/v2/deployments/artifacts"): list_call(query=lambda a, b: {"name": a.artifact_name}),
    ("GET", f"{M}/v2/deployments/deployments/releases"): list_call(query=lambda a, b: {"name": a.release}),
    ("DELETE", f"{M}/v2/deployments/deployments/releases"): Call(
        query=lambda a, b: {"name": a.release}, same_as_random=False, expect={204}),
    ("GET", f"{M}/v2/deployments/deployments/releases/<release_name>"): Call(params={"release_name": "release"}),
    ("PATCH", f"{M}/v2/deployments/deployments/releases/<release_name>"): Call(
        params={"release_name": "release"}, json=lambda a, b: {"notes": "b was here"}),
    ("PUT", f"{M}/v2/deployments/deployments/releases/<release_name>/tags"): Call(
        params={"release_name": "release"}, json=lambda a, b: ["b-tag"]),
    ("GET", f"{M}/v2/deployments/releases/all/tags"): list_call(),
    ("GET", f"{M}/v2/deployments/releases/all/types"): list_call(),
    # ------------------------------------------------------------------ deployments
    ("GET", f"{M}/v1/deployments/deployments"): list_call(),
    ("POST", f"{M}/v1/deployments/deployments"): list_call(  # A's artifact and device do not exist in B
        json=lambda a, b: {"name": "b-dep", "artifact_name": a.artifact_name, "devices": [a.device.id]},
        expect={422}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>"): Call(params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/device_list"): Call(
        params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/devices"): Call(params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/devices/list"): Call(
        params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/devices/<device_id>/log"): Call(
        params={"deployment_id": "deployment_id", "device_id": "device.id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/statistics"): Call(
        params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v1/deployments/deployments/<deployment_id>/statistics/phases"): Call(
        params={"deployment_id": "deployment_id"}),
    ("PUT", f"{M}/v1/deployments/deployments/<deployment_id>/status"): Call(
        params={"deployment_id": "deployment_id"}, json=lambda a, b: {"status": "aborted"}),
    ("GET", f"{M}/v1/deployments/deployments/devices/<device_id>"): Call(
        params={"device_id": "device.id"}, expect={200}),  # B's history of that id: empty
    ("DELETE", f"{M}/v1/deployments/deployments/devices/<device_id>"): Call(
        params={"device_id": "device.id"}, expect={204}),  # aborts B's deployments of that id: none
    ("DELETE", f"{M}/v1/deployments/deployments/devices/<device_id>/history"): Call(
        params={"device_id": "device.id"}, expect={204}),
    ("POST", f"{M}/v1/deployments/deployments/group/<name>"): Call(
        params={"name": "group"}, json=lambda a, b: {"name": "b-dep", "artifact_name": a.artifact_name},
        expect={422}),
    ("POST", f"{M}/v1/deployments/deployments/statistics/list"): list_call(
        json=lambda a, b: {"deployment_ids": [a.deployment_id]}, expect={404}),
    # rollout control (pause, resume, continue, history, insight, update control maps)
    ("POST", f"{M}/v2/deployments/deployments/<deployment_id>/pause"): Call(params={"deployment_id": "deployment_id"}),
    ("POST", f"{M}/v2/deployments/deployments/<deployment_id>/resume"): Call(params={"deployment_id": "deployment_id"}),
    ("POST", f"{M}/v2/deployments/deployments/<deployment_id>/continue"): Call(
        params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v2/deployments/deployments/<deployment_id>/history"): Call(params={"deployment_id": "deployment_id"}),
    ("GET", f"{M}/v2/deployments/deployments/<deployment_id>/insights"): Call(
        params={"deployment_id": "deployment_id"}),
    ("PATCH", f"{M}/v1/deployments/deployments/<deployment_id>"): Call(
        params={"deployment_id": "deployment_id"}, json=lambda a, b: {"update_control_map": {"priority": 1}}),
    ("PATCH", f"{M}/v1/deployments/deployments/<deployment_id>/devices/<device_id>"): Call(
        params={"deployment_id": "deployment_id", "device_id": "device.id"},
        json=lambda a, b: {"update_control_map": {"priority": 1}}),
    ("GET", f"{M}/v2/deployments/deployments"): list_call(query=lambda a, b: {"name": "deployment-a"}),
    ("POST", f"{M}/v2/deployments/deployments"): list_call(
        json=lambda a, b: {"name": "b-dyn", "artifact_name": a.artifact_name, "filter_id": a.filter_id},
        expect={400, 404, 422}),
    # ------------------------------------------------------------------ device configuration
    ("GET", f"{M}/v1/deviceconfig/configurations/device/<device_id>"): Call(params={"device_id": "device.id"}),
    ("PUT", f"{M}/v1/deviceconfig/configurations/device/<device_id>"): Call(
        params={"device_id": "device.id"}, json=lambda a, b: {"b": "desired"}),
    ("POST", f"{M}/v1/deviceconfig/configurations/device/<device_id>/deploy"): Call(
        params={"device_id": "device.id"}, json=lambda a, b: {"retries": 0}),
    ("GET", f"{M}/v1/useradm/roles"): list_call(),
    ("POST", f"{M}/v1/useradm/roles"): list_call(
        json=lambda a, b: {"name": "b-role-v1", "permission_sets_with_scope": [{"name": "ReadReleases"}]}, expect={201}),
    ("GET", f"{M}/v1/useradm/roles/<id>"): Call(params={"id": "role"}),
    ("PUT", f"{M}/v1/useradm/roles/<id>"): Call(params={"id": "role"}, json=lambda a, b: {"description": "b"}),
    ("DELETE", f"{M}/v1/useradm/roles/<id>"): Call(params={"id": "role"}, expect={204}),  # idempotent
    ("GET", f"{M}/v2/useradm/roles"): list_call(),
    ("POST", f"{M}/v2/useradm/roles"): list_call(
        json=lambda a, b: {"name": "b-role-v2", "permission_sets_with_scope": [{"name": "ReadReleases"}]}, expect={201}),
    ("GET", f"{M}/v2/useradm/roles/<id>"): Call(params={"id": "role"}),
    ("PUT", f"{M}/v2/useradm/roles/<id>"): Call(params={"id": "role"}, json=lambda a, b: {"description": "b"}),
    ("DELETE", f"{M}/v2/useradm/roles/<id>"): Call(params={"id": "role"}, expect={204}),  # idempotent
    ("GET", f"{M}/v2/useradm/permission_sets"): list_call(),
    # ------------------------------------------------------------------ audit log
    ("GET", f"{M}/v1/auditlogs/logs"): list_call(),
    ("GET", f"{M}/v1/auditlogs/logs/export"): list_call(),
    # ------------------------------------------------------------------ webhooks (iot-manager)
    ("GET", f"{M}/v1/iot-manager/integrations"): list_call(),
    ("POST", f"{M}/v1/iot-manager/integrations"): list_call(json=lambda a, b: {}, expect={400}),
    ("GET", f"{M}/v1/iot-manager/integrations/<integration_id>"): Call(params={"integration_id": lambda a: A_HOOK}),
    ("DELETE", f"{M}/v1/iot-manager/integrations/<integration_id>"): Call(params={"integration_id": lambda a: A_HOOK}),
    ("PUT", f"{M}/v1/iot-manager/integrations/<integration_id>/credentials"): Call(
        params={"integration_id": lambda a: A_HOOK}, json=lambda a, b: {"type": "http", "http": {
            "url": "https://hooks.example.com/b", "secret": "00" * 16}}, expect={400, 404}),
    ("GET", f"{M}/v1/iot-manager/events"): list_call(),
    ("DELETE", f"{M}/v1/iot-manager/devices/<device_id>"): Call(params={"device_id": "device.id"}),
    ("GET", f"{M}/v1/iot-manager/devices/<device_id>/state"): Call(params={"device_id": "device.id"}),
    ("GET", f"{M}/v1/iot-manager/devices/<device_id>/state/<integration_id>"): Call(
        params={"device_id": "device.id", "integration_id": lambda a: A_HOOK}),
    ("PUT", f"{M}/v1/iot-manager/devices/<device_id>/state/<integration_id>"): Call(
        params={"device_id": "device.id", "integration_id": lambda a: A_HOOK}, json=lambda a, b: {"desired": {}},
        expect={400, 404}),
    # ------------------------------------------------------------------ users and tokens
    ("POST", f"{M}/v1/useradm/auth/login"): list_call(as_="none"),  # with B's credentials: B's token
    ("POST", f"{M}/v1/useradm/auth/logout"): list_call(as_="fresh", expect={202}),
    ("GET", f"{M}/v1/useradm/settings"): list_call(),
    ("POST", f"{M}/v1/useradm/settings"): list_call(json=lambda a, b: {"b": 1}, expect={201}),
    ("GET", f"{M}/v1/useradm/settings/me"): list_call(),
    ("POST", f"{M}/v1/useradm/settings/me"): list_call(json=lambda a, b: {"b": 1}, expect={201}),
    ("GET", f"{M}/v1/useradm/settings/tokens"): list_call(),
    ("POST", f"{M}/v1/useradm/settings/tokens"): list_call(json=lambda a, b: {"name": "pat-a"}),
    ("DELETE", f"{M}/v1/useradm/settings/tokens/<id>"): Call(params={"id": "pat_id"}, expect={204}),  # idempotent
    ("GET", f"{M}/v1/useradm/users"): list_call(),
    ("POST", f"{M}/v1/useradm/users"): list_call(  # emails are unique on the server: the same answer as
        json=lambda a, b: {"email": a.admin.email, "password": "password-b1"}, expect={422}),  # in A
    ("GET", f"{M}/v1/useradm/users/<id>"): Call(params={"id": "user_id"}),
    ("PUT", f"{M}/v1/useradm/users/<id>"): Call(params={"id": "user_id"}, json=lambda a, b: {"email": "b@b.io"}),
    ("DELETE", f"{M}/v1/useradm/users/<id>"): Call(params={"id": "user_id"}, expect={204}),  # idempotent
    ("GET", f"{M}/v1/useradm/users/me"): list_call(),
    ("PUT", f"{M}/v1/useradm/users/me"): list_call(as_="fresh", json=lambda a, b: {"email": "b-me@b.io"},
                                                   expect={422}),  # needs the current password
    ("PUT", f"{M}/v2/useradm/users/me"): list_call(as_="fresh", json=lambda a, b: {"password": "new-password-b"},
                                                   expect={422}),
    # ------------------------------------------------------------------ organizations
    ("GET", f"{M}/v1/tenantadm/user/tenant"): list_call(),
    ("POST", f"{M}/v1/tenantadm/user/tenant/tenant_token"): list_call(),
    ("POST", f"{M}/v1/tenantadm/tenants"): list_call(
        json=lambda a, b: {"organization": "x", "email": "x@x.io", "password": "password-x"}, expect=FORBIDDEN),
    ("POST", f"{M}/v2/tenantadm/tenants"): list_call(
        json=lambda a, b: {"organization": "x", "email": "x@x.io", "password": "password-x"}, expect=FORBIDDEN),
    ("DELETE", f"{M}/v2/tenantadm/tenants/<tenant_id>"): Call(params={"tenant_id": "tenant"},
                                                                     expect=FORBIDDEN),
    ("PUT", f"{M}/v2/tenantadm/tenants/<tenant_id>/status"): Call(
        params={"tenant_id": "tenant"}, json=lambda a, b: {"status": "active"}, expect=FORBIDDEN),
    # ------------------------------------------------------------------ remote access (deviceconnect)
    ("GET", f"{M}/v1/deviceconnect/devices/<id>"): Call(params={"id": "device.id"}),
    ("POST", f"{M}/v1/deviceconnect/devices/<id>/check-update"): Call(params={"id": "device.id"}),
    ("POST", f"{M}/v1/deviceconnect/devices/<id>/send-inventory"): Call(params={"id": "device.id"}),
    ("GET", f"{M}/v1/deviceconnect/devices/<id>/download"): Call(
        params={"id": "device.id"}, query=lambda a, b: {"path": "/etc/mender/mender.conf"}),
    ("PUT", f"{M}/v1/deviceconnect/devices/<id>/upload"): Call(
        params={"id": "device.id"}, content_type="multipart/form-data",
        data=lambda a, b: {"path": "/tmp/x", "file": (io.BytesIO(b"b was here"), "x")}),
    # websockets: "accepted" or "denied" (the handshake's answer)
    ("WS", f"{M}/v1/deviceconnect/devices/<id>/connect"): Call(params={"id": "device.id"}, expect={"denied"}),
    ("WS", f"{M}/v1/deviceconnect/sessions/<session_id>/playback"): Call(
        params={"session_id": "session_id"}, expect={"denied"}),
    ("WS", f"{D}/v1/deviceconnect/connect"): list_call(as_="device", expect={"accepted"}),  # B's own connection
    # ------------------------------------------------------------------ the device API
    ("POST", f"{D}/v1/authentication/auth_requests"): list_call(as_="none", expect={401}),  # see auth_request
    # B's device has a deployment of its own: it gets that one, nothing of A's
    ("GET", f"{D}/v1/deployments/device/deployments/next"): list_call(
        as_="device", query=lambda a, b: {"artifact_name": "factory", "device_type": a.device_type}, expect={200}),
    ("POST", f"{D}/v1/deployments/device/deployments/next"): list_call(
        as_="device", json=lambda a, b: {"artifact_name": "factory", "device_type": a.device_type}, expect={200}),
    ("POST", f"{D}/v2/deployments/device/deployments/next"): list_call(
        as_="device", json=lambda a, b: {"device_provides": {"artifact_name": "factory",
                                                             "device_type": a.device_type}}, expect={200}),
    ("PUT", f"{D}/v1/deployments/device/deployments/<deployment_id>/status"): Call(
        as_="device", params={"deployment_id": "deployment_id"}, json=lambda a, b: {"status": "success"}),
    ("PUT", f"{D}/v1/deployments/device/deployments/<deployment_id>/log"): Call(
        as_="device", params={"deployment_id": "deployment_id"}, json=lambda a, b: {"messages": [
            {"timestamp": "2026-12-01T10:00:00Z", "level": "info", "message": "b was here"}]}),
    ("GET", f"{D}/v2/deployments/device/deployments/<deployment_id>/update_control_map"): Call(
        as_="device", params={"deployment_id": "deployment_id"}),
    ("GET", f"{D}/v1/deployments/download/configuration/<deployment_id>/<device_type>/<device_id>"): Call(
        as_="link", params={"deployment_id": "deployment_id", "device_type": "device_type", "device_id": "device.id"},
        expect={403}),
    ("GET", f"{D}/v1/deviceconfig/configuration"): list_call(as_="device"),  # B's own
    ("PUT", f"{D}/v1/deviceconfig/configuration"): list_call(as_="device", json=lambda a, b: {"b": "reported"},
                                                             expect={204}),
    ("GET", f"{D}/v1/deployments/download/artifacts/<artifact_id>"): Call(
        as_="link", params={"artifact_id": "artifact_id"}, expect={403}),
    ("PUT", f"{D}/v1/deployments/download/uploads/<upload_id>"): Call(
        as_="link", params={"upload_id": "upload_id"}, data=lambda a, b: b"x", expect={403}),
    ("PATCH", f"{D}/v1/inventory/device/attributes"): list_call(
        as_="device", json=lambda a, b: [{"name": "os", "value": "b"}]),
    ("PUT", f"{D}/v1/inventory/device/attributes"): list_call(
        as_="device", json=lambda a, b: [{"name": "os", "value": "b"}]),
}


def _routes(app) -> list[tuple[str, str]]:
    """Every (method, rule) of the management and device APIs, from the app's URL map, and the
    websocket routes services register ("WS")."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith((f"{M}/", f"{D}/")):
            out += [(m, rule.rule) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    out += [("WS", rule) for rule, _ in app.extensions["mender"].websocket_routes if rule.startswith((f"{M}/", f"{D}/"))]
    return sorted(out)


def _normalize(rule: str) -> str:
    """A rule without its converters (`<string:id>` -> `<id>`), as ROUTES spells it."""
    return re.sub(r"<[a-z]+:", "<", rule)


TABLE = {(m, _normalize(r)): call for (m, r), call in ROUTES.items()}


def _value(a: OrgData, ref):
    if callable(ref):
        return ref(a)
    obj = a
    for part in ref.split("."):
        obj = getattr(obj, part)
    return obj


def _fill(rule: str, values: dict[str, str]) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: values[m.group(1)], rule)


@dataclass
class World:
    app: object
    client: object
    a: OrgData
    b: OrgData


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def world(request, tmp_path_factory):
    config = backend_config(request.param, str(tmp_path_factory.mktemp(f"iso-{request.param}")))
    # check-in times written in each request, not a second later by the batch writer: A's
    # snapshot must not move while B's calls run
    config["DEVICEAUTH_CHECK_IN_BATCH_SECONDS"] = "0"
    app = create_app(config)
    client = app.test_client()
    orgs = []
    for label in ("a", "b"):
        org = create_org(app, client, f"Org {label}")
        orgs.append(populate(client, org.admin, org.tenant_token, org.id, label, app=app))
    yield World(app, client, *orgs)
    ctx = app.extensions["mender"]
    ctx.shutdown()
    ctx.db.close()


def test_every_route_is_in_the_table(world):
    routes = _routes(world.app)
    missing = [(m, r) for m, r in routes if (m, _normalize(r)) not in TABLE]
    assert not missing, ("routes the isolation test cannot call yet: add them to ROUTES\n"
                         + "\n".join(f"    {m} {r}" for m, r in missing))
    stale = [r for r in TABLE if r not in {(m, _normalize(x)) for m, x in routes}]
    assert not stale, f"ROUTES names routes that no longer exist: {stale}"


def _request(world: World, method: str, rule: str, call: Call, values: dict[str, str]):
    a, b, client = world.a, world.b, world.client
    path = _fill(rule, values)
    kwargs: dict = {}
    if call.json is not None:
        kwargs["json"] = call.json(a, b)
    if call.data is not None:
        kwargs["data"] = call.data(a, b)
    if call.content_type:
        kwargs["content_type"] = call.content_type
    if call.query is not None:
        kwargs["query_string"] = call.query(a, b)
    if call.as_ == "user":
        return b.admin.request(method, path, **kwargs)
    if call.as_ == "fresh":
        session = Operator(client, b.admin.email, b.admin.password)
        session.login()
        return session.request(method, path, **kwargs)
    if call.as_ == "device":
        return b.device.request(method, path, **kwargs)
    if call.as_ == "link":
        return client.open(path + "?" + _b_link_query(world, rule), method=method, **kwargs)
    if rule.endswith("/auth/login"):
        basic = base64.b64encode(f"{b.admin.email}:{b.admin.password}".encode()).decode()
        return client.open(path, method=method, headers={"Authorization": f"Basic {basic}"})
    if rule.endswith("/auth_requests"):
        return _auth_request(world)
    raise AssertionError(f"no way to call {method} {rule}")


def _b_link_query(world: World, rule: str) -> str:
    """The query of one of B's own signed links (its signature names B and B's id)."""
    b = world.b
    if "/download/artifacts/" in rule:
        uri = b.admin.get(f"{M}/v1/deployments/artifacts/{b.artifact_id}/download").get_json()["uri"]
    else:
        uri = b.admin.post(f"{M}/v1/deployments/artifacts/directupload").get_json()["uri"]
    return urlsplit(uri).query


def _auth_request(world: World):
    """B's tenant token with A's device identity and key: a new pending device in B."""
    a, b = world.a, world.b
    twin = Device(world.client, identity=a.device.identity, key=a.device.key, tenant_token=b.device.tenant_token)
    body = twin.auth_body()
    return world.client.post(Device.AUTH_PATH, data=body, content_type="application/json",
                             headers={"X-MEN-Signature": sign_body(twin.key, body)})


def _sent(world: World, rule: str, call: Call, values: dict[str, str]) -> str:
    """What B's request itself carried (path, query, body) as text."""
    a, b = world.a, world.b
    parts = [_fill(rule, values)]
    for fn in (call.json, call.query, call.data):
        if fn is not None:
            parts.append(repr(fn(a, b)) + json.dumps(fn(a, b), default=str))
    if rule.endswith("/auth_requests"):
        parts.append(json.dumps(a.device.identity))
    return " ".join(parts)


def _random_like(value: str) -> str:
    try:
        uuid.UUID(value)
        return str(uuid.uuid4())
    except ValueError:
        return f"nope{uuid.uuid4().hex[:20]}"


def _leaks(response, a: OrgData, sent: str) -> list[str]:
    """A's markers in the response, but those B sent itself (an answer may repeat its request)."""
    text = response.get_data(as_text=True) + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return [m for m in a.markers if m and m in text and m not in sent]


async def _ws_call(world: World, rule: str, call: Call, values: dict[str, str]):
    """Open one websocket as B (its operator, or its device) through the route's handler:
    ("accepted" | "denied", what the app sent)."""
    from tests.deviceconnect.asgi import FakeSocket, wait_until
    handler = dict(world.app.extensions["mender"].websocket_routes)[rule]
    token = world.b.device.token if call.as_ == "device" else world.b.admin.token
    sock = FakeSocket({"Authorization": f"Bearer {token}"})
    task = asyncio.get_running_loop().create_task(handler(sock.scope, sock.receive, sock.send, **values))
    await wait_until(lambda: sock.accepted or sock.denied, what=f"the handshake of {rule}")
    sent = []
    while not sock._from_app.empty():
        sent.append(sock._from_app.get_nowait())
    sock.leave()
    try:
        await asyncio.wait_for(task, 5)
    except asyncio.TimeoutError:
        task.cancel()
    return ("accepted" if sock.accepted else "denied"), repr(sent)


def _websockets(world: World, calls: list[tuple[str, Call, dict, dict]]) -> list:
    """Run the websocket calls (with A's ids, then random ids) in one event loop."""
    async def run_all():
        out = []
        for rule, call, values, random_values in calls:
            out.append((await _ws_call(world, rule, call, values),
                        await _ws_call(world, rule, call, random_values) if random_values else None))
        await world.app.extensions["mender"].services.deviceconnect.relay.stop()
        return out
    return asyncio.run(run_all())


def test_org_b_cannot_reach_org_a(world):
    a = world.a
    before = snapshot(world.app, a.tenant)
    assert before, "organization A has no records"
    failures = []
    websocket_calls = []
    # the audit log lists B's own requests, which named A's ids: what B sent is not a leak there
    audit_routes = [r for r in _routes(world.app) if r[1].startswith(f"{M}/v1/auditlogs/")]
    everything_sent = []
    for method, rule in [r for r in _routes(world.app) if r not in audit_routes] + audit_routes:
        call = TABLE.get((method, _normalize(rule)))
        if call is None:
            continue  # reported by test_every_route_is_in_the_table
        if method == "WS":
            values = {name: str(_value(a, ref)) for name, ref in call.params.items()}
            random_values = {k: _random_like(v) for k, v in values.items()} if call.same_as_random and values else {}
            websocket_calls.append((rule, call, values, random_values))
            continue
        values = {name: str(_value(a, ref)) for name, ref in call.params.items()}
        response = _request(world, method, rule, call, values)
        problems = []
        if response.status_code not in call.expect:
            problems.append(f"status {response.status_code} (expected {sorted(call.expect)}): "
                            f"{response.get_data(as_text=True)[:200]}")
        sent = _sent(world, rule, call, values)
        everything_sent.append(sent)
        leaked = _leaks(response, a, " ".join(everything_sent) if (method, rule) in audit_routes else sent)
        if leaked:
            problems.append(f"shows A's {leaked}")
        if call.same_as_random and values:
            random_values = {k: (v if k == "tenant_id" and v == "default" else _random_like(v))
                             for k, v in values.items()}
            twin = _request(world, method, rule, call, random_values)
            if twin.status_code != response.status_code:
                problems.append(f"A's ids get {response.status_code}, random ids {twin.status_code}: "
                                "B can tell that A's ids exist")
        if problems:
            failures.append(f"{method} {rule}: " + "; ".join(problems))
    for (rule, call, values, _), (mine, random_twin) in zip(websocket_calls, _websockets(world, websocket_calls)):
        problems = []
        if mine[0] not in call.expect:
            problems.append(f"{mine[0]} (expected {sorted(call.expect)}): {mine[1][:200]}")
        leaked = [m for m in a.markers if m and m in mine[1] and m not in " ".join(values.values())]
        if leaked:
            problems.append(f"shows A's {leaked}")
        if random_twin is not None and random_twin[0] != mine[0]:
            problems.append(f"A's ids get {mine[0]}, random ids {random_twin[0]}")
        if problems:
            failures.append(f"WS {rule}: " + "; ".join(problems))
    assert snapshot(world.app, a.tenant) == before, "organization A changed"
    assert not failures, "\n".join(failures)
    # A is still whole and working
    assert a.admin.get(f"{M}/v2/devauth/devices/{a.device.id}").status_code == 200
    assert a.device.request("GET", f"{D}/v1/deployments/device/deployments/next",
                            query_string={"artifact_name": "factory", "device_type": a.device_type}).status_code == 200
