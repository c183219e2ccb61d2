"""Outbound events: webhooks per organization, as Mender's iot-manager."""


def init_app(app, api, ctx) -> None:
    """Build the service and its delivery worker; register its blueprints and migrations."""
    from iotmanager.api import internal, management
    from iotmanager.service import IotManagerService
    from iotmanager.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("iotmanager", store.migrations)
    service = IotManagerService(store, ctx.config, ctx.clock, ctx.services,
                                resolver=ctx.config.get("_WEBHOOK_RESOLVER"), ready=ctx.ensure_migrated)
    ctx.services.iotmanager = service
    ctx.shutdown_hooks.append(service.worker.stop)
    ctx.request_hooks.append(service.worker.start_if_needed)
    for blp in (management.blp, internal.blp):
        api.register_blueprint(blp)
