"""Service rules: the cross-service interface, device writes and limits, tags, groups, filters."""

from __future__ import annotations

import pytest

from common.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from inventory.api import render
from tests.inventory.conftest import T0, attrs_of, pred, ts


def test_upsert_identity_creates_and_replaces_keeping_status(svc):
    svc.upsert_identity("", "d1", {"mac": "aa", "sn": "1", "nested": {"x": 1}, "flag": True})
    svc.set_status("", ["d1"], "pending")
    svc.upsert_identity("", "d1", {"mac": "bb"})
    device = render.device(svc.get_device("", "d1"))
    assert attrs_of(device, "identity") == {"mac": "bb", "status": "pending"}
    system = attrs_of(device, "system")
    assert system["status"] == "pending" and system["created_ts"].endswith("Z")
    svc.upsert_identity("", "d2", {"nested": {"x": 1}, "flag": True, "list": ["a", 1]})
    assert attrs_of(svc.get_device("", "d2"), "identity") == {
        "nested": '{"x":1}', "flag": "true", "list": '["a",1]'}


def test_set_status_creates_missing_devices_and_checks_status(svc):
    svc.set_status("", ["n1", "n2"], "accepted")
    assert svc.search_device_ids("") == (["n1", "n2"], 2)
    assert svc.search_device_ids("", status="pending") == ([], 0)
    assert svc.search_device_ids("", status=None, per_page=1, page=2) == (["n2"], 2)
    with pytest.raises(BadRequest):
        svc.set_status("", ["n1"], "bogus")


def test_delete_device_is_idempotent(svc):
    svc.set_status("", ["d1"], "accepted")
    svc.delete_device("", "d1")
    svc.delete_device("", "d1")
    with pytest.raises(NotFound):
        svc.get_device("", "d1")


def test_record_check_ins(svc, clock):
    svc.set_status("", ["d1"], "accepted")
    svc.record_check_ins("", ["d1"], T0)
    svc.record_check_ins("", ["d1"], T0 + 30)  # within a minute: not written
    assert attrs_of(svc.get_device("", "d1"), "system")["check_in_time"] == ts()
    svc.record_check_ins("", ["d1"], T0 + 61)
    assert attrs_of(svc.get_device("", "d1"), "system")["check_in_time"] == ts(61)
    svc.record_check_ins("", [], T0 + 200)  # nothing to write


def test_device_group_search_and_matches(svc):
    svc.set_status("", ["a", "b", "c"], "accepted")
    svc.update_device_attributes("", "a", [{"name": "cpu", "value": "arm"}], replace=True)
    svc.update_device_attributes("", "b", [{"name": "cpu", "value": "x86"}], replace=True)
    svc.assign_group("", "a", "g1")
    assert svc.device_group("", "a") == "g1" and svc.device_group("", "b") is None
    assert svc.device_group("", "ghost") is None
    assert svc.search_device_ids("", group="g1") == (["a"], 1)
    arm = [pred("cpu", "$eq", "arm")]
    assert svc.search_device_ids("", filters=arm) == (["a"], 1)
    assert svc.device_matches("", "a", arm) and not svc.device_matches("", "b", arm)
    assert not svc.device_matches("", "ghost", arm)
    with pytest.raises(BadRequest):
        svc.search_device_ids("", filters=[pred("cpu", "$where", "x")])


def test_put_replaces_and_patch_merges(svc, clock):
    svc.update_device_attributes("", "d1", [{"name": "a", "value": "1"}, {"name": "b", "value": 2}], replace=True)
    svc.update_device_attributes("", "d1", [{"name": "c", "value": ["x"]}], replace=False)
    assert attrs_of(svc.get_device("", "d1"), "inventory") == {"a": "1", "b": 2, "c": ["x"]}
    clock.advance(10)
    svc.update_device_attributes("", "d1", [{"name": "b", "value": 3, "description": "bee"}], replace=True)
    device = render.device(svc.get_device("", "d1"))
    assert attrs_of(device, "inventory") == {"b": 3}
    assert device["updated_ts"] == ts(10)
    assert attrs_of(device, "system")["updated_ts"] == device["updated_ts"]


def test_unchanged_upload_writes_nothing_the_same_day(svc, clock):
    svc.update_device_attributes("", "d1", [{"name": "a", "value": "1"}], replace=True)
    version = svc.store.get_device("", "d1").version
    clock.advance(60)
    svc.update_device_attributes("", "d1", [{"name": "a", "value": "1"}], replace=True)
    assert svc.store.get_device("", "d1").version == version
    clock.advance(86400)  # next day: updated_ts moves
    svc.update_device_attributes("", "d1", [{"name": "a", "value": "1"}], replace=False)
    assert svc.store.get_device("", "d1").updated_ts == T0 + 60 + 86400


BAD_BODIES = [
    ({"name": "a", "value": "1"}, "array"),
    ([{"name": "a"}], "value"),
    ([{"value": "1"}], "name"),
    ([{"name": "", "value": "1"}], "name"),
    ([{"name": "a" * 1025, "value": "1"}], "name"),
    ([{"name": "a", "value": {"x": 1}}], "value"),
    ([{"name": "a", "value": None}], "value"),
    ([{"name": "a", "value": True}], "value"),
    ([{"name": "a", "value": ["x", 1]}], "mixed"),
    ([{"name": "a", "value": [["x"]]}], "value"),
    ([{"name": "a", "value": float("nan")}], "finite"),
    ([{"name": "a", "value": "x" * 16385}], "bytes"),
    ([{"name": "a", "value": ["x"] * 1025}], "elements"),
    ([{"name": "a", "value": "1"}, {"name": "a", "value": "2"}], "duplicate"),
    ([{"name": "a", "value": "1", "scope": "tags"}], "unknown"),
    ([{"name": "a", "value": "1", "description": 5}], "description"),
    (["a"], "object"),
]


@pytest.mark.parametrize("body,word", BAD_BODIES, ids=[w for _, w in BAD_BODIES])
def test_invalid_uploads_are_rejected_without_writing(svc, body, word):
    with pytest.raises(BadRequest) as err:
        svc.update_device_attributes("", "d1", body, replace=True)
    assert word in err.value.message
    with pytest.raises(NotFound):
        svc.get_device("", "d1")


def test_attribute_limit_counts_the_merged_set(make_app, backend):
    app = make_app(backend, INVENTORY_LIMIT_ATTRIBUTES=3)
    app.extensions["mender"].ensure_migrated()
    svc = app.extensions["mender"].services.inventory
    with pytest.raises(BadRequest):
        svc.update_device_attributes("", "d1", [{"name": str(i), "value": "v"} for i in range(4)], replace=True)
    svc.update_device_attributes("", "d1", [{"name": str(i), "value": "v"} for i in range(3)], replace=True)
    with pytest.raises(BadRequest, match="at most 3"):
        svc.update_device_attributes("", "d1", [{"name": "x", "value": "v"}], replace=False)
    svc.update_device_attributes("", "d1", [{"name": "x", "value": "v"}], replace=True)  # replaces: fine
    assert attrs_of(svc.get_device("", "d1"), "inventory") == {"x": "v"}


def test_tags_etag_and_limits(svc, clock):
    with pytest.raises(NotFound):
        svc.update_tags("", "d1", [{"name": "env", "value": "test"}], True, None)
    svc.set_status("", ["d1"], "accepted")
    etag = svc.get_device("", "d1").tags_etag
    svc.update_tags("", "d1", [{"name": "env", "value": "test"}], True, etag)
    got = svc.get_device("", "d1")
    device, etag2 = render.device(got), got.tags_etag
    assert etag2 != etag
    tag = next(a for a in device["attributes"] if a["scope"] == "tags")
    assert tag == {"name": "env", "value": "test", "scope": "tags", "timestamp": ts()}
    with pytest.raises(PreconditionFailed):
        svc.update_tags("", "d1", [{"name": "env", "value": "prod"}], False, etag)  # stale
    svc.update_tags("", "d1", [{"name": "loc", "value": "de"}], False, f'"{etag2}"')  # quoted works
    assert attrs_of(svc.get_device("", "d1"), "tags") == {"env": "test", "loc": "de"}
    svc.update_tags("", "d1", [{"name": "loc", "value": "fr"}], True, "*")
    assert attrs_of(svc.get_device("", "d1"), "tags") == {"loc": "fr"}
    with pytest.raises(BadRequest):
        svc.update_tags("", "d1", [{"name": "n", "value": 5}], True, None)  # tags are strings
    with pytest.raises(BadRequest):
        svc.update_tags("", "d1", [{"name": f"t{i}", "value": "v"} for i in range(21)], True, None)


def test_groups(svc):
    svc.set_status("", ["a", "b"], "accepted")
    svc.set_status("", ["p"], "pending")
    with pytest.raises(BadRequest):
        svc.assign_group("", "a", "bad name!")
    with pytest.raises(BadRequest):
        svc.assign_group("", "a", "x" * 257)
    with pytest.raises(NotFound):
        svc.assign_group("", "ghost", "g1")
    svc.assign_group("", "a", "g1")
    svc.assign_group("", "a", "g2")  # moves
    assert svc.get_device_group("", "a") == "g2"
    assert svc.add_devices_to_group("", "g1", ["a", "b", "p", "ghost"]) == (3, 3)
    assert svc.groups("") == ["g1"] and svc.groups("", "pending") == ["g1"]
    assert svc.group_devices("", "g1", 1, 2) == (["a", "b"], 3)
    assert svc.remove_devices_from_group("", "g1", ["a", "ghost"]) == 1
    with pytest.raises(NotFound):
        svc.remove_from_group("", "a", "g1")
    svc.remove_from_group("", "b", "g1")
    assert svc.delete_group("", "g1") == 1
    with pytest.raises(NotFound):
        svc.delete_group("", "g1")
    with pytest.raises(NotFound):
        svc.group_devices("", "g1", 1, 10)
    with pytest.raises(BadRequest):
        svc.add_devices_to_group("", "g1", [])
    with pytest.raises(BadRequest):
        svc.add_devices_to_group("", "g1", [1, 2])


def test_saved_filters(svc):
    svc.set_status("", ["a", "b"], "accepted")
    svc.update_device_attributes("", "a", [{"name": "cpu", "value": "arm"}], replace=True)
    saved = svc.create_filter("", {"name": "arm", "terms": [pred("cpu", "$eq", "arm")]})
    assert svc.get_filter("", saved.id) == saved
    with pytest.raises(Conflict):
        svc.create_filter("", {"name": "arm", "terms": [pred("cpu", "$eq", "x")]})
    with pytest.raises(BadRequest):
        svc.create_filter("", {"name": "bad", "terms": [pred("cpu", "$bogus", "x")]})
    with pytest.raises(BadRequest):
        svc.create_filter("", {"name": "empty", "terms": []})
    devices, total = svc.run_filter("", saved.id, 1, 20)
    assert total == 1 and devices[0].id == "a"
    assert svc.search_device_ids("", filters=svc.get_filter("", saved.id).terms) == (["a"], 1)
    assert svc.list_filters("", 1, 20) == ([saved], 1)
    svc.delete_filter("", saved.id)
    with pytest.raises(NotFound):
        svc.get_filter("", saved.id)
    with pytest.raises(NotFound):
        svc.delete_filter("", saved.id)


def test_tenants_are_isolated(svc):
    svc.set_status("t1", ["a"], "accepted")
    svc.update_device_attributes("t1", "a", [{"name": "cpu", "value": "arm"}], replace=True)
    assert svc.search_device_ids("t2", filters=[pred("cpu", "$eq", "arm")]) == ([], 0)
    assert svc.groups("t2") == [] and svc.device_group("t2", "a") is None
    with pytest.raises(NotFound):
        svc.get_device("t2", "a")
    with pytest.raises(NotFound):
        svc.update_tags("t2", "a", [], True, None)


def test_statistics(svc):
    svc.set_status("", ["a", "b"], "accepted")
    svc.set_status("", ["c"], "pending")
    svc.patch_scope("", "b", "system", [{"name": "tier", "value": "micro"}])
    assert svc.statistics("") == {
        "accepted": {"standard": 1, "micro": 1, "system": 0}, "pending": {"standard": 1, "micro": 0, "system": 0}}


def test_patch_scope_unmodified_since(svc, clock):
    svc.patch_scope("", "d1", "inventory", [{"name": "a", "value": "1"}])
    with pytest.raises(PreconditionFailed):
        svc.patch_scope("", "d1", "inventory", [{"name": "a", "value": "2"}], unmodified_since=T0 - 10)
    svc.patch_scope("", "d1", "monitor", [{"name": "m", "value": 1}], unmodified_since=T0)
    svc.patch_scope("", "d1", None, [{"name": "t", "value": "v", "scope": "tags"}, {"name": "i", "value": "x"}])
    got = attrs_of(svc.get_device("", "d1"))
    assert {k: got[k] for k in [("monitor", "m"), ("tags", "t"), ("inventory", "i"), ("inventory", "a")]} == {
        ("monitor", "m"): 1, ("tags", "t"): "v", ("inventory", "i"): "x", ("inventory", "a"): "1"}
    with pytest.raises(BadRequest):
        svc.patch_scope("", "d1", "nope", [{"name": "a", "value": "1"}])


def test_filter_attributes_of_a_full_sample_are_reused_for_a_minute(svc, monkeypatch):
    """A fleet of FILTER_ATTRIBUTES_SAMPLE devices or more (3 here) has its attribute sample kept
    for FILTER_ATTRIBUTES_CACHE_SECONDS; a smaller fleet's is read every time."""
    import inventory.service as service
    monkeypatch.setattr(service, "FILTER_ATTRIBUTES_SAMPLE", 3)
    clock = [1000.0]
    monkeypatch.setattr(service, "_monotonic", lambda: clock[0])
    names = lambda: {(c.scope, c.name) for c in svc.filter_attributes("")}  # noqa: E731
    svc.update_device_attributes("", "a", [{"name": "cpu", "value": "arm"}], True)
    svc.update_device_attributes("", "b", [{"name": "cpu", "value": "arm"}], True)
    assert ("inventory", "cpu") in names()
    svc.update_device_attributes("", "a", [{"name": "fresh", "value": 1}], True)
    assert ("inventory", "fresh") in names()  # two devices: not a full sample, read again
    svc.update_device_attributes("", "c", [{"name": "cpu", "value": "x86"}], True)
    assert ("inventory", "fresh") in names()  # three devices with cpu: cached from here
    svc.update_device_attributes("", "b", [{"name": "later", "value": 1}], True)
    assert ("inventory", "later") not in names()
    clock[0] += service.FILTER_ATTRIBUTES_CACHE_SECONDS + 1
    assert ("inventory", "later") in names()
