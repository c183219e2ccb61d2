"""The audit log (Mender's auditlogs): who did what to which object, when, from where."""


def init_app(app, api, ctx) -> None:
    """Build the store and the service, register the APIs, the request hooks that write the log,
    the writer of events reported outside requests, and deviceconnect's remote-access hooks."""
    from common import audit
    from auditlogs.api import internal, management, recording
    from auditlogs.service import AuditlogsService
    from auditlogs.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("auditlogs", store.migrations)
    service = AuditlogsService(store, ctx.config, ctx.clock, ctx.services)
    ctx.services.auditlogs = service
    for blp in (management.blp, internal.blp):
        api.register_blueprint(blp)
    recording.install(app, ctx)
    audit.set_sink(service.write_events)
    ctx.startup_hooks.append(service.ensure_retention)

    deviceconnect = getattr(ctx.services, "deviceconnect", None)
    if deviceconnect is not None:
        deviceconnect.hooks.register(remote_access_hook(service))


def remote_access_hook(service):
    """deviceconnect's hook (called before every remote-access action) reporting the action."""
    from common.audit import Actor, AuditEvent, emit

    def hook(action: str, tenant: str, user_id: str, device_id: str, details: dict) -> None:
        change = "; ".join(f"{k}: {v}" for k, v in sorted(details.items()) if v not in (None, ""))
        emit(AuditEvent(action=action, object_type="device", object_id=device_id, change=change,
                        extra={k: v for k, v in details.items() if k in ("path", "session_id")},
                        tenant=tenant, actor=Actor("user", user_id)),
             sink=service.write_events)

    return hook
