"""Artifacts in an S3 bucket (AWS, MinIO, Ceph radosgw …) through boto3.

Uploads stream into a multipart upload (8 MiB parts) that only becomes visible on completion.
Links are SigV4 presigned against the device-facing endpoint (`DEPLOYMENTS_AWS_EXTERNAL_URI`),
signed at the time of the injected clock. Before signing a download link the object is checked
with a HEAD, remembered per process for `DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS` (`_SeenObjects`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

import boto3
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from common.errors import NotFound, Unavailable
from deployments.artifacts.storage import ArtifactStorage, ObjectWriter
from deployments.artifacts.strings import content_disposition

PART_SIZE = 8 * 1024 * 1024
ARTIFACT_CONTENT_TYPE = "application/vnd.mender-artifact"
STALE_MULTIPART_SECONDS = 86400
SEEN_OBJECTS_MAX = 4096


class _ClockedQueryAuth(S3SigV4QueryAuth):
    """botocore's SigV4 query signer, with the signing time given instead of read from the wall clock."""

    def __init__(self, credentials, region: str, expires: int, when: datetime):
        super().__init__(credentials, "s3", region, expires=expires)
        self._when = when

    def add_auth(self, request):
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        signature = self.signature(self.string_to_sign(request, canonical), request)
        self._inject_signature_to_request(request, signature)


class _SeenObjects:
    """The keys this process found in the bucket, and when. Every device poll that answers 200 asks
    for a link to its artifact's object, and Mender checks the object with a HEAD each time: a
    round trip to S3 per device per poll while a deployment is pending. A key seen less than `ttl`
    seconds ago (by the injected clock) is taken as still there; this process forgets a key as
    soon as it deletes it, others notice within `ttl`. At most `size` keys, the oldest forgotten
    first; `ttl` 0 remembers nothing."""

    def __init__(self, ttl: float, clock, size: int = SEEN_OBJECTS_MAX):
        self._ttl, self._clock, self._size = ttl, clock, size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, key: str) -> bool:
        seen = self._seen.get(key)
        return seen is not None and 0 <= self._clock.now() - seen < self._ttl

    def add(self, key: str) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            self._seen[key] = self._clock.now()
            self._seen.move_to_end(key)
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        with self._lock:
            for key in [k for k in self._seen if k.startswith(prefix)]:
                del self._seen[key]


class _S3Writer(ObjectWriter):
    def __init__(self, client, bucket: str, key: str):
        self._client, self._bucket, self._key = client, bucket, key
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def _flush(self, data: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=ARTIFACT_CONTENT_TYPE)["UploadId"]
        number = len(self._parts) + 1
        etag = self._client.upload_part(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                        PartNumber=number, Body=data)["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})

    def write(self, data: bytes) -> None:
        self._buf += data
        while len(self._buf) >= PART_SIZE:
            self._flush(bytes(self._buf[:PART_SIZE]))
            del self._buf[:PART_SIZE]

    def commit(self) -> None:
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buf),
                                    ContentType=ARTIFACT_CONTENT_TYPE)
        else:
            if self._buf:
                self._flush(bytes(self._buf))
            self._client.complete_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id,
                                                   MultipartUpload={"Parts": self._parts})
        self._buf = bytearray()

    def abort(self) -> None:
        self._buf = bytearray()
        if self._upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
            except (BotoCoreError, ClientError):
                pass  # the startup sweep aborts stale multipart uploads
            self._upload_id = None


class S3Storage(ArtifactStorage):
    kind = "aws"

    def __init__(self, config, clock):
        self.bucket = config["DEPLOYMENTS_STORAGE_BUCKET"]
        self.region = config["DEPLOYMENTS_AWS_REGION"] or "us-east-1"
        self.uri = config["DEPLOYMENTS_AWS_URI"] or None
        self.external_uri = (config["DEPLOYMENTS_AWS_EXTERNAL_URI"] or self.uri
                             or f"https://s3.{self.region}.amazonaws.com").rstrip("/")
        self.path_style = config["DEPLOYMENTS_AWS_FORCE_PATH_STYLE"]
        self._key_id = config["DEPLOYMENTS_AWS_AUTH_KEY"] or None
        self._secret = config["DEPLOYMENTS_AWS_AUTH_SECRET"] or None
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict = {}
        self._bucket_ready_pid = None
        self.seen = _SeenObjects(config["DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS"], clock)

    # clients are per process (boto3 clients must not cross a fork) ---------------------------
    def _client(self, timeout: float | None = None):
        key = (os.getpid(), timeout)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    extra = {"connect_timeout": timeout, "read_timeout": timeout,
                             "retries": {"max_attempts": 1}} if timeout else {"retries": {"max_attempts": 3}}
                    cfg = BotoConfig(signature_version="s3v4",
                                     s3={"addressing_style": "path" if self.path_style else "auto"}, **extra)
                    client = boto3.session.Session().client(
                        "s3", endpoint_url=self.uri, region_name=self.region, aws_access_key_id=self._key_id,
                        aws_secret_access_key=self._secret, config=cfg)
                    self._clients[key] = client
        return client

    @property
    def client(self):
        client = self._client()
        if self._bucket_ready_pid != os.getpid():
            self.ensure_bucket()
        return client

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist."""
        client = self._client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            kwargs = {}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                client.create_bucket(Bucket=self.bucket, **kwargs)
            except ClientError as exc2:
                if exc2.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou",):
                    raise
        self._bucket_ready_pid = os.getpid()

    # objects ----------------------------------------------------------------------------------
    def writer(self, key: str) -> ObjectWriter:
        return _S3Writer(self.client, self.bucket, key)

    def open(self, key: str):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound("artifact file not found") from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)
        self.seen.forget(key)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("refusing to empty the bucket")
        client, removed = self.client, 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if not keys:
                continue
            result = client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
            if result.get("Errors"):
                first = result["Errors"][0]
                raise Unavailable(f"artifact storage refused to delete {first.get('Key')}: {first.get('Code')}")
            removed += len(keys)
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        self.seen.forget_prefix(prefix)
        return removed

    def promote(self, source: str, target: str) -> None:
        client = self.client
        client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target)  # multipart copy when large
        client.delete_object(Bucket=self.bucket, Key=source)
        self.seen.forget(source)

    # links ------------------------------------------------------------------------------------
    def _presign(self, method: str, key: str, expires_in: int, params: dict) -> tuple[str, float]:
        now = int(self._clock.now())
        when = datetime.fromtimestamp(now, tz=timezone.utc).replace(tzinfo=None)
        parts = urlsplit(self.external_uri)
        if self.path_style:
            url = f"{self.external_uri}/{quote(self.bucket)}/{quote(key)}"
        else:
            url = f"{parts.scheme}://{self.bucket}.{parts.netloc}{parts.path.rstrip('/')}/{quote(key)}"
        request = AWSRequest(method=method, url=url, params=params)
        _ClockedQueryAuth(Credentials(self._key_id or "", self._secret or ""), self.region,
                          expires_in, when).add_auth(request)
        return request.prepare().url, float(now + expires_in)

    def download_link(self, key, *, tenant, filename, expires_in, base_url, path):
        if not self.seen.fresh(key):
            self.client.head_object(Bucket=self.bucket, Key=key)  # 404: the object is gone, no link
            self.seen.add(key)
        return self._presign("GET", key, expires_in, {
            "response-content-type": ARTIFACT_CONTENT_TYPE,
            "response-content-disposition": content_disposition(filename)})

    def upload_link(self, key, *, tenant, expires_in, base_url, path):
        self.client  # noqa: B018 - make sure the bucket exists before handing out the link
        return self._presign("PUT", key, expires_in, {})

    # maintenance --------------------------------------------------------------------------------
    def check(self, timeout: float) -> None:
        try:
            try:
                self._client(timeout).head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                self.ensure_bucket()  # the endpoint answers; the bucket is made on first use
        except (BotoCoreError, ClientError) as exc:
            raise Unavailable(f"artifact storage unavailable: {type(exc).__name__}") from exc

    def sweep(self, max_age: float = STALE_MULTIPART_SECONDS) -> int:
        """Abort multipart uploads left by uploads that died (started more than `max_age` seconds
        ago: S3 cannot tell whether their writer lives); return how many."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=max_age)
        client = self.client
        aborted = 0
        for upload in client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", []):
            if upload["Initiated"] < cutoff:
                client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
        return aborted
