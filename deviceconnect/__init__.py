"""Remote access to devices (Mender's deviceconnect): the devices' websockets, operator sessions
relayed to them across processes, file transfer, Mender client commands, recorded sessions."""

DEVICE_CONNECT = "/api/devices/v1/deviceconnect/connect"
OPERATOR_CONNECT = "/api/management/v1/deviceconnect/devices/<id>/connect"
PLAYBACK = "/api/management/v1/deviceconnect/sessions/<session_id>/playback"
UPLOAD_ENDPOINT = ("PUT", "deviceconnect_management.Upload")
MULTIPART_OVERHEAD = 1024 * 1024  # form fields and part headers around the file


def init_app(app, api, ctx) -> None:
    """Build the store, the service and this process's hub; register the HTTP blueprints and the
    websocket routes."""
    # imported here: importing the package (e.g. for `deviceconnect.service`) must not import the web stack
    from deviceconnect.api import internal, management
    from deviceconnect.hub import Hub
    from deviceconnect.relay import Relay
    from deviceconnect.service import DeviceconnectService
    from deviceconnect.store import make_store

    store = make_store(ctx.db)
    ctx.add_migrations("deviceconnect", store.migrations)
    service = DeviceconnectService(store, ctx.config, ctx.clock, ctx.services)
    hub = Hub(ctx, service)
    service.relay = hub
    ctx.async_shutdown_hooks.append(hub.stop)
    ctx.services.deviceconnect = service
    ctx.health_checks.setdefault("deviceconnect", []).append(lambda timeout: hub.check())
    for blp in (management.blp, internal.blp):
        api.register_blueprint(blp)
    ctx.body_limits[UPLOAD_ENDPOINT] = int(ctx.config["DEVICECONNECT_FILE_TRANSFER_MAX_SIZE"]) + MULTIPART_OVERHEAD
    relay = Relay(hub)
    ctx.add_websocket_route(DEVICE_CONNECT, relay.device_connect)
    ctx.add_websocket_route(OPERATOR_CONNECT, relay.operator_connect)
    ctx.add_websocket_route(PLAYBACK, relay.playback)
    _document_websockets(api)


def _document_websockets(api) -> None:
    """The websocket endpoints in the OpenAPI document (they are not Flask routes)."""
    from werkzeug.routing import Rule

    def document(rule: str, summary: str, tag: str, query: list[dict] | None = None) -> None:
        responses = {"101": {"description": "Switching to the websocket protocol (Mender's ProtoMsg, msgpack)."},
                     "400": {"description": "Bad request."}, "401": {"description": "Unauthorized."},
                     "404": {"description": "Not found, or the device is not connected."}}
        operations = {"get": {"tags": [tag], "summary": summary, "responses": responses, "parameters": list(query or [])}}
        api.document_later(lambda: api.spec.path(rule=Rule(rule), operations=operations))

    document(DEVICE_CONNECT, "Connect the device (mender-connect keeps this websocket open)", "deviceconnect_devices")
    document(OPERATOR_CONNECT, "Open a session with the device (terminal, port forwarding, file transfer)",
             "deviceconnect_management")
    document(PLAYBACK, "Play back a recorded terminal session", "deviceconnect_management",
             [{"in": "query", "name": "sleep_ms", "required": False,
               "schema": {"type": "integer", "minimum": 0, "maximum": 10000}}])
