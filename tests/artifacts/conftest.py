"""Fixtures of the artifacts tests: storage backends (filesystem, real S3), the real mender-artifact."""

from __future__ import annotations

import pytest

from common.clock import FrozenClock
from tests.artifacts import radosgw as rgw
from tests.artifacts.tools import MenderArtifact, ec_key_file, rsa_key_file

@pytest.fixture(scope="session")
def radosgw():
    """The endpoint of the shared real S3 (Ceph radosgw), started on first use."""
    endpoint = rgw.acquire()
    yield endpoint
    rgw.release()


@pytest.fixture(params=["filesystem", "s3"])
def storage(request):
    """Each artifact storage in turn: the filesystem and S3 (radosgw)."""
    return request.param


def s3_config(endpoint: str, bucket: str) -> dict:
    return {"DEPLOYMENTS_STORAGE_DEFAULT": "aws", "DEPLOYMENTS_AWS_URI": endpoint,
            "DEPLOYMENTS_AWS_AUTH_KEY": rgw.ACCESS_KEY, "DEPLOYMENTS_AWS_AUTH_SECRET": rgw.SECRET_KEY,
            "DEPLOYMENTS_STORAGE_BUCKET": bucket}


@pytest.fixture
def storage_config(storage, request, unique):
    if storage == "filesystem":
        yield {}
        return
    endpoint, bucket = request.getfixturevalue("radosgw"), unique("bkt").lower()
    yield s3_config(endpoint, bucket)
    _drop_bucket(endpoint, bucket)


def _drop_bucket(endpoint: str, bucket: str) -> None:
    """Remove a test's bucket: the radosgw is shared by every run on the machine, and a user may
    own only so many buckets (TooManyBuckets broke S3 tests once enough runs had passed)."""
    from tests.artifacts.helpers import s3_client
    client = s3_client(endpoint)
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def app(make_app, backend, storage_config, clock):
    """The app on each database × each artifact storage, with a frozen clock."""
    return make_app(backend, _CLOCK=clock, **storage_config)


@pytest.fixture
def svc(app):
    return app.extensions["mender"].services.artifacts


@pytest.fixture
def ma(tmp_path):
    return MenderArtifact(str(tmp_path / "ma"))


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {"rsa": rsa_key_file(str(d / "rsa.pem")), "ec": ec_key_file(str(d / "ec.pem"))}

