"""Organizations (tenants): tenant tokens, status, limits, removal with all their data."""


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints, migrations and CLI."""
    from tenantadm import cli
    from tenantadm.api import internal, management
    from tenantadm.service import TenantadmService
    from tenantadm.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("tenantadm", store.migrations)
    # every service's migrations: an organization's creation, limits and removal reach them all
    ctx.services.tenantadm = TenantadmService(store, ctx.config, ctx.clock, ctx.services,
                                              ensure_migrated=ctx.ensure_migrated)
    for blp in (internal.blp, management.blp, management.blp_v2):
        api.register_blueprint(blp)
    cli.register(app, ctx)
