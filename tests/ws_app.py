"""The server's ASGI app plus test-only websocket routes (a real gunicorn serves it in the
websocket tests and in bench/websockets_idle.py): `/api/devices/v1/test/echo` echoes every
message on the public listener; `/api/internal/v1/test/echo` is the same on the internal one;
`/api/devices/v1/test/auth` refuses unless a device token is given (run_sync, deny_websocket)."""

from common.app import create_app
from common.asgi import AsgiFront, deny_websocket, run_sync

flask_app = create_app()
ctx = flask_app.extensions["mender"]


async def echo(scope, receive, send, **params):
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def authenticated(scope, receive, send, **params):
    from common.app import ctx as current_ctx
    from common.errors import ServiceError
    headers = dict(scope["headers"])
    token = headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ")
    try:
        identity = await run_sync(lambda: current_ctx().authenticators["devices"](token))
    except ServiceError:
        await deny_websocket(scope, receive, send, 401, "unauthorized")
        return
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": identity.subject})
    await send({"type": "websocket.close", "code": 1000})


async def with_param(scope, receive, send, device_id):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": device_id})
    await send({"type": "websocket.close", "code": 1000})


ctx.add_websocket_route("/api/devices/v1/test/echo", echo)
ctx.add_websocket_route("/api/internal/v1/test/echo", echo)
ctx.add_websocket_route("/api/devices/v1/test/auth", authenticated)
ctx.add_websocket_route("/api/management/v1/test/devices/<device_id>/connect", with_param)
app = AsgiFront(flask_app)
