"""Configuration deployments (deviceconfig's, through deployments), over HTTP on both backends:
deploying makes a one-device deployment of type `configuration`; the device's `next` poll gets a
signed link to this server; the link serves the generated mender-configure artifact (the same
bytes each time, any byte range), refuses a link that expired or was tampered with; statuses flow
as for any deployment; the internal API of the spec; listing by type."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
import uuid
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from common.clock import FrozenClock
from deployments.artifacts.parser import parse_artifact
from tests.helpers import Device, Operator

CONFIG = "/api/management/v1/deviceconfig/configurations/device"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
INTERNAL = "/api/internal/v1/deployments/tenants/default/configuration/deployments"


class Stage:
    """An app on a frozen clock with an operator and an accepted device."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()
        self.ctx = app.extensions["mender"]
        self.clock = self.ctx.clock
        self.op = Operator.create(app, self.client)
        self.device = Device(self.client, device_type="raspberrypi4")
        assert self.device.auth().status_code == 401
        self.op.accept(self.device)

    def deploy(self, config: dict, **body) -> str:
        self.clock.advance(1)  # deployments are ordered by their creation time
        assert self.op.put(f"{CONFIG}/{self.device.id}", json=config).status_code == 204
        r = self.op.post(f"{CONFIG}/{self.device.id}/deploy", json=body)
        assert r.status_code == 200, r.data
        return r.get_json()["deployment_id"]

    def next(self, device_type: str = "raspberrypi4", artifact_name: str = "factory"):
        r = self.device.request("GET", "/api/devices/v1/deployments/device/deployments/next",
                                query_string={"artifact_name": artifact_name, "device_type": device_type})
        assert r.status_code in (200, 204), r.data
        return r.get_json() if r.status_code == 200 else None

    def report(self, deployment_id: str, *statuses: str) -> None:
        for status in statuses:
            r = self.device.request("PUT", f"/api/devices/v1/deployments/device/deployments/{deployment_id}/status",
                                    json={"status": status})
            assert r.status_code == 204, r.data

    def download(self, uri: str, **kw):
        parts = urlsplit(uri)
        return self.client.get(parts.path, query_string=parts.query, **kw)


@pytest.fixture
def stage(make_app, backend):
    return Stage(make_app(backend, _CLOCK=FrozenClock(time.time())))


def _meta_data(artifact: bytes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(artifact)) as outer:
        header = outer.extractfile("header.tar").read()
    with tarfile.open(fileobj=io.BytesIO(header)) as inner:
        return inner.extractfile("headers/0000/meta-data").read()


def test_a_configuration_deployment_from_deploy_to_success(stage):
    config = {"timezone": "Europe/Oslo", "motd": "hello\nworld", "secret": "hunter2"}
    deployment_id = stage.deploy(config, retries=1)
    assert stage.op.get(f"{CONFIG}/{stage.device.id}").get_json()["deployment_id"] == deployment_id

    dep = stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()
    name = f"configuration-{deployment_id}"
    assert (dep["type"], dep["name"], dep["artifact_name"], dep["status"]) == ("configuration", name, name, "pending")
    assert (dep["max_devices"], dep["retries"], dep["artifacts"], dep["dynamic"]) == (1, 1, [], False)
    assert dep["statistics"]["status"]["pending"] == 1
    # the values stay with deviceconfig: a deployment shows the keys only
    assert json.loads(dep["configuration"]) == {k: "<omitted>" for k in config}
    assert "hunter2" not in json.dumps(dep)

    instructions = stage.next()
    assert instructions["id"] == deployment_id
    artifact = instructions["artifact"]
    assert artifact == {"id": deployment_id + stage.device.id, "artifact_name": name,
                        "device_types_compatible": ["raspberrypi4"], "source": artifact["source"]}
    uri = artifact["source"]["uri"]
    assert uri.startswith(f"http://localhost/api/devices/v1/deployments/download/configuration/{deployment_id}/"
                          f"raspberrypi4/{stage.device.id}?")
    r = stage.download(uri)  # no token: the signature authorizes it
    assert r.status_code == 200, r.data
    assert r.headers["Content-Type"] == "application/vnd.mender-artifact"
    assert r.headers["Content-Disposition"] == f'attachment; filename="{name}.mender"'
    assert int(r.headers["Content-Length"]) == len(r.data) and r.headers["Accept-Ranges"] == "bytes"
    meta = parse_artifact(io.BytesIO(r.data))
    assert (meta.name, meta.device_types, meta.update_types) == (name, ["raspberrypi4"], ["mender-configure"])
    assert json.loads(_meta_data(r.data)) == config

    # a second poll (a retried download) gets a new link to the same bytes
    stage.clock.advance(5)
    again = stage.next()["artifact"]["source"]["uri"]
    assert again != uri and stage.download(again).data == r.data

    stage.report(deployment_id, "downloading", "installing", "success")
    dep = stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()
    assert dep["status"] == "finished" and dep["statistics"]["status"]["success"] == 1
    assert stage.next() is None
    history = stage.op.get(f"{DEPLOYMENTS}/devices/{stage.device.id}").get_json()
    assert [h["deployment"]["id"] for h in history] == [deployment_id]
    assert history[0]["device"]["status"] == "success" and "image" not in history[0]["device"]


def test_ranges_and_validators(stage):
    deployment_id = stage.deploy({"k": "v" * 3000})
    uri = stage.next()["artifact"]["source"]["uri"]
    full = stage.download(uri)
    data, etag = full.data, full.headers["ETag"]
    size = len(data)
    r = stage.download(uri, headers={"Range": "bytes=1000-"})
    assert r.status_code == 206 and r.data == data[1000:]
    assert r.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
    assert r.headers["Content-Length"] == str(size - 1000) and r.headers["ETag"] == etag
    r = stage.download(uri, headers={"Range": "bytes=10-19", "If-Range": etag})
    assert r.status_code == 206 and r.data == data[10:20]
    r = stage.download(uri, headers={"Range": "bytes=-100"})
    assert r.status_code == 206 and r.data == data[-100:]
    # other bytes named by If-Range, several ranges, or another unit: the whole artifact
    for headers in ({"Range": "bytes=10-19", "If-Range": '"other"'}, {"Range": "bytes=0-1,5-6"},
                    {"Range": "items=0-1"}, {"Range": "bytes=10-19", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"}):
        r = stage.download(uri, headers=headers)
        assert r.status_code == 200 and r.data == data, headers
    r = stage.download(uri, headers={"Range": f"bytes={size}-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{size}"
    assert deployment_id in uri


def test_bad_links(stage):
    deployment_id = stage.deploy({"k": "v"})
    uri = stage.next()["artifact"]["source"]["uri"]
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))

    def get(path=parts.path, **changes):
        q = {**query, **changes}
        return stage.client.get(path, query_string=urlencode({k: v for k, v in q.items() if v is not None}))

    assert get().status_code == 200
    assert get(**{"x-men-signature": None}).status_code == 400
    assert get(**{"x-men-expire": None}).status_code == 400
    assert get(**{"x-men-expire": "tomorrow"}).status_code == 400
    signature = query["x-men-signature"]
    tampered = ("B" if signature[0] == "A" else "A") + signature[1:]  # never the signature itself
    assert get(**{"x-men-signature": tampered}).status_code == 403
    assert get(tenant_id="another-tenant").status_code == 403
    # the path is signed: another device, device type or deployment is refused
    for path in (parts.path.replace(stage.device.id, str(uuid.uuid4())),
                 parts.path.replace("raspberrypi4", "other-board"),
                 parts.path.replace(deployment_id, str(uuid.uuid4()))):
        assert get(path).status_code == 403
    stage.clock.advance(stage.ctx.config["DEPLOYMENTS_DEVICE_DOWNLOAD_EXPIRE_SECONDS"] + 1)
    r = get()
    assert r.status_code == 403 and "expired" in r.get_json()["error"]


def test_links_only_for_the_configuration_deployment_of_that_device(stage):
    """A validly signed link still needs a configuration deployment the device was given."""
    artifacts = stage.ctx.services.artifacts
    deployment_id = stage.deploy({"k": "v"})
    with stage.app.app_context():
        # not polled yet: the device was not given it
        link = artifacts.server_link("", f"/api/devices/v1/deployments/download/configuration/{deployment_id}/"
                                         f"raspberrypi4/{stage.device.id}", "http://localhost")
        assert stage.download(link.uri).status_code == 404
        other = artifacts.server_link("", f"/api/devices/v1/deployments/download/configuration/{uuid.uuid4()}/"
                                          f"raspberrypi4/{stage.device.id}", "http://localhost")
        assert stage.download(other.uri).status_code == 404
    assert stage.next()["id"] == deployment_id
    assert stage.download(link.uri).status_code == 200


def test_a_device_type_with_any_printable_character(stage):
    device_type = "pi 4/rev b?#%"
    deployment_id = stage.deploy({"k": "v"})
    instructions = stage.next(device_type=device_type)
    assert instructions["artifact"]["device_types_compatible"] == [device_type]
    r = stage.download(instructions["artifact"]["source"]["uri"])
    assert r.status_code == 200, r.data
    assert parse_artifact(io.BytesIO(r.data)).device_types == [device_type]
    assert deployment_id in instructions["artifact"]["artifact_name"]


def test_failure_retries_abort_and_decommission(stage):
    deployment_id = stage.deploy({"k": "1"}, retries=1)
    assert stage.next()["id"] == deployment_id
    stage.report(deployment_id, "downloading", "failure")
    assert stage.next()["id"] == deployment_id  # its retry
    stage.report(deployment_id, "failure")
    dep = stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()
    assert dep["status"] == "finished" and dep["statistics"]["status"]["failure"] == 1

    deployment_id = stage.deploy({"k": "2"})
    assert stage.next()["id"] == deployment_id
    assert stage.op.put(f"{DEPLOYMENTS}/{deployment_id}/status", json={"status": "aborted"}).status_code == 204
    r = stage.device.request("PUT", f"/api/devices/v1/deployments/device/deployments/{deployment_id}/status",
                             json={"status": "installing"})
    assert r.status_code == 409

    deployment_id = stage.deploy({"k": "3"})
    assert stage.op.delete(f"/api/management/v2/devauth/devices/{stage.device.id}").status_code == 204
    dep = stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()
    assert dep["status"] == "finished"


def test_two_deployments_arrive_in_order(stage):
    first = stage.deploy({"k": "1"})
    second = stage.deploy({"k": "2"})
    assert stage.next()["id"] == first
    stage.report(first, "success")
    instructions = stage.next(artifact_name=f"configuration-{first}")
    assert instructions["id"] == second
    assert json.loads(_meta_data(stage.download(instructions["artifact"]["source"]["uri"]).data)) == {"k": "2"}


def test_deploy_refusals(stage):
    unknown = str(uuid.uuid4())
    assert stage.op.post(f"{CONFIG}/{unknown}/deploy", json={}).status_code == 404
    url = f"{CONFIG}/{stage.device.id}/deploy"
    for body, text in (({"retries": -1}, "retries"), ({"retries": 101}, "retries"), ({"retries": "x"}, "retries"),
                       ({"other": 1}, "other"), ([], ""), ({"update_control_map": {"priority": "x"}}, "priority"),
                       ({"update_control_map": {"states": {"Nope": {"action": "pause"}}}}, "update_control_map")):
        r = stage.op.post(url, json=body)
        assert r.status_code == 400 and text in r.get_json()["error"], (body, r.data)
    assert stage.op.get(f"{DEPLOYMENTS}", query_string={"type": "configuration"}).get_json() == []


def test_check_update_is_asked_of_a_connected_device(stage):
    """Deploying asks deviceconnect to make a connected device check for updates (best effort:
    the deployment is made even when the device is not connected, or the bus fails)."""
    deviceconnect = stage.ctx.services.deviceconnect
    seen = []
    deviceconnect.hooks.register(lambda action, tenant, user, device_id, details: seen.append((action, device_id)))
    stage.deploy({"k": "1"})
    assert seen == []  # not connected: nothing to ask
    with stage.app.app_context():
        deviceconnect.device_connected("", stage.device.id, "another-process")
    hub = deviceconnect.relay
    try:
        deployment_id = stage.deploy({"k": "2"})
        assert seen == [("check_update", stage.device.id)]
        assert hub.started  # the command went out on the bus (to the process holding the device)
    finally:
        if hub.started:
            asyncio.run_coroutine_threadsafe(hub.stop(), hub.loop).result(10)
            hub.loop.call_soon_threadsafe(hub.loop.stop)
    assert stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").status_code == 200


def test_internal_api(stage):
    device_id = stage.device.id
    deployment_id = str(uuid.uuid4())
    url = f"{INTERNAL}/{deployment_id}/devices/{device_id}"
    r = stage.client.post(url, json={"name": "config-1.1", "configuration": '{"foo":"bar"}', "retries": 2})
    assert r.status_code == 201, r.data
    assert r.headers["Location"] == f"{DEPLOYMENTS}/{deployment_id}"
    dep = stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()
    assert (dep["name"], dep["artifact_name"], dep["type"], dep["retries"]) == ("config-1.1", "config-1.1",
                                                                               "configuration", 2)
    r = stage.client.post(url, json={"name": "again", "configuration": {"foo": "bar"}})
    assert r.status_code == 409
    uri = stage.next()["artifact"]["source"]["uri"]
    assert json.loads(_meta_data(stage.download(uri).data)) == {"foo": "bar"}

    for body, path_id, text in (
            ({"name": "n", "configuration": {"a": "b"}}, "not-a-uuid", "UUID"),
            ({"configuration": {"a": "b"}}, None, "name"),
            ({"name": "n"}, None, "configuration"),
            ({"name": "n", "configuration": {"a": 1}}, None, "must be a string"),
            ({"name": "n", "configuration": "[1]"}, None, "JSON object"),
            ({"name": "n", "configuration": "{"}, None, "JSON object"),
            ({"name": "n", "configuration": {str(i): "v" for i in range(101)}}, None, "maximum is 100"),
            ({"name": "n", "configuration": {"a": "b"}, "retries": 101}, None, "retries"),
            ({"name": "", "configuration": {"a": "b"}}, None, "name")):
        r = stage.client.post(f"{INTERNAL}/{path_id or uuid.uuid4()}/devices/{device_id}", json=body)
        assert r.status_code == 400 and text in r.get_json()["error"], (body, r.data)


def test_listing_by_type(stage, tmp_path):
    from tests.artifacts.tools import MenderArtifact
    path = MenderArtifact(str(tmp_path)).single_file("app-1", device_types=("raspberrypi4",))
    with open(path, "rb") as f:
        r = stage.op.post("/api/management/v1/deployments/artifacts", data={"artifact": (f, "app-1.mender")},
                          content_type="multipart/form-data")
    assert r.status_code == 201, r.data
    r = stage.op.post(DEPLOYMENTS, json={"name": "software", "artifact_name": "app-1", "devices": [stage.device.id]})
    assert r.status_code == 201, r.data
    configuration = stage.deploy({"k": "v"})
    names = lambda r: sorted(d["type"] for d in r.get_json())  # noqa: E731
    assert names(stage.op.get(DEPLOYMENTS)) == ["configuration", "software"]
    assert [d["id"] for d in stage.op.get(DEPLOYMENTS, query_string={"type": "configuration"}).get_json()] == [
        configuration]
    assert names(stage.op.get(DEPLOYMENTS, query_string={"type": "software"})) == ["software"]
    assert names(stage.op.get("/api/management/v2/deployments/deployments",
                              query_string={"type": "configuration"})) == ["configuration"]
    assert names(stage.client.get("/api/internal/v1/deployments/tenants/default/deployments",
                                  query_string={"type": "software"})) == ["software"]
    assert stage.op.get(DEPLOYMENTS, query_string={"type": "firmware"}).status_code == 400


@pytest.mark.parametrize("backend", ["sqlite"])
def test_served_by_the_server_whatever_the_artifact_storage(make_app, backend):
    """With artifacts in S3 the configuration artifact is still this server's signed link: nothing
    is stored, so the S3 endpoint (here one that does not exist) is never asked."""
    stage = Stage(make_app(backend, _CLOCK=FrozenClock(time.time()), DEPLOYMENTS_STORAGE_DEFAULT="aws", DEPLOYMENTS_AWS_URI="http://127.0.0.1:9",
                           DEPLOYMENTS_AWS_AUTH_KEY="k", DEPLOYMENTS_AWS_AUTH_SECRET="s"))
    deployment_id = stage.deploy({"k": "v"})
    uri = stage.next()["artifact"]["source"]["uri"]
    assert uri.startswith("http://localhost/api/devices/v1/deployments/download/configuration/") and "X-Amz" not in uri
    r = stage.download(uri)
    assert r.status_code == 200 and parse_artifact(io.BytesIO(r.data)).name == f"configuration-{deployment_id}"


def test_an_update_control_map(stage):
    """A configuration deployment with Mender's update control map: the device's v2 poll carries
    it, as for a software deployment."""
    ucm = {"priority": 1, "states": {"ArtifactInstall_Enter": {"action": "pause"}}}
    deployment_id = stage.deploy({"k": "v"}, update_control_map=ucm)
    assert stage.op.get(f"{DEPLOYMENTS}/{deployment_id}").get_json()["update_control_map"] == ucm
    r = stage.device.request("POST", "/api/devices/v2/deployments/device/deployments/next",
                             json={"device_provides": {"artifact_name": "factory", "device_type": "raspberrypi4"}})
    assert r.status_code == 200, r.data
    body = r.get_json()
    assert body["id"] == deployment_id and body["update_control_map"] == {"id": deployment_id, **ucm}
    assert body["artifact"]["source"]["uri"].startswith("http://localhost/api/devices/v1/deployments/download/"
                                                          "configuration/")
