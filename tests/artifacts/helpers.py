"""Assertions and shortcuts for the artifacts API tests."""

from __future__ import annotations

import io
import os
import re

import boto3

from tests.artifacts import radosgw as rgw

UPLOAD = "/api/management/v1/deployments/artifacts"
ARTIFACTS_V2 = "/api/management/v2/deployments/artifacts"


def upload(op, data: bytes, description: str = "", filename: str = "a.mender", **fields):
    """POST a multipart upload as mender-cli does (size, description, artifact last)."""
    form = {"size": str(len(data)), "description": description, **fields,
            "artifact": (io.BytesIO(data), filename)}
    return op.post(UPLOAD, data=form, content_type="multipart/form-data")


def upload_file(op, path: str, **kw) -> dict:
    with open(path, "rb") as f:
        r = upload(op, f.read(), **kw)
    assert r.status_code == 201, r.get_json()
    return op.get(r.headers["Location"]).get_json()


def stored_objects(app) -> list[str]:
    """Every object in the artifact storage, temp files and unfinished multipart uploads included."""
    storage = app.extensions["mender"].services.artifacts.storage
    if storage.kind == "filesystem":
        found = []
        for root, _dirs, files in os.walk(storage.root):
            found += [os.path.relpath(os.path.join(root, f), storage.root) for f in files]
        return sorted(found)
    client = s3_client(storage.uri)
    try:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])]
    except client.exceptions.NoSuchBucket:
        return []
    keys += [f"multipart:{u['Key']}" for u in client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])]
    return sorted(keys)


def stored_ids(app) -> list[str]:
    """The artifact ids of the stored objects (keys `[tenant/]<id>.<nonce>`), and any other key as it is."""
    return sorted(re.sub(r"\.[0-9a-f]{16}$", "", key) for key in stored_objects(app))


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=rgw.ACCESS_KEY,
                        aws_secret_access_key=rgw.SECRET_KEY, region_name="us-east-1")


def assert_nothing_left(app, op) -> None:
    """No record and no stored byte (the storage may hold only the given ids)."""
    assert op.get(UPLOAD).get_json() == []
    assert stored_objects(app) == []


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def deploy(op, artifact_name: str, devices=None) -> str:
    """Create a deployment of an artifact (so that it is in use); its id."""
    import uuid
    r = op.post("/api/management/v1/deployments/deployments",
                json={"name": f"d-{uuid.uuid4().hex[:6]}", "artifact_name": artifact_name,
                      "devices": devices or [str(uuid.uuid4())]})
    assert r.status_code == 201, r.get_json()
    return r.headers["Location"].rstrip("/").rsplit("/", 1)[-1]


def abort(op, deployment_id: str) -> None:
    r = op.put(f"/api/management/v1/deployments/deployments/{deployment_id}/status", json={"status": "aborted"})
    assert r.status_code == 204, r.get_json()
