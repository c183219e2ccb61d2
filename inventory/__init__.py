"""Device inventory: scoped attributes, groups, tags and search."""


def init_app(app, api, ctx) -> None:
    """Build the service, register its blueprints and migrations."""
    # imported here: importing the package (e.g. for `inventory.service`) must not import Flask
    import functools

    from common.health import add_health_routes
    from inventory.api import devices, internal, management, management_v2
    from inventory.service import InventoryService
    from inventory.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("inventory", store.migrations)
    service = ctx.services.inventory = InventoryService(store, ctx.config, ctx.clock, ctx.services)
    # a role limited to device groups sees a device (a group) by id only in its groups
    ctx.authorizer.checkers["device"] = lambda tenant, device_id, access: service.device_visible(
        tenant, device_id, access.device_groups)
    ctx.authorizer.checkers["group"] = lambda tenant, name, access: (
        access.device_groups is None or name in access.device_groups)
    internal_blp = internal.make_blueprint()
    add_health_routes(internal_blp, lambda: ctx.checks_for("inventory"),
                      lambda: ctx.config["MENDER_HEALTH_TIMEOUT_SECONDS"])
    for blp in (devices.make_blueprint(), management.make_blueprint(), management_v2.make_blueprint(),
                management_v2.make_alpha_blueprint(), internal_blp, internal.make_v2_blueprint()):
        api.register_blueprint(blp)
    for method, rule, handler in devices.DIRECT_ROUTES:  # the upload, without Flask's per-request work
        ctx.direct_routes.add(method, rule, functools.partial(handler, ctx))
