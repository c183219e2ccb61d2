"""Internal API: artifact upload on behalf of a tenant."""

from __future__ import annotations

from flask.views import MethodView

from common.api import Blueprint
from common.errors import BadRequest
from common.identity import tenant_in_path
from deployments.artifacts.storage import _TENANT
from deployments.artifacts.api.management import upload_from_request

blp = Blueprint("deployments_artifacts_internal", __name__, url_prefix="/api/internal/v1/deployments",
                description="Artifacts: internal API.")


@blp.route("/tenants/<tenant_id>/artifacts")
class TenantArtifacts(MethodView):
    @blp.response(201, description="Artifact uploaded; `Location` names it.")
    def post(self, tenant_id):
        """Upload an artifact for a tenant (`default`: the default tenant)."""
        tenant = tenant_in_path(tenant_id)
        if tenant and not _TENANT.fullmatch(tenant):
            raise BadRequest("tenant id: letters, digits, '_' and '-' only")
        return upload_from_request(tenant)
