"""Users, login and tokens."""



def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and authenticator."""
    from useradm import cli, ratelimit
    from useradm.api import internal, login, roles, settings, users
    from useradm.service import UseradmService
    from useradm.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("useradm", store.migrations)
    service = UseradmService(store, ctx.config, ctx.clock, ctx.services,
                             ensure_migrated=lambda: ctx.db.ensure_migrated("useradm", store.migrations))
    ctx.services.useradm = service
    ctx.authenticators["management"] = service.authenticate
    ctx.authorizer.grants_of = service.grants_for
    ctx.startup_hooks.append(cli.bootstrap_hook(ctx))
    cli.register(app, ctx)

    for blp in (login.blp, users.blp, users.blp_v2, roles.blp, roles.blp_v2, settings.blp, internal.blp):
        api.register_blueprint(blp)
    ratelimit.install_login_limits(app, ctx, store)
