"""Device authentication and admission."""


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and authenticator."""
    import functools

    from devauth.api import devices, internal, management
    from devauth.cli import register_cli
    from devauth.service import DevauthService
    from devauth.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("devauth", store.migrations)
    ctx.services.devauth = DevauthService(store, ctx.config, ctx.clock, ctx.services)
    ctx.shutdown_hooks.append(ctx.services.devauth.check_ins.close)
    ctx.authenticators["devices"] = ctx.services.devauth.authenticate
    ctx.fleet_gauges.append(("mender_devices", "Devices by authentication status (all organizations)",
                             "status", store.status_counts))
    for blp in (devices.blp, management.blp, internal.blp):
        api.register_blueprint(blp)
    for method, rule, handler in devices.DIRECT_ROUTES:  # the signed auth request, without Flask's per-request work
        ctx.direct_routes.add(method, rule, functools.partial(handler, ctx))
    register_cli(app, ctx)
