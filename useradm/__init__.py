"""Users, login and tokens."""

from common.api import Blueprint
from common.health import add_health_routes


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and authenticator."""
    from useradm.api import login
    from useradm.service import UseradmService
    from useradm.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("useradm", store.migrations)
    service = UseradmService(store, ctx.config, ctx.clock, ctx.services,
                             ensure_migrated=lambda: ctx.db.ensure_migrated("useradm", store.migrations))
    ctx.services.useradm = service
    ctx.authenticators["management"] = service.authenticate

    internal = Blueprint("useradm_internal", __name__, url_prefix="/api/internal/v1/useradm",
                         description="Users, login and tokens: internal API.")
    add_health_routes(internal, lambda: ctx.checks_for("useradm"),
                      lambda: ctx.config["MENDER_HEALTH_TIMEOUT_SECONDS"])
    api.register_blueprint(login.blp)
    api.register_blueprint(internal)
