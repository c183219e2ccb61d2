"""tenantadm store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import pytest

from common.errors import Conflict
from tenantadm.model import Tenant


@pytest.fixture
def store(app):
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.tenantadm._store


def tenant(tid: str, name: str, created: float = 1000.0, status: str = "active") -> Tenant:
    return Tenant(id=tid, name=name, status=status, tenant_token=f"tok-{tid}", token_id=f"jti-{tid}",
                  created_ts=created, updated_ts=created)


def test_insert_get_and_duplicate_id(store):
    t = tenant("aa11", "Acme", 1000.25)
    store.insert_tenant(t)
    assert store.get_tenant("aa11") == t
    assert store.get_tenant("nope") is None
    with pytest.raises(Conflict):
        store.insert_tenant(tenant("aa11", "Other"))
    store.insert_tenant(tenant("bb22", "acme"))  # names need not be unique
    assert store.get_tenant("bb22").name == "acme"


def test_list_pages_filters_and_query(store):
    for i, name in enumerate(["Acme Corp", "Beta", "acme labs", "50%_off"]):
        store.insert_tenant(tenant(f"id{i}", name, 1000.0 + i))
    page, total = store.list_tenants(skip=1, limit=2)
    assert total == 4 and [t.id for t in page] == ["id1", "id2"]
    assert [t.id for t in store.list_tenants(q="ACME")[0]] == ["id0", "id2"]
    assert [t.id for t in store.list_tenants(q="id1")[0]] == ["id1"]  # an id matches exactly
    assert store.list_tenants(q="id")[1] == 0
    assert [t.id for t in store.list_tenants(q="%_")[0]] == ["id3"]  # LIKE/regex characters are literal
    assert store.list_tenants(q=".*")[1] == 0
    assert [t.id for t in store.list_tenants(name="beta")[0]] == ["id1"]
    assert store.list_tenants(name="Bet")[1] == 0
    assert [t.id for t in store.list_tenants(ids=["id3", "id0", "zz"])[0]] == ["id0", "id3"]
    assert store.list_tenants(ids=[]) == ([], 0)


def test_update_status_name_and_conditional(store):
    store.insert_tenant(tenant("t1", "One", status="inactive"))
    assert store.update_tenant("t1", updated_ts=2000.0, status="active", expect_status=["suspended"]) is False
    assert store.get_tenant("t1").status == "inactive"
    assert store.update_tenant("t1", updated_ts=2000.0, status="active", expect_status=["inactive"]) is True
    assert store.update_tenant("t1", updated_ts=2001.0, name="Uno") is True
    got = store.get_tenant("t1")
    assert (got.status, got.name, got.updated_ts) == ("active", "Uno", 2001.0)
    assert store.list_tenants(q="uno")[1] == 1 and store.list_tenants(q="one")[1] == 0
    assert store.update_tenant("ghost", updated_ts=1.0, name="x") is False


def test_set_token(store):
    store.insert_tenant(tenant("t1", "One"))
    assert store.set_token("t1", "new-token", "new-jti", 3000.0) is True
    got = store.get_tenant("t1")
    assert (got.tenant_token, got.token_id, got.updated_ts) == ("new-token", "new-jti", 3000.0)
    assert store.set_token("ghost", "x", "y", 1.0) is False


def test_limits_and_delete(store):
    store.insert_tenant(tenant("t1", "One"))
    assert store.get_limit("t1", "max_users") is None
    store.set_limit("t1", "max_users", 5)
    store.set_limit("t1", "max_users", 7)
    store.set_limit("", "max_users", 3)  # the default organization has limits too
    assert store.get_limit("t1", "max_users") == 7 and store.get_limit("", "max_users") == 3
    store.delete_limit("t1", "max_users")
    store.delete_limit("t1", "max_users")
    assert store.get_limit("t1", "max_users") is None
    store.set_limit("t1", "max_users", 1)
    assert store.delete_tenant("t1") is True
    assert store.get_tenant("t1") is None and store.get_limit("t1", "max_users") is None
    assert store.delete_tenant("t1") is False
    assert store.get_limit("", "max_users") == 3
