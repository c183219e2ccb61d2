"""Contract of the artifacts store, on SQLite and on the MongoDB store."""

from __future__ import annotations

import uuid

import pytest

from common.errors import Conflict
from deployments.artifacts.model import Artifact, ArtifactBrief
from deployments.artifacts.service import depends_index


@pytest.fixture
def store(make_app, backend):
    app = make_app(backend)
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    with app.app_context():
        yield ctx.services.artifacts.store


def artifact(name="a", device_types=("dt1",), description="", modified=1000.0, update_types=("single-file",),
             depends=None, size=100):
    depends = depends or {"device_type": list(device_types)}
    return Artifact(id=str(uuid.uuid4()), name=name, description=description, device_types=list(device_types),
                    update_types=list(update_types), info={"format": "mender", "version": 3}, signed=False,
                    updates=[{"type_info": {"type": "single-file"}, "files": [], "metadata": {"$weird.key": "x"},
                              "meta_data": []}],
                    provides={"artifact_name": name, "rootfs-image.x.version": name}, depends=depends,
                    clears_provides=[], depends_idx=depends_index(depends), size=size, modified=modified,
                    storage_key=f"some/{uuid.uuid4()}.0123456789abcdef")


def test_insert_get_roundtrip_and_tenant_scope(store):
    a = artifact()
    store.insert_artifact("t1", a)
    assert store.get_artifact("t1", a.id) == a
    assert store.get_artifact("t2", a.id) is None
    assert store.get_artifact_brief("t1", a.id) == ArtifactBrief(a.id, a.name, a.device_types, a.size, a.storage_key)
    assert store.get_artifact_brief("t2", a.id) is None
    assert store.artifacts_by_names("t2", ["a"]) == []


def test_name_and_depends_are_unique_per_tenant(store):
    store.insert_artifact("", artifact("a", ("dt1", "dt2")))
    with pytest.raises(Conflict):
        store.insert_artifact("", artifact("a", ("dt2", "dt3")))
    store.insert_artifact("", artifact("a", ("dt3",)))
    store.insert_artifact("", artifact("b", ("dt1",)))
    store.insert_artifact("other", artifact("a", ("dt1",)))
    clash = store.find_conflict("", "a", depends_index({"device_type": ["dt2"]}))
    assert clash is not None and clash.device_types == ["dt1", "dt2"]
    assert store.find_conflict("", "a", depends_index({"device_type": ["dt9"]})) is None
    # the same device type with an extra depends key is another combination
    store.insert_artifact("", artifact("a", ("dt1",), depends={"device_type": ["dt1"], "x": ["1"]}))
    assert len(store.artifacts_by_names("", ["a"])) == 3


def test_list_filters_sort_and_paging(store):
    for i, (name, dt, desc) in enumerate([("app-1", "rpi", "first"), ("app-2", "rpi", "second"),
                                          ("base", "bbb", "first build"), ("app-10", "rpi4", "")]):
        store.insert_artifact("", artifact(name, (dt,), description=desc, modified=1000.0 + i))
    names = lambda items: [a.name for a in items[0]]  # noqa: E731
    assert names(store.list_artifacts("")) == ["app-1", "app-10", "app-2", "base"]
    assert names(store.list_artifacts("", name=("prefix", "app-1"))) == ["app-1", "app-10"]
    assert names(store.list_artifacts("", name=("eq", ["base", "app-2"]))) == ["app-2", "base"]
    assert names(store.list_artifacts("", device_type=("eq", ["rpi"]))) == ["app-1", "app-2"]
    assert names(store.list_artifacts("", device_type=("prefix", "rpi"))) == ["app-1", "app-10", "app-2"]
    assert names(store.list_artifacts("", description=("prefix", "first"))) == ["app-1", "base"]
    assert names(store.list_artifacts("", sort=("modified", False))) == ["app-10", "base", "app-2", "app-1"]
    assert names(store.list_artifacts("", sort=("name", False))) == ["base", "app-2", "app-10", "app-1"]
    page, total = store.list_artifacts("", skip=1, limit=2)
    assert [a.name for a in page] == ["app-10", "app-2"] and total == 4
    assert store.list_artifacts("x") == ([], 0)


def test_edit_and_delete_refresh_the_release(store):
    a, b = artifact("r", ("d1",), modified=10.0), artifact("r", ("d2",), modified=20.0, update_types=("rootfs-image",))
    store.insert_artifact("", a)
    store.insert_artifact("", b)
    rel = store.get_release("", "r")
    assert rel.artifacts_count == 2 and rel.device_types == ["d1", "d2"] and rel.modified == 20.0
    assert rel.update_types == ["rootfs-image", "single-file"]
    assert store.update_description("", a.id, "new", 30.0)
    assert store.get_artifact("", a.id).description == "new"
    assert store.get_release("", "r").modified == 30.0
    assert not store.update_description("", str(uuid.uuid4()), "x", 1.0)
    assert store.delete_artifact("", a.id).id == a.id
    assert store.delete_artifact("", a.id) is None
    assert store.get_release("", "r").artifacts_count == 1
    store.delete_artifact("", b.id)
    assert store.get_release("", "r") is None
    assert store.storage_usage("") == 0


def test_release_listing_tags_and_notes(store):
    for name, dt, ut, desc, t in [("a", "rpi", "single-file", "x", 1.0), ("a", "bbb", "single-file", "", 2.0),
                                  ("b", "rpi", "rootfs-image", "y", 3.0), ("c", "qemu", "directory", "", 4.0)]:
        store.insert_artifact("", artifact(name, (dt,), update_types=(ut,), description=desc, modified=t))
    assert store.set_release_tags("", "a", ["prod", "v1"], 100)
    assert store.set_release_tags("", "b", ["beta"], 100)
    assert not store.set_release_tags("", "zzz", ["x"], 100)
    assert store.set_release_notes("", "a", "notes!")
    assert not store.set_release_notes("", "zzz", "x")
    names = lambda r: [x.name for x in r[0]]  # noqa: E731
    assert names(store.list_releases("")) == ["a", "b", "c"]
    assert store.list_releases("")[0][0].artifacts_count == 2 and store.get_release("", "a").notes == "notes!"
    assert names(store.list_releases("", tags=["beta", "v1"])) == ["a", "b"]
    assert names(store.list_releases("", update_type="rootfs-image")) == ["b"]
    assert names(store.list_releases("", device_type="rpi")) == ["a", "b"]
    assert names(store.list_releases("", description="y")) == ["b"]
    assert names(store.list_releases("", name=("prefix", "b"))) == ["b"]
    assert names(store.list_releases("", sort=("artifacts_count", False))) == ["a", "b", "c"]
    assert names(store.list_releases("", sort=("modified", False))) == ["c", "b", "a"]
    assert names(store.list_releases("", sort=("tags", True))) == ["c", "b", "a"]
    assert names(store.list_releases("", sort=("name", False), skip=1, limit=1)) == ["b"]
    assert store.list_releases("", limit=1)[1] == 3
    assert store.release_tags("") == ["beta", "prod", "v1"]
    assert store.update_types("") == ["directory", "rootfs-image", "single-file"]
    assert store.release_tags("other") == [] and store.list_releases("other") == ([], 0)


def test_unique_tag_limit(store):
    store.insert_artifact("", artifact("a"))
    store.insert_artifact("", artifact("b"))
    assert store.set_release_tags("", "a", ["t1", "t2"], 3)
    with pytest.raises(Conflict):
        store.set_release_tags("", "b", ["t3", "t4"], 3)
    assert store.set_release_tags("", "b", ["t1", "t3"], 3)
    assert store.set_release_tags("", "a", ["t3"], 3)  # replacing frees t2
    assert store.release_tags("") == ["t1", "t3"]


def test_direct_upload_states(store):
    store.insert_upload("t", "u1", 100.0, 50.0)
    assert store.upload_status("t", "u1") == "pending"
    assert store.upload_status("other", "u1") is None
    assert store.claim_upload("t", "u1")
    assert not store.claim_upload("t", "u1")
    store.set_upload_status("t", "u1", "completed")
    assert store.upload_status("t", "u1") == "completed"


def test_expired_uploads_of_every_organization_and_conditional_removal(store):
    store.insert_upload("t", "late", 300.0, 50.0)
    store.insert_upload("", "old", 100.0, 50.0)
    store.insert_upload("t2", "mid", 200.0, 50.0)
    store.set_upload_status("t2", "mid", "completed")
    assert store.expired_uploads(250.0, 10) == [("", "old", "pending"), ("t2", "mid", "completed")]
    assert store.expired_uploads(250.0, 1) == [("", "old", "pending")]
    assert store.expired_uploads(100.0, 10) == []
    assert store.claim_upload("", "old")
    assert not store.delete_upload("", "old", "pending")  # claimed meanwhile: kept
    assert store.upload_status("", "old") == "processing"
    assert not store.delete_upload("t", "mid", "completed")  # another organization's id
    assert store.delete_upload("t2", "mid", "completed")
    assert store.upload_status("t2", "mid") is None and not store.delete_upload("t2", "mid", "completed")
    assert store.expired_uploads(1000.0, 10) == [("", "old", "processing"), ("t", "late", "pending")]
