"""Suspending and deleting organizations: logins, user tokens (sessions and personal access
tokens) and devices stop while suspended; deletion removes every record and stored object of
the organization, on both databases and both artifact storages, and nothing of any other."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from tests.helpers import Operator
from tests.tenantadm.conftest import INTERNAL, PASSWORD, create_org
from tests.tenantadm.populate import populate, snapshot, stored_objects
from tests.useradm.conftest import LOGIN, basic


@pytest.fixture
def app(make_app, backend, storage_config):
    # check-in times written in each request, not by the batch writer a second later: snapshots
    # taken before and after an operation must differ only by what the operation did
    return make_app(backend, DEVICEAUTH_CHECK_IN_BATCH_SECONDS="0", **storage_config)


def test_suspension_refuses_users_and_keeps_their_tokens(app, client, org_factory):
    a = org_factory("A")
    pat = a.admin.post("/api/management/v1/useradm/settings/tokens", json={"name": "ci"}).get_data(as_text=True)
    me = "/api/management/v1/useradm/users/me"
    client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "suspended"})
    assert client.post(LOGIN, headers=basic(a.admin.email, PASSWORD)).status_code == 401
    assert client.post(LOGIN, headers=basic(a.admin.email, "wrong-password")).status_code == 401
    assert a.admin.get(me).status_code == 401
    assert client.get(me, headers={"Authorization": f"Bearer {pat}"}).status_code == 401
    assert client.post("/api/internal/v1/useradm/auth/verify", headers={
        "Authorization": f"Bearer {pat}", "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": "/api/management/v1/useradm/users"}).status_code == 401
    client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "active"})
    assert a.admin.get(me).status_code == 200  # session and personal access token work again
    assert client.get(me, headers={"Authorization": f"Bearer {pat}"}).status_code == 200


def test_delete_removes_everything_of_the_organization_only(app, client, operator):
    a, b = create_org(app, client, "A"), create_org(app, client, "B")
    data_a = populate(client, a.admin, a.tenant_token, a.id, "a", app=app)
    populate(client, b.admin, b.tenant_token, b.id, "b", app=app)
    populate(client, operator, "", "", "d", app=app)
    # an object uploaded to a direct-upload link and never completed is the organization's too
    link = a.admin.post("/api/management/v1/deployments/artifacts/directupload").get_json()["uri"]
    if urlsplit(link).hostname in ("localhost", "127.0.0.1") and "/api/devices/" in link:
        parts = urlsplit(link)
        assert client.put(f"{parts.path}?{parts.query}", data=b"partial").status_code == 200
    else:
        assert requests.put(link, data=b"partial", timeout=30).status_code == 200
    assert len(stored_objects(app, f"{a.id}/")) == 2
    kept = {t: snapshot(app, t) for t in ("", b.id)}
    objects_b = stored_objects(app, f"{b.id}/")
    assert snapshot(app, a.id).keys() >= {"devauth_devices", "artifacts"}

    assert client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "suspended"}).status_code == 200
    assert client.delete(f"{INTERNAL}/tenants/{a.id}").status_code == 204
    assert snapshot(app, a.id) == {}, "records of the deleted organization are left"
    assert stored_objects(app, f"{a.id}/") == []
    after = {t: snapshot(app, t) for t in ("", b.id)}
    changed = {(t, table) for t in kept for table in set(kept[t]) | set(after[t])
               if kept[t].get(table) != after[t].get(table)}
    assert not changed, {(t, table): (set(kept[t].get(table, [])) ^ set(after[t].get(table, [])))
                         for t, table in changed}
    assert stored_objects(app, f"{b.id}/") == objects_b
    assert client.post(LOGIN, headers=basic(a.admin.email, PASSWORD)).status_code == 401
    assert data_a.device.auth().status_code == 401
    assert client.get(f"{INTERNAL}/tenants/{a.id}").status_code == 404


# services that keep no record of an organization (none yet): every other service must remove
# an organization's records itself, in `delete_tenant(tenant)`, which tenantadm calls
NO_TENANT_DATA: set[str] = set()


def test_every_service_removes_its_records_of_an_organization(app, tenantadm):
    """A new service cannot be forgotten: tenantadm calls each one's delete_tenant, and the
    deletion test above checks that every table with `tenant_id` ends up empty."""
    names = [n for n, _ in tenantadm.tenant_data_services()]
    assert names[0] == "devauth" and names[-1] == "useradm"  # devices stop first, users go last
    assert set(names) == set(vars(app.extensions["mender"].services)) - {"tenantadm"} - NO_TENANT_DATA


def test_deletion_retried_after_a_failure_converges(app, client, monkeypatch):
    a = create_org(app, client, "A")
    populate(client, a.admin, a.tenant_token, a.id, "a")
    client.put(f"{INTERNAL}/tenants/{a.id}/status", json={"status": "suspended"})
    inventory = app.extensions["mender"].services.inventory
    original = inventory.delete_tenant

    def broken(tenant):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(inventory, "delete_tenant", broken)
    assert client.delete(f"{INTERNAL}/tenants/{a.id}").status_code == 500
    assert client.get(f"{INTERNAL}/tenants/{a.id}").get_json()["status"] == "suspended"  # still there: retry
    monkeypatch.setattr(inventory, "delete_tenant", original)
    assert client.delete(f"{INTERNAL}/tenants/{a.id}").status_code == 204
    assert snapshot(app, a.id) == {}
    assert stored_objects(app, f"{a.id}/") == []


def test_cli(app, runner, client):
    r = runner.invoke(args=["tenantadm", "create-org", "--name", "Acme", "--admin-email", "boss@acme.io",
                            "--max-devices", "3", "--max-users", "2", "--storage-limit", "1000"],
                      input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    tenant_id = r.stdout.split("id: ")[1].split()[0]
    token = r.stdout.split("tenant_token: ")[1].split()[0]
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 200
    r = runner.invoke(args=["tenantadm", "list-orgs"])
    lines = r.stdout.strip().splitlines()
    assert "data directory:" in r.stderr
    assert lines[0].startswith("default\tactive\t-\tDefault organization")
    assert lines[1].startswith(f"{tenant_id}\tactive\t") and lines[1].endswith("\tAcme")
    r = runner.invoke(args=["tenantadm", "show", "acme"])  # by name, any case
    assert r.exit_code == 0 and f"tenant_token: {token}" in r.stdout
    assert "devices: 0 of 3" in r.stdout and "users: 1 of 2" in r.stdout and "storage: 0 of 1000" in r.stdout
    r = runner.invoke(args=["tenantadm", "set-limits", tenant_id, "--max-users", "5"])
    assert r.exit_code == 0 and "users: 1 of 5" in r.stdout
    r = runner.invoke(args=["tenantadm", "rotate-token", tenant_id])
    assert r.exit_code == 0 and r.stdout.strip() not in ("", token)
    r = runner.invoke(args=["tenantadm", "rename", tenant_id, "Acme Inc."])
    assert r.exit_code == 0 and "Acme Inc." in r.stdout
    r = runner.invoke(args=["tenantadm", "suspend", tenant_id])
    assert r.exit_code == 0 and r.stdout.strip() == f"{tenant_id}: suspended"
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 401
    assert runner.invoke(args=["tenantadm", "activate", tenant_id]).stdout.strip() == f"{tenant_id}: active"
    assert client.post(LOGIN, headers=basic("boss@acme.io", PASSWORD)).status_code == 200
    # errors are one line and a non-zero status
    assert runner.invoke(args=["tenantadm", "suspend", "default"]).exit_code == 1
    assert runner.invoke(args=["tenantadm", "show", "nobody"]).exit_code == 1
    r = runner.invoke(args=["tenantadm", "create-org", "--name", "Ünï"])
    assert r.exit_code == 1 and "ASCII" in r.output
    runner.invoke(args=["tenantadm", "create-org", "--name", "Twin"])
    runner.invoke(args=["tenantadm", "create-org", "--name", "twin"])
    r = runner.invoke(args=["tenantadm", "show", "TWIN"])
    assert r.exit_code == 1 and "give the id" in r.output
    # deletion asks first, suspends an active organization, and removes it
    assert runner.invoke(args=["tenantadm", "delete", tenant_id], input="n\n").exit_code == 1
    assert client.get(f"{INTERNAL}/tenants/{tenant_id}").status_code == 200
    r = runner.invoke(args=["tenantadm", "delete", tenant_id, "--yes"])
    assert r.exit_code == 0 and r.stdout.strip() == f"{tenant_id}: deleted"
    assert client.get(f"{INTERNAL}/tenants/{tenant_id}").status_code == 404
    assert runner.invoke(args=["tenantadm", "delete", "default", "--yes"]).exit_code == 1


def test_signup_mode_must_be_known(make_app):
    from common.errors import ConfigError
    with pytest.raises(ConfigError):
        make_app("sqlite", TENANTADM_SIGNUP="sometimes")


def test_download_links_are_bound_to_the_organization(app, client):
    """A link of B's, with A's artifact id put in its place, serves nothing (the signature covers
    the organization and the object), on the filesystem and on S3."""
    a, b = create_org(app, client, "A"), create_org(app, client, "B")
    data_a = populate(client, a.admin, a.tenant_token, a.id, "a")
    data_b = populate(client, b.admin, b.tenant_token, b.id, "b")
    link = b.admin.get(f"/api/management/v1/deployments/artifacts/{data_b.artifact_id}/download").get_json()["uri"]
    guessed = link.replace(data_b.artifact_id, data_a.artifact_id).replace(f"/{b.id}/", f"/{a.id}/")
    assert guessed != link
    if "/api/devices/" in link:  # the server's own link (filesystem)
        parts, forged = urlsplit(link), urlsplit(guessed)
        assert client.get(f"{parts.path}?{parts.query}").status_code == 200
        assert client.get(f"{forged.path}?{forged.query}").status_code == 403
        assert client.get(f"{forged.path}?{forged.query.replace(b.id, a.id)}").status_code == 403
    else:  # presigned by S3 for B's key
        assert requests.get(link, timeout=30).status_code == 200
        assert requests.get(guessed, timeout=30).status_code == 403
    assert data_a.artifact_id not in link
