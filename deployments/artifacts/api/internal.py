"""Internal API of artifacts: upload on behalf of an organization, its storage limit."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from deployments.artifacts.api import render
from deployments.artifacts.api.management import upload_from_request
from deployments.artifacts.schemas import StorageLimitSchema, StorageLimitUpdateSchema

blp = Blueprint("deployments_artifacts_internal", __name__, url_prefix="/api/internal/v1/deployments",
                description="Artifacts: internal API.")


@blp.route("/tenants/<tenant:tenant_id>/artifacts")
class TenantArtifacts(MethodView):
    @blp.response(201, description="Artifact uploaded; `Location` names it.")
    def post(self, tenant_id):
        """Upload an artifact for an organization (`default`: the default one)."""
        return upload_from_request(tenant_id)


@blp.route("/tenants/<tenant:tenant_id>/limits/storage")
class TenantStorageLimit(MethodView):
    @blp.response(200, StorageLimitSchema, description="Limit (0: unlimited) and usage, in bytes.")
    def get(self, tenant_id):
        """An organization's artifact storage limit and usage"""
        artifacts = services().artifacts
        return render.storage_usage(artifacts.storage_limit(tenant_id), artifacts.storage_usage(tenant_id))

    @blp.arguments(StorageLimitUpdateSchema)
    @blp.response(204, description="Limit set.")
    @blp.alt_response(400, description="Invalid body.")
    def put(self, body, tenant_id):
        """Set an organization's artifact storage limit in bytes (0: unlimited); uploads that would
        pass it are refused with 413"""
        services().artifacts.set_storage_limit(tenant_id, body["limit"])
        return None
