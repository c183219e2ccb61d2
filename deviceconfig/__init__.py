"""Device configuration (Mender's deviceconfig): a key/value configuration per device, set by
operators, deployed to the device as a generated `mender-configure` artifact and reported back."""

from deviceconfig.service import DeviceconfigService
from deviceconfig.store import make_store


def init_app(app, api, ctx) -> None:
    """Build the store and the service; register the blueprints."""
    from deviceconfig.api import devices, internal, management

    store = make_store(ctx.db)
    ctx.add_migrations("deviceconfig", store.migrations)
    ctx.services.deviceconfig = DeviceconfigService(store, ctx.config, ctx.clock, ctx.services)
    for blp in (management.blp, devices.blp, internal.blp):
        api.register_blueprint(blp)
