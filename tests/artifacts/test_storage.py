"""Storage backends and signed links, below the API: keys, atomic writes, sweeps, S3 multipart."""

from __future__ import annotations

import fcntl
import os
import re
import time
import uuid
from urllib.parse import parse_qs

import pytest
from botocore.exceptions import ClientError

from common.clock import FrozenClock
from common.config import load_config
from common.errors import BadRequest, Forbidden, NotFound, Unavailable
from deployments.artifacts.links import LinkSigner
from deployments.artifacts.storage import new_object_key, object_key
from deployments.artifacts.storage.filesystem import FilesystemStorage
from deployments.artifacts.storage.s3 import PART_SIZE, S3Storage, _SeenObjects
from tests.artifacts.conftest import _drop_bucket, s3_config
from tests.artifacts.helpers import s3_client


def test_object_keys_are_server_made_and_never_repeat():
    aid = str(uuid.uuid4())
    assert object_key("", aid) == aid and object_key("t1", aid) == f"t1/{aid}"  # from before nonces
    assert object_key("t1", aid, "0123456789abcdef") == f"t1/{aid}.0123456789abcdef"
    keys = {new_object_key("t1", aid) for _ in range(100)}
    assert len(keys) == 100 and all(re.fullmatch(rf"t1/{aid}\.[0-9a-f]{{16}}", k) for k in keys)
    for tenant, artifact_id, nonce in (("../x", aid, ""), ("a/b", aid, ""), ("t", "../../etc", ""),
                                       ("t", aid.upper(), ""), ("t", "x", ""), ("t", aid, "../x"), ("t", aid, "ABC"),
                                       ("t", aid, "0123456789abcdef\n")):
        with pytest.raises(ValueError):
            object_key(tenant, artifact_id, nonce)


def test_filesystem_writes_are_atomic_and_confined(tmp_path):
    fs = FilesystemStorage(str(tmp_path), lambda: None)
    key = object_key("t", str(uuid.uuid4()))
    w = fs.writer(key)
    w.write(b"part one")
    assert not fs.exists(key) and len(os.listdir(os.path.join(fs.root, ".tmp"))) == 1
    w.write(b" and two")
    w.commit()
    assert fs.open(key).read() == b"part one and two"
    assert os.listdir(os.path.join(fs.root, ".tmp")) == []
    w = fs.writer(object_key("t", str(uuid.uuid4())))
    w.write(b"x")
    w.abort()
    w.abort()
    assert os.listdir(os.path.join(fs.root, ".tmp")) == []
    for bad in ("../outside", "/etc/passwd", ".tmp/x.part", "t/../../x"):
        with pytest.raises(ValueError):
            fs.path(bad)
    fs.delete(key)
    fs.delete(key)
    with pytest.raises(NotFound):
        fs.open(key)


def test_filesystem_sweep_removes_only_temp_files_no_writer_holds(tmp_path):
    fs = FilesystemStorage(str(tmp_path), lambda: None)
    assert fs.sweep() == 0
    temp = os.path.join(fs.root, ".tmp")
    os.makedirs(temp)
    for name, age in (("old.part", 600), ("fresh.part", 0), ("other.txt", 600), ("held.part", 600)):
        with open(os.path.join(temp, name), "w") as f:
            f.write("x")
        os.utime(os.path.join(temp, name), (time.time() - age,) * 2)
    held = os.open(os.path.join(temp, "held.part"), os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as a live writer holds it, in this process or another
    writer = fs.writer(object_key("t", str(uuid.uuid4())))
    writer.write(b"in progress")
    [mine] = set(os.listdir(temp)) - {"old.part", "fresh.part", "other.txt", "held.part"}
    os.utime(os.path.join(temp, mine), (time.time() - 600,) * 2)  # old: only its lock keeps it
    assert fs.sweep() == 1
    assert sorted(os.listdir(temp)) == sorted(["fresh.part", "held.part", "other.txt", mine])
    os.close(held)
    assert fs.sweep() == 1 and sorted(os.listdir(temp)) == sorted(["fresh.part", "other.txt", mine])  # writer gone
    writer.commit()
    assert sorted(os.listdir(temp)) == ["fresh.part", "other.txt"]


def test_the_periodic_sweep_runs_in_each_process_and_survives_errors():
    import threading

    from deployments.artifacts.sweeper import PeriodicSweep
    calls = threading.Semaphore(0)

    def sweep():
        calls.release()
        raise OSError("storage hiccup")

    sweeper = PeriodicSweep(sweep, 0.01)
    sweeper.ensure_started()
    sweeper.ensure_started()  # once per process
    assert calls.acquire(timeout=30) and calls.acquire(timeout=30)  # it went on after the error
    sweeper.stop()
    before = set(threading.enumerate())
    PeriodicSweep(sweep, 0).ensure_started()  # 0: only the sweep at start
    assert not [t for t in set(threading.enumerate()) - before if t.name == "upload-sweeper"]


def test_link_signer():
    clock = FrozenClock(1_700_000_000)
    signer = LinkSigner(b"k" * 32, clock)
    query, expire = signer.sign("GET", "/p/1", "tenant", 60)
    args = dict(kv.split("=", 1) for kv in query.split("&"))
    args["x-men-expire"] = args["x-men-expire"].replace("%3A", ":")
    assert expire == 1_700_000_060 and signer.verify("GET", "/p/1", args) == ("tenant", None)
    for method, path, change in (("PUT", "/p/1", {}), ("GET", "/p/2", {}), ("GET", "/p/1", {"tenant_id": "x"}),
                                 ("GET", "/p/1", {"x-men-signature": "AAAA"})):
        with pytest.raises(Forbidden):
            signer.verify(method, path, {**args, **change})
    with pytest.raises(Forbidden):
        LinkSigner(b"j" * 32, clock).verify("GET", "/p/1", args)
    clock.advance(61)
    with pytest.raises(Forbidden) as exc:
        signer.verify("GET", "/p/1", args)
    assert "expired" in exc.value.message
    for broken in ({}, {"x-men-expire": "tomorrow", "x-men-signature": "x"}):
        with pytest.raises(BadRequest):
            signer.verify("GET", "/p/1", broken)
    with pytest.raises(ValueError):
        LinkSigner(b"short", clock)


def test_links_name_their_object():
    signer = LinkSigner(b"k" * 32, FrozenClock(1_700_000_000))
    query, _ = signer.sign("GET", "/p/1", "t", 60, obj="t/abc.0123456789abcdef")
    args = {k: v[0] for k, v in parse_qs(query).items()}
    assert args["x-men-object"] == "t/abc.0123456789abcdef"
    assert signer.verify("GET", "/p/1", args) == ("t", "t/abc.0123456789abcdef")
    for forged in ({**args, "x-men-object": "t/abc.fedcba9876543210"}, {**args, "x-men-object": "t/abc"},
                   {k: v for k, v in args.items() if k != "x-men-object"}):
        with pytest.raises(Forbidden):
            signer.verify("GET", "/p/1", forged)


@pytest.fixture
def s3(radosgw, unique):
    bucket = unique("st").lower()
    yield S3Storage(load_config(s3_config(radosgw, bucket)), FrozenClock())
    _drop_bucket(radosgw, bucket)


def test_s3_multipart_upload_and_abort(s3):
    key = object_key("t", str(uuid.uuid4()))
    data = os.urandom(PART_SIZE * 2 + 12345)
    w = s3.writer(key)
    for i in range(0, len(data), 1 << 20):
        w.write(data[i:i + (1 << 20)])
    assert not s3.exists(key)
    w.commit()
    assert s3.open(key).read() == data
    w = s3.writer(object_key("t", str(uuid.uuid4())))
    w.write(os.urandom(PART_SIZE + 1))
    assert len(s3_client(s3.uri).list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])) == 1
    w.abort()
    assert s3_client(s3.uri).list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    s3.promote(key, key + ".moved")
    assert not s3.exists(key) and s3.open(key + ".moved").read() == data
    with pytest.raises(NotFound):
        s3.open(key)


def test_s3_remembers_objects_it_saw_for_a_while(radosgw, unique):
    """download_link checks the object (a HEAD) once per DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS per
    key; a key is forgotten when this process deletes, empties a prefix or moves the object; the
    memo is bounded; 0 checks every time."""
    clock, bucket = FrozenClock(), unique("st").lower()
    s3 = S3Storage(load_config({**s3_config(radosgw, bucket), "DEPLOYMENTS_AWS_EXISTS_CACHE_SECONDS": "30"}), clock)
    try:
        heads = []
        s3.client.meta.events.register("before-parameter-build.s3.HeadObject",
                                       lambda params, **_: heads.append(params["Key"]))

        def link(key):
            return s3.download_link(key, tenant="t", filename="a.mender", expires_in=60, base_url="", path="")

        keys = [object_key(tenant, str(uuid.uuid4())) for tenant in ("t", "t", "u")]
        for key in keys:
            s3.writer(key).commit()
        for _ in range(3):
            for key in keys:
                link(key)
        assert heads == keys
        clock.advance(29)
        link(keys[0])
        assert heads == keys
        clock.advance(1)
        link(keys[0])
        assert heads == keys + keys[:1]
        link(keys[1]), link(keys[2])  # every key fresh again
        s3.delete(keys[0])
        s3.promote(keys[1], keys[1] + ".moved")
        s3.delete_prefix("u/")
        del heads[:]  # (a copy HEADs its source)
        for key in keys:
            with pytest.raises(ClientError):
                link(key)
        assert heads == keys

        s3.seen = _SeenObjects(30, clock, size=2)
        for key in keys:
            s3.writer(key).commit()
            link(key)
        del heads[:]
        link(keys[2]), link(keys[1]), link(keys[0])
        assert heads == keys[:1]  # the oldest was forgotten

        s3.seen = _SeenObjects(0, clock)
        del heads[:]
        link(keys[0]), link(keys[0])
        assert heads == keys[:1] * 2
    finally:
        _drop_bucket(radosgw, bucket)


def test_s3_sweep_aborts_dead_multipart_uploads(s3):
    w = s3.writer(object_key("", str(uuid.uuid4())))
    w.write(os.urandom(PART_SIZE + 1))
    s3.sweep()  # younger than a day: kept
    assert len(s3_client(s3.uri).list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])) == 1
    s3.sweep(max_age=0)
    assert s3_client(s3.uri).list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []


def test_s3_health_and_bucket_creation(s3, unique):
    s3.check(2.0)  # created on first use
    s3.ensure_bucket()
    dead = S3Storage(load_config(s3_config("http://127.0.0.1:9", unique("x"))), FrozenClock())
    with pytest.raises(Unavailable):
        dead.check(1.0)


def test_health_endpoint_includes_the_storage(make_app, unique):
    app = make_app("sqlite")
    assert app.test_client().get("/api/internal/v1/deployments/health").status_code == 204
    app = make_app("sqlite", **s3_config("http://127.0.0.1:9", unique("x")), MENDER_HEALTH_TIMEOUT_SECONDS=1.0)
    r = app.test_client().get("/api/internal/v1/deployments/health")
    assert r.status_code == 503 and r.get_json()["request_id"]
