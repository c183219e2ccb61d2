"""Artifacts, releases and deployments."""

from common.api import Blueprint
from common.health import add_health_routes
from deployments import artifacts


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and authenticator."""
    internal = Blueprint("deployments_internal", __name__, url_prefix="/api/internal/v1/deployments",
                         description="Artifacts, releases and deployments: internal API.")
    add_health_routes(internal, lambda: ctx.checks_for("deployments"),
                      lambda: ctx.config["MENDER_HEALTH_TIMEOUT_SECONDS"])
    api.register_blueprint(internal)
    artifacts.init_app(app, api, ctx)
