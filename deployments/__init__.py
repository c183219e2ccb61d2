"""Artifacts, releases and deployments."""


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and authenticator."""
    # imported here: importing the package (e.g. for `deployments.service`) must not import Flask
    import functools

    from common.api import Blueprint
    from common.health import add_health_routes
    from deployments import artifacts
    from deployments.service import DeploymentsService
    from deployments.store import make_store

    internal = Blueprint("deployments_internal", __name__, url_prefix="/api/internal/v1/deployments",
                         description="Artifacts, releases and deployments: internal API.")
    add_health_routes(internal, lambda: ctx.checks_for("deployments"),
                      lambda: ctx.config["MENDER_HEALTH_TIMEOUT_SECONDS"])
    api.register_blueprint(internal)

    store = make_store(ctx.db)
    ctx.add_migrations("deployments", store.migrations)
    ctx.services.deployments = DeploymentsService(store, ctx.config, ctx.clock, ctx.services)
    ctx.fleet_gauges.append(("mender_deployments", "Deployments by status (all organizations)", "status",
                             store.deployment_status_counts))
    ctx.fleet_gauges.append(("mender_deployment_devices", "Devices of unfinished deployments by their "
                             "deployment status (all organizations)", "status", store.active_device_status_counts))
    from deployments.api import devices, internal as internal_api, management, rollout
    for blp in (devices.blp, management.blp, rollout.blp, internal_api.blp):
        api.register_blueprint(blp)
    for method, rule, handler in devices.DIRECT_ROUTES:  # the poll, without Flask's per-request work
        ctx.direct_routes.add(method, rule, functools.partial(handler, ctx))

    artifacts.init_app(app, api, ctx)
