"""tenantadm fixtures: organizations with a logged-in first user, and the paths of its APIs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.helpers import Operator

INTERNAL = "/api/internal/v1/tenantadm"
MGMT_V1 = "/api/management/v1/tenantadm"
MGMT_V2 = "/api/management/v2/tenantadm"
PASSWORD = "org-admin-password"


@dataclass
class Org:
    id: str
    name: str
    tenant_token: str
    admin: Operator


def create_org(app, client, name: str | None = None, **kwargs) -> Org:
    """An organization made through the service, with a first user logged in over HTTP."""
    name = name or f"Org {uuid.uuid4().hex[:6]}"
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with app.app_context():
        tenant = app.extensions["mender"].services.tenantadm.create_tenant(
            name, admin_email=email, admin_password=PASSWORD, **kwargs)
    admin = Operator(client, email, PASSWORD)
    admin.login()
    return Org(tenant.id, tenant.name, tenant.tenant_token, admin)


@pytest.fixture
def org_factory(app, client):
    return lambda name=None, **kw: create_org(app, client, name, **kw)


@pytest.fixture
def tenantadm(app):
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    return ctx.services.tenantadm


# the artifact storages (filesystem, real S3) of the artifacts tests, for the deletion tests
from tests.artifacts.conftest import radosgw, storage, storage_config  # noqa: E402,F401
