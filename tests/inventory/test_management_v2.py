"""Management API v2 over HTTP: filter attributes, search, saved filters, statistics; v2alpha1."""

from __future__ import annotations

import pytest

from tests.inventory.conftest import pred

V2 = "/api/management/v2/inventory"


@pytest.fixture
def fleet(svc):
    svc.set_status("", ["a", "b", "c"], "accepted")
    svc.set_status("", ["p"], "pending")
    svc.upsert_identity("", "a", {"mac": "00:01:aa"})
    svc.upsert_identity("", "b", {"mac": "00:02:bb"})
    svc.update_device_attributes("", "a", [{"name": "cpu", "value": "arm"}, {"name": "mem", "value": 512},
                                           {"name": "tags", "value": ["x", "y"]}], True)
    svc.update_device_attributes("", "b", [{"name": "cpu", "value": "x86"}, {"name": "mem", "value": 2048}], True)
    svc.update_device_attributes("", "c", [{"name": "cpu", "value": "arm64"}, {"name": "mem", "value": 1024}], True)
    svc.set_status("other", ["z"], "accepted")
    svc.update_device_attributes("other", "z", [{"name": "cpu", "value": "arm"}], True)
    return svc


def search(operator, body=None, **kw):
    return operator.post(V2 + "/filters/search", json=body, **kw)


def ids(r):
    assert r.status_code == 200, r.get_json()
    return [d["id"] for d in r.get_json()]


def test_filter_attributes(operator, fleet):
    r = operator.get(V2 + "/filters/attributes")
    assert r.status_code == 200
    rows = r.get_json()
    assert {"name": "cpu", "scope": "inventory", "count": 3} in rows
    assert {"name": "tags", "scope": "inventory", "count": 1} in rows
    counts = [row["count"] for row in rows]
    assert counts == sorted(counts, reverse=True)


def test_search_without_body_lists_everything(operator, fleet):
    r = operator.post(V2 + "/filters/search")
    assert ids(r) == ["a", "b", "c", "p"] and r.headers["X-Total-Count"] == "4"


@pytest.mark.parametrize("filters,expected", [
    ([pred("cpu", "$eq", "arm")], ["a"]),
    ([pred("cpu", "$ne", "arm")], ["b", "c", "p"]),
    ([pred("mem", "$gt", 512)], ["b", "c"]),
    ([pred("mem", "$gte", 512), pred("mem", "$lt", 2048)], ["a", "c"]),
    ([pred("mem", "$lte", 1024)], ["a", "c"]),
    ([pred("cpu", "$in", ["arm", "x86"])], ["a", "b"]),
    ([pred("cpu", "$nin", ["arm", "x86"])], ["c", "p"]),
    ([pred("tags", "$exists", True)], ["a"]),
    ([pred("tags", "$exists", False)], ["b", "c", "p"]),
    ([pred("tags", "$eq", "y")], ["a"]),
    ([pred("cpu", "$regex", "arm")], ["a", "c"]),
    ([pred("cpu", "$regex", "/ARM$/i")], ["a"]),
    ([pred("cpu", "$regex", "[unclosed")], []),  # invalid regex: no results, no error
    ([pred("status", "$eq", "pending", scope="identity")], ["p"]),
    ([pred("status", "$eq", "accepted", scope="system"), pred("cpu", "$regex", "arm")], ["a", "c"]),
    ([pred("id", "$in", ["b", "c", "z"], scope="identity")], ["b", "c"]),
    ([pred("mac", "$regex", "00:0", scope="identity"), pred("mem", "$gt", 1000)], ["b"]),
])
def test_search_operators(operator, fleet, filters, expected):
    r = search(operator, {"filters": filters})
    assert ids(r) == expected and r.headers["X-Total-Count"] == str(len(expected))


@pytest.mark.parametrize("filters,expected", [
    ([pred("mem", "$ltne", 1024)], ["a", "p"]),  # 512, and p without mem; 1024 is not below
    ([pred("cpu", "$ltne", "arm6")], ["a", "p"]),
    ([pred("tags", "$ltne", "y")], ["a", "b", "c", "p"]),  # a's "x" is below; the others have none
    ([pred("tags", "$ltne", "x")], ["b", "c", "p"]),  # none of a's values is below
    ([pred("cpu", "$ltne", 5)], ["p"]),  # strings are not below a number; only the absent matches
    ([pred("mem", "$ltne", 2048), pred("cpu", "$regex", "arm")], ["a", "c"]),
    ([pred("status", "$eq", "accepted", scope="identity"), pred("mem", "$ltne", 600)], ["a"]),
    ([pred("id", "$ltne", "b", scope="identity")], ["a"]),
])
def test_search_ltne(operator, fleet, filters, expected):
    """`$ltne`, in the spec's FilterPredicate type enum (Mender's UI finds devices not seen since a
    time with it): the attribute is below the value, or the device has no such attribute. It was
    refused with 400 as an unknown operator. An array matches when one of its values is below;
    a value of the other type (string against number) is not below; a device id is never absent."""
    r = search(operator, {"filters": filters})
    assert ids(r) == expected and r.headers["X-Total-Count"] == str(len(expected))
    saved = operator.post(V2 + "/filters", json={"name": "f-" + str(abs(hash(str(filters)))), "terms": filters})
    assert saved.status_code == 201, saved.get_json()
    assert ids(operator.get(saved.headers["Location"] + "/search")) == expected


def test_search_sort_paging_projection(operator, fleet):
    body = {"sort": [{"scope": "inventory", "attribute": "mem", "order": "desc"}], "page": 1, "per_page": 2}
    r = search(operator, body)
    assert ids(r) == ["b", "c"] and r.headers["X-Total-Count"] == "4" and 'rel="next"' in r.headers["Link"]
    assert ids(search(operator, {**body, "page": 2})) == ["a", "p"]
    multi = {"sort": [{"scope": "inventory", "attribute": "cpu", "order": "asc"},
                      {"scope": "inventory", "attribute": "mem", "order": "desc"}]}
    assert ids(search(operator, multi)) == ["p", "a", "c", "b"]
    missing = {"sort": [{"scope": "inventory", "attribute": "nothing", "order": "asc"}]}
    assert ids(search(operator, missing)) == ["a", "b", "c", "p"]
    r = search(operator, {"filters": [pred("cpu", "$eq", "arm")],
                          "attributes": [{"scope": "inventory", "attribute": "mem"}]})
    assert r.get_json()[0]["attributes"] == [{"name": "mem", "value": 512, "scope": "inventory"},
                                             {"name": "updated_ts", "value": r.get_json()[0]["updated_ts"],
                                              "scope": "system"}]
    assert ids(search(operator, {"device_ids": ["c", "a", "nope"]})) == ["a", "c"]


@pytest.mark.parametrize("body", [
    {"per_page": 10000}, {"per_page": 0}, {"page": 0}, {"page": "1"},
    {"filters": [pred("cpu", "$where", "x")]},
    {"filters": [pred("cpu", "$eq", {"x": 1})]},
    {"filters": [pred("cpu", "$eq", ["a", "b"])]},
    {"filters": [pred("cpu", "$in", "arm")]},
    {"filters": [pred("cpu", "$in", ["a", {"b": 1}])]},
    {"filters": [pred("cpu", "$exists", "yes")]},
    {"filters": [pred("cpu", "$regex", 5)]},
    # patterns a backtracking engine (MongoDB's PCRE) could take exponential time on
    {"filters": [pred("cpu", "$regex", "(a+)+$")]},
    {"filters": [pred("cpu", "$regex", "/(a|ab)*c/i")]},
    {"filters": [pred("cpu", "$regex", ".*a.*b.*c.*d")]},
    {"filters": [pred("cpu", "$eq", "x", scope="nowhere")]},
    {"filters": [{"scope": "inventory", "attribute": "cpu", "type": "$eq"}]},
    {"filters": "cpu=arm"},
    {"sort": [{"scope": "inventory", "attribute": "cpu", "order": "sideways"}]},
    {"attributes": [{"scope": "inventory"}]},
    {"device_ids": "a"},
    {"bogus": 1},
    {"text": 5},
    {"text": "x" * 257},
    {"text": "a b c d e f g h i"},
    ["not", "an", "object"],
])
def test_search_bad_input(operator, fleet, body):
    r = search(operator, body)
    assert r.status_code == 400, body
    assert set(r.get_json()) == {"error", "request_id"}


def test_search_malformed_json(operator, fleet):
    r = operator.post(V2 + "/filters/search", data="{", content_type="application/json")
    assert r.status_code == 400
    r = operator.post(V2 + "/filters/search", data="{}", content_type="text/plain")
    assert r.status_code == 415


def test_search_is_tenant_scoped(operator, fleet):
    assert ids(search(operator, {"filters": [pred("id", "$eq", "z", scope="identity")]})) == []


def test_saved_filters(operator, fleet):
    terms = [pred("cpu", "$regex", "arm"), pred("mem", "$gt", 600)]
    r = operator.post(V2 + "/filters", json={"name": "big arm", "terms": terms})
    assert r.status_code == 201
    saved = r.get_json()
    assert saved["name"] == "big arm" and saved["terms"] == terms
    assert r.headers["Location"].endswith(f"/api/management/v2/inventory/filters/{saved['id']}")
    assert operator.post(V2 + "/filters", json={"name": "big arm", "terms": terms}).status_code == 409
    for bad in ({"name": "", "terms": terms}, {"name": "x"}, {"name": "x", "terms": []},
                {"name": "x", "terms": [pred("a", "$bad", 1)]}, {"name": "x", "terms": terms, "more": 1},
                {"name": "x", "terms": [pred("cpu", "$regex", "(x*y?)*z")]}):
        r = operator.post(V2 + "/filters", json=bad)
        assert r.status_code == 400, bad
    assert operator.get(V2 + f"/filters/{saved['id']}").get_json() == saved
    assert operator.get(V2 + "/filters/nope").status_code == 404
    r = operator.get(V2 + "/filters")
    assert r.get_json() == [saved] and r.headers["X-Total-Count"] == "1"
    assert operator.get(V2 + "/filters?per_page=501").status_code == 400
    r = operator.get(V2 + f"/filters/{saved['id']}/search")
    assert ids(r) == ["c"] and r.headers["X-Total-Count"] == "1"
    assert operator.get(V2 + "/filters/nope/search").status_code == 404
    assert operator.get(V2 + f"/filters/{saved['id']}/search?per_page=10000").status_code == 400
    assert operator.delete(V2 + f"/filters/{saved['id']}").status_code == 204
    assert operator.delete(V2 + f"/filters/{saved['id']}").status_code == 404
    assert operator.get(V2 + f"/filters/{saved['id']}").status_code == 404


def test_statistics(operator, fleet):
    r = operator.get(V2 + "/statistics")
    assert r.status_code == 200
    assert r.get_json() == {"devices_by_status": {"accepted": {"standard": 3, "micro": 0, "system": 0},
                                                  "pending": {"standard": 1, "micro": 0, "system": 0}}}


def test_identity_prefix_search(operator, fleet):
    url = "/api/management/v2alpha1/inventory/identities/search"
    r = operator.post(url, json={"scope": "identity", "name": "mac", "value_prefix": "00:01"})
    assert ids(r) == ["a"] and r.headers["X-Total-Count"] == "1"
    r = operator.post(url, json={"scope": "identity", "name": "mac", "value_prefix": "00:0", "per_page": 1,
                                 "attributes": [{"scope": "identity", "attribute": "mac"}]})
    assert ids(r) == ["a"] and r.headers["X-Total-Count"] == "2"
    assert r.get_json()[0]["attributes"][0] == {"name": "mac", "value": "00:01:aa", "scope": "identity"}
    assert ids(operator.post(url, json={"scope": "identity", "name": "id", "value_prefix": "b"})) == ["b"]
    assert ids(operator.post(url, json={"scope": "identity", "name": "mac", "value_prefix": ".*"})) == []
    for bad in ({"scope": "inventory", "name": "mac", "value_prefix": "0"}, {"scope": "identity", "name": "mac"},
                {"scope": "identity", "name": "", "value_prefix": "0"}, [1]):
        assert operator.post(url, json=bad).status_code == 400, bad


def test_search_text(operator, fleet):
    assert ids(search(operator, {"text": "00:01"})) == ["a"]
    assert ids(search(operator, {"text": "00:0"})) == ["a", "b"]
    assert ids(search(operator, {"text": "ARM", "filters": [pred("mem", "$gt", 600)]})) == ["c"]
    r = search(operator, {"text": "00:0", "page": 1, "per_page": 1})
    assert ids(r) == ["a"] and r.headers["X-Total-Count"] == "2"


GROUPS = V2 + "/groups"


def group_of(fleet, device_id):
    return fleet.device_group("", device_id)


def test_group_a_selection_in_one_request(operator, fleet):
    r = operator.patch(GROUPS + "/arm/devices", json={"filters": [pred("cpu", "$regex", "arm")]})
    assert r.status_code == 200
    assert r.get_json() == {"matched_count": 2, "updated_count": 2, "failed_count": 0, "failures": []}
    assert [group_of(fleet, d) for d in "abcp"] == ["arm", None, "arm", None]
    # by text and by ids; already there counts as matched, not updated
    r = operator.patch(GROUPS + "/arm/devices", json={"text": "00:0"})
    assert r.get_json()["matched_count"] == 2 and r.get_json()["updated_count"] == 1
    r = operator.patch(GROUPS + "/x86/devices", json={"device_ids": ["b", "nope"]})
    assert r.get_json()["matched_count"] == 1 and group_of(fleet, "b") == "x86"
    # take the selected ones out of one group: only those in it
    r = operator.delete(GROUPS + "/arm/devices", json={"filters": [pred("status", "$eq", "accepted", "identity")]})
    assert r.status_code == 200 and r.get_json()["matched_count"] == 3 and r.get_json()["updated_count"] == 2
    assert [group_of(fleet, d) for d in "abc"] == [None, "x86", None]
    assert group_of(fleet, "z") is None  # never another organization's


@pytest.mark.parametrize("body", [
    {}, [], {"filters": "x"}, {"device_ids": []}, {"device_ids": [1]}, {"text": 5}, {"bogus": 1},
    {"filters": [pred("cpu", "$where", "x")]},
])
def test_group_selection_bad_input(operator, fleet, body):
    r = operator.patch(GROUPS + "/g/devices", json=body)
    assert r.status_code == 400 and set(r.get_json()) == {"error", "request_id"}
    assert operator.patch(GROUPS + "/bad name/devices", json={"filters": []}).status_code == 400


def test_selection_cap(make_app, backend, clock):
    from tests.helpers import Operator
    app = make_app(backend, _CLOCK=clock, INVENTORY_BULK_MAX_DEVICES=2)
    app.extensions["mender"].ensure_migrated()
    svc = app.extensions["mender"].services.inventory
    svc.set_status("", ["a", "b", "c"], "accepted")
    op = Operator.create(app)
    r = op.patch(GROUPS + "/g/devices", json={"filters": []})
    assert r.status_code == 400 and "3 devices, more than 2" in r.get_json()["error"]
    assert op.patch(GROUPS + "/g/devices", json={"device_ids": ["a", "b"]}).get_json()["updated_count"] == 2


def test_tag_a_selection(operator, fleet):
    url = V2 + "/devices/tags"
    r = operator.patch(url, json={"text": "00:0", "tags": [{"name": "site", "value": "lab"}]})
    assert r.status_code == 200 and r.get_json()["updated_count"] == 2
    r = operator.post(V2 + "/filters/search", json={"filters": [pred("site", "$eq", "lab", "tags")]})
    assert ids(r) == ["a", "b"]
    r = operator.patch(url, json={"device_ids": ["a"], "tags": [{"name": "site", "value": ""}]})
    assert r.get_json()["updated_count"] == 1
    assert ids(operator.post(V2 + "/filters/search", json={"filters": [pred("site", "$exists", True, "tags")]})) == ["b"]
    assert operator.patch(url, json={"device_ids": ["a"]}).status_code == 400
    assert operator.patch(url, json={"device_ids": ["a"], "tags": [{"name": "n", "value": 1}]}).status_code == 400


def test_tag_selection_over_the_limit_fails_per_device(operator, fleet):
    url = V2 + "/devices/tags"
    many = [{"name": f"t{i}", "value": "v"} for i in range(20)]
    assert operator.patch(url, json={"device_ids": ["a"], "tags": many}).get_json()["updated_count"] == 1
    r = operator.patch(url, json={"device_ids": ["a", "b"], "tags": [{"name": "extra", "value": "v"}]})
    body = r.get_json()
    assert body["updated_count"] == 1 and body["failed_count"] == 1
    assert body["failures"][0]["id"] == "a" and "20 tags" in body["failures"][0]["error"]


def test_a_large_search_says_its_total_is_estimated(operator, svc, backend, monkeypatch):
    """Past COUNT_EXACT_CANDIDATES (scaled down here) SQLite estimates the total of a search whose
    most selective predicate others filter, and says so (X-Total-Count-Estimated); the page is the
    exact one either way, and MongoDB always counts."""
    import inventory.store.sqlite as sqlite_store
    from inventory.model import Attribute
    import inventory.store.sqlite_walk as walk
    monkeypatch.setattr(sqlite_store, "COUNT_EXACT_CANDIDATES", 5)
    monkeypatch.setattr(walk, "COUNT_SAMPLE", 8)
    for i in range(40):
        svc.store.create_device("", f"d{i:02d}", 1.0, "e", [Attribute("inventory", "kind", f"k{i % 2}"),
                                                           Attribute("inventory", "n", float(i * 17 % 40))])
    body = {"filters": [pred("kind", "$eq", "k1"), pred("n", "$gte", 10)], "page": 1, "per_page": 5,
            "sort": [{"scope": "inventory", "attribute": "n", "order": "desc"}]}
    r = search(operator, body)
    matching = sorted((i * 17 % 40, f"d{i:02d}") for i in range(1, 40, 2) if i * 17 % 40 >= 10)
    assert ids(r) == [d for _, d in matching[::-1][:5]]
    assert (r.headers.get("X-Total-Count-Estimated") == "true") == (backend == "sqlite")
    assert abs(int(r.headers["X-Total-Count"]) - len(matching)) <= 6
    exact = search(operator, {"filters": [pred("kind", "$eq", "k1")], "page": 1, "per_page": 5})
    assert "X-Total-Count-Estimated" not in exact.headers and exact.headers["X-Total-Count"] == "20"
