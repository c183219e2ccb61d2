"""The relay, in-process (tests/deviceconnect/asgi.py): sessions between operators and devices,
what each side may not do and the close code it gets, recordings and playback, check-update,
decommissioning. The same scenarios run against real gunicorn workers in test_relay_gunicorn.py."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

import pytest

from deviceconnect import protocol as p
from deviceconnect.relay import Relay
from tests.deviceconnect.asgi import FakeSocket, wait_until
from tests.helpers import Operator, accepted_device

BASE = "/api/management/v1/deviceconnect"


class World:
    def __init__(self, app):
        self.app = app
        self.ctx = app.extensions["mender"]
        self.ctx.ensure_migrated()
        self.client = app.test_client()
        self.operator = Operator.create(app, self.client)
        self.service = self.ctx.services.deviceconnect
        self.hub = self.service.relay
        self.relay = Relay(self.hub)
        self.tasks: list[asyncio.Task] = []

    def device(self):
        return accepted_device(self.app, self.operator, self.client)

    def _run(self, handler, sock, **params):
        task = asyncio.get_running_loop().create_task(handler(sock.scope, sock.receive, sock.send, **params))
        self.tasks.append(task)
        return task

    async def connect_device(self, device) -> FakeSocket:
        sock = FakeSocket({"Authorization": f"Bearer {device.token}"})
        self._run(self.relay.device_connect, sock)
        await wait_until(lambda: sock.accepted or sock.denied, what="the device handshake")
        assert sock.accepted
        await wait_until(lambda: self.service.get_device("", device.id).status == "connected", what="connected")
        return sock

    async def connect_operator(self, device_id: str, headers=None) -> FakeSocket:
        sock = FakeSocket(headers if headers is not None else {"Authorization": f"Bearer {self.operator.token}"})
        self._run(self.relay.operator_connect, sock, id=device_id)
        await wait_until(lambda: sock.accepted or sock.denied, what="the operator handshake")
        return sock

    async def finish(self):
        await self.hub.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
def world(make_app):
    def factory(**config):
        return World(make_app("sqlite", **config))
    return factory


def run(coro):
    asyncio.run(coro)


async def _open_shell(w: World, dev_sock: FakeSocket, op: FakeSocket) -> str:
    op.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, "", {"terminal_width": 80, "terminal_height": 24}))
    msg = await dev_sock.recv()
    assert (msg.proto, msg.typ) == (p.PROTO_SHELL, p.SHELL_NEW)
    assert msg.sid and msg.props["user_id"] == w.operator_id
    assert msg.props["terminal_width"] == 80
    dev_sock.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, msg.sid, {"status": p.Int64(1)}, b"Shell started"))
    started = await op.recv()
    assert (started.typ, started.sid, started.body) == (p.SHELL_NEW, msg.sid, b"Shell started")
    return msg.sid


def test_terminal_session_end_to_end_with_recording_and_playback(world):
    w = world()
    w.operator_id = w.operator.get("/api/management/v1/useradm/users/me").get_json()["id"]
    device = w.device()

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        assert op.accepted
        sid = await _open_shell(w, dev, op)
        op.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {}, b"echo hello\n"))
        cmd = await dev.recv()
        assert (cmd.typ, cmd.sid, cmd.body) == (p.SHELL_DATA, sid, b"echo hello\n")
        for piece in (b"echo hello\r\n", b"hello\r\n", b"$ "):
            dev.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {"status": p.Int64(1)}, piece))
        out = b""
        while not out.endswith(b"$ "):
            out += (await op.recv()).body
        assert out == b"echo hello\r\nhello\r\n$ "
        op.leave()
        stop = await dev.recv()
        assert (stop.proto, stop.typ, stop.sid) == (p.PROTO_SHELL, p.SHELL_STOP, sid)
        close = await dev.recv()
        assert (close.proto, close.typ, close.sid) == (p.PROTO_CONTROL, p.CLOSE, sid)
        await wait_until(lambda: w.service.get_session("", sid).end_ts is not None, what="the session's end")
        session = w.service.get_session("", sid)
        assert session.types == ["terminal"] and session.bytes_recorded == len(out)
        # a late answer from the device to the ended session goes nowhere and harms nothing
        dev.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {}, b"late"))

        pb = FakeSocket({"Authorization": f"Bearer {w.operator.token}"}, query="sleep_ms=0")
        w._run(w.relay.playback, pb, session_id=sid)
        played = b""
        sizes = []
        while True:
            msg = await pb.recv()
            if msg is None:
                break
            if msg.typ == p.SHELL_RESIZE:
                sizes.append((msg.props["terminal_width"], msg.props["terminal_height"]))
            elif msg.typ == p.SHELL_DATA:
                played += msg.body
        assert played == out and sizes == [(80, 24)]
        assert pb.close_code == 1000
        missing = FakeSocket({"Authorization": f"Bearer {w.operator.token}"})
        await w.relay.playback(missing.scope, missing.receive, missing.send, session_id=str(uuid.uuid4()))
        assert missing.denied
        await w.finish()

    run(scenario())


def test_what_a_device_may_not_do_closes_only_its_connection(world):
    w = world()
    cases = [
        (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_CONTROL, p.OPEN, "x", {}, p.pack_body({"versions": [1]}))), 1008),
        (lambda s: s.send_bytes(b"\xc1 not msgpack"), 1007),
        (lambda s: s.send_msg(p.ProtoMsg(0x4242, "x", "s")), 1003),
        (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_SHELL, "rm -rf", "s")), 1003),
        (lambda s: s.send_text("hello"), 1003),
        (lambda s: s.send_bytes(b"\x80" * (64 * 1024 + 1)), 1009),
    ]
    devices = [w.device() for _ in cases]
    bystander = w.device()

    async def scenario():
        other = await w.connect_device(bystander)
        for device, (misbehave, code) in zip(devices, cases):
            sock = await w.connect_device(device)
            misbehave(sock)
            assert await sock.closed() == code, sock.close_reason
            await wait_until(lambda: w.service.get_device("", device.id).status == "disconnected")
        assert not other.close_code and w.service.get_device("", bystander.id).status == "connected"
        # frames for sessions the device does not have are dropped, not fatal
        other.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, "not-a-session", {}, b"x"))
        await asyncio.sleep(0.1)
        assert other.close_code is None
        await w.finish()

    run(scenario())


def test_what_an_operator_may_not_do(world):
    w = world()
    w.operator_id = w.operator.get("/api/management/v1/useradm/users/me").get_json()["id"]
    device = w.device()

    async def scenario():
        dev = await w.connect_device(device)
        for misbehave, code in [
            (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, "someone-elses-session", {}, b"x")), 1008),
            (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_MENDERCLIENT, p.CHECK_UPDATE)), 1003),
            (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_FILE_INFO)), 1003),
            (lambda s: s.send_bytes(b"garbage"), 1007),
            (lambda s: s.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, "", {}, b"x" * 8200)), 1009),
        ]:
            op = await w.connect_operator(device.id)
            misbehave(op)
            assert await op.closed() == code, op.close_reason
            # the device hears the session close, nothing else
            close = await dev.recv()
            assert (close.proto, close.typ) == (p.PROTO_CONTROL, p.CLOSE)
        assert dev.close_code is None
        # refused handshakes: no token, a device token, an unknown or disconnected device
        for headers, device_id in [({}, device.id), ({"Authorization": f"Bearer {device.token}"}, device.id),
                                   (None, str(uuid.uuid4()))]:
            op = await w.connect_operator(device_id, headers)
            assert op.denied and not op.accepted
        await w.finish()

    run(scenario())


def test_cookie_sessions_need_a_same_origin_handshake(world):
    w = world()
    device = w.device()
    cookie = f"JWT={w.operator.token}; csrf=x"

    async def scenario():
        await w.connect_device(device)
        for origin, ok in [(None, False), ("https://evil.example", False), ("http://server.test:8081", False),
                           ("http://server.test:8080", True), ("http://SERVER.test:8080", True)]:
            headers = {"Cookie": cookie, "Host": "server.test:8080"}
            if origin:
                headers["Origin"] = origin
            op = await w.connect_operator(device.id, headers)
            assert op.accepted is ok and op.denied is not ok, origin
            if ok:
                op.leave()
        await w.finish()

    run(scenario())


def test_a_flood_is_slowed_then_closed(world):
    w = world(DEVICECONNECT_MESSAGE_RATE=20, DEVICECONNECT_FLOOD_SECONDS=0.3)
    device, bystander = w.device(), w.device()

    async def scenario():
        other = await w.connect_device(bystander)
        sock = await w.connect_device(device)
        frame = p.encode(p.ProtoMsg(p.PROTO_CONTROL, p.PING, "none"))
        for _ in range(500):
            sock.send_bytes(frame)
        assert await sock.closed(10) == 1008 and sock.close_reason == "message rate limit exceeded"
        # a burst within the rate passes
        for _ in range(10):
            other.send_bytes(frame)
        await asyncio.sleep(0.5)
        assert other.close_code is None
        await w.finish()

    run(scenario())


def test_device_leaving_ends_its_sessions_and_check_update_and_decommission(world):
    w = world()
    w.operator_id = w.operator.get("/api/management/v1/useradm/users/me").get_json()["id"]
    device = w.device()

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        sid = await _open_shell(w, dev, op)
        dev.leave()
        stop = await op.recv()
        assert (stop.typ, stop.props["status"], stop.body) == (p.SHELL_STOP, p.SHELL_ERROR, b"device disconnected")
        assert await op.closed() == 1000
        await wait_until(lambda: w.service.get_device("", device.id).status == "disconnected")

        dev = await w.connect_device(device)
        loop = asyncio.get_running_loop()
        r = await loop.run_in_executor(None, lambda: w.operator.post(f"{BASE}/devices/{device.id}/check-update"))
        assert r.status_code == 202, r.data
        msg = await dev.recv()
        assert (msg.proto, msg.typ, msg.props["user_id"]) == (p.PROTO_MENDERCLIENT, p.CHECK_UPDATE, w.operator_id)
        close = await dev.recv()
        assert (close.proto, close.typ, close.sid) == (p.PROTO_CONTROL, p.CLOSE, msg.sid)
        r = await loop.run_in_executor(None, lambda: w.operator.post(f"{BASE}/devices/{device.id}/send-inventory"))
        assert r.status_code == 202 and (await dev.recv()).typ == p.SEND_INVENTORY

        # a second connection of the same device replaces the first
        second = await w.connect_device(device)
        assert await dev.closed() == 1008 and dev.close_reason == "replaced by a newer connection"
        assert w.service.get_device("", device.id).status == "connected"

        r = await loop.run_in_executor(None, lambda: w.operator.delete(f"/api/management/v2/devauth/devices/{device.id}"))
        assert r.status_code == 204
        assert await second.closed() == 1008 and second.close_reason == "device decommissioned"
        await w.finish()

    run(scenario())


def test_a_revoked_token_closes_the_devices_connection(world):
    """However a device's token is revoked — by its id (management and internal API), or with
    all of its organization's (the internal API, a suspended organization) — its connection
    closes, as for a decommissioned device; it had stayed open until the token's expiry."""
    w = world()
    device, other = w.device(), w.device()

    async def scenario():
        loop = asyncio.get_running_loop()
        dev = await w.connect_device(device)
        jti = json.loads(base64.urlsafe_b64decode(device.token.split(".")[1] + "=="))["jti"]
        r = await loop.run_in_executor(None, lambda: w.operator.delete(f"/api/management/v2/devauth/tokens/{jti}"))
        assert r.status_code == 204, r.data
        assert await dev.closed() == 1008 and dev.close_reason == "device token revoked"
        await wait_until(lambda: w.service.get_device("", device.id).status == "disconnected")

        assert (await loop.run_in_executor(None, device.auth)).status_code == 200  # a new token
        first, second = await w.connect_device(device), await w.connect_device(other)
        r = await loop.run_in_executor(None, lambda: w.client.delete("/api/internal/v1/devauth/tokens?tenant_id=default"))
        assert r.status_code == 204, r.data
        assert await first.closed() == 1008 and first.close_reason == "device token revoked"
        assert await second.closed() == 1008 and second.close_reason == "device token revoked"
        await w.finish()

    run(scenario())


def test_idle_sessions_time_out(world, monkeypatch):
    import deviceconnect.hub as hub_module
    monkeypatch.setattr(hub_module, "SWEEP_SECONDS", 0.1)
    w = world(DEVICECONNECT_SESSION_IDLE_TIMEOUT_SECONDS=0)
    device = w.device()

    async def scenario():
        await w.connect_device(device)
        op = await w.connect_operator(device.id)
        assert await op.closed(5) == 1000 and op.close_reason == "session idle timeout"
        await w.finish()

    run(scenario())


def test_the_recording_limit_ends_the_session_and_hooks_see_every_action(world):
    w = world(DEVICECONNECT_RECORDING_LIMIT=1000)
    w.operator_id = w.operator.get("/api/management/v1/useradm/users/me").get_json()["id"]
    device = w.device()
    actions = []
    w.service.hooks.register(lambda action, tenant, user, dev, details: actions.append((action, dev == device.id)))

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        sid = await _open_shell(w, dev, op)
        dev.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {}, b"a" * 600))
        assert (await op.recv()).body == b"a" * 600
        dev.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {}, b"b" * 600))  # past the limit
        over = await op.recv()
        assert (over.typ, over.props["status"], over.body) == (p.SHELL_DATA, p.SHELL_ERROR, b"session byte limit exceeded")
        assert await op.closed() == 1008
        stop, close = await dev.recv(), await dev.recv()
        assert (stop.typ, stop.sid, close.typ) == (p.SHELL_STOP, sid, p.CLOSE)
        await wait_until(lambda: w.service.get_session("", sid).end_ts is not None)
        assert w.service.get_session("", sid).bytes_recorded == 600
        # a port-forwarding session asks the hooks too
        op = await w.connect_operator(device.id)
        op.send_msg(p.ProtoMsg(p.PROTO_PORTFORWARD, "new", "", {"connection_id": "c1"},
                               p.pack_body({"remote_host": "127.0.0.1", "remote_port": 22, "protocol": "tcp"})))
        assert (await dev.recv()).typ == "new"
        op.leave()
        assert (await dev.recv()).typ == p.CLOSE
        await wait_until(lambda: ("close_portforward", True) in actions)
        await w.finish()

    run(scenario())
    assert actions == [("open_terminal", True), ("close_terminal", True), ("open_portforward", True),
                       ("close_portforward", True)]


def test_a_hook_refusing_a_terminal_closes_the_session(world):
    from common.errors import Forbidden
    w = world()
    device = w.device()

    def refuse(action, tenant, user, dev, details):
        if action == "open_terminal":
            raise Forbidden("the remote terminal permission is required")

    w.service.hooks.register(refuse)

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        op.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, "", {}))
        assert await op.closed() == 1008 and op.close_reason == "the remote terminal permission is required"
        close = await dev.recv()  # the device never saw a shell request, only the session's end
        assert (close.proto, close.typ) == (p.PROTO_CONTROL, p.CLOSE)
        await w.finish()

    run(scenario())


def test_a_permission_taken_away_ends_the_operators_session(world, monkeypatch):
    """The session is re-decided by the permission table as the token is re-checked: an operator
    whose ConnectToDevices was taken away (a role changed, the device moved out of the groups a
    limited role reaches) loses the open session, as the next request would be refused."""
    import deviceconnect.hub as hub_module
    monkeypatch.setattr(hub_module, "SWEEP_SECONDS", 0.1)
    w = world(DEVICECONNECT_OPERATOR_RECHECK_SECONDS=0.2)
    lab = w.device()
    w.operator.put(f"/api/management/v1/inventory/devices/{lab.id}/group", json={"group": "lab"})
    role = {"name": "lab-terminal", "permission_sets_with_scope": [
        {"name": "ConnectToDevices", "scope": {"type": "DeviceGroups", "value": ["lab"]}}]}
    assert w.operator.post("/api/management/v2/useradm/roles", json=role).status_code == 201
    troubleshooter = Operator.create(w.app, w.client, roles=["RBAC_ROLE_REMOTE_TERMINAL"])
    limited = Operator.create(w.app, w.client, roles=["lab-terminal"])
    users = {u["email"]: u["id"] for u in w.operator.get("/api/management/v1/useradm/users").get_json()}

    async def call(fn):
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def scenario():
        dev = await w.connect_device(lab)
        by_role = await w.connect_operator(lab.id, {"Authorization": f"Bearer {troubleshooter.token}"})
        by_group = await w.connect_operator(lab.id, {"Authorization": f"Bearer {limited.token}"})
        assert by_role.accepted and by_group.accepted
        r = await call(lambda: w.operator.put(f"/api/management/v1/useradm/users/{users[troubleshooter.email]}",
                                              json={"roles": ["RBAC_ROLE_OBSERVER"]}))
        assert r.status_code == 204, r.data
        assert await by_role.closed(5) == 1008
        assert by_group.close_code is None  # still allowed
        r = await call(lambda: w.operator.put(f"/api/management/v1/inventory/devices/{lab.id}/group",
                                              json={"group": "elsewhere"}))
        assert r.status_code == 204, r.data
        assert await by_group.closed(5) == 1008
        await w.finish()

    run(scenario())


def test_a_logout_ends_the_operators_session_and_an_expired_device_token_its_connection(world, monkeypatch):
    import deviceconnect.hub as hub_module
    monkeypatch.setattr(hub_module, "SWEEP_SECONDS", 0.1)
    w = world(DEVICEAUTH_JWT_EXP_TIMEOUT=3, DEVICECONNECT_OPERATOR_RECHECK_SECONDS=0.2)
    device = w.device()

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        loop = asyncio.get_running_loop()
        r = await loop.run_in_executor(None, lambda: w.operator.post("/api/management/v1/useradm/auth/logout"))
        assert r.status_code == 202, r.data
        assert await op.closed(5) == 1008 and op.close_reason == "token no longer valid"
        assert await dev.closed(10) == 1008 and dev.close_reason == "token expired"
        await w.finish()

    run(scenario())


def test_a_playback_is_re_decided_as_a_session_is(world, monkeypatch):
    """A recording's playback streams for as long as the recording lasts (sleep_ms up to 10 s
    between messages): an operator whose token was revoked or whose ConnectToDevices was taken
    away loses it at the next re-check (1008), as an operator session does; one still allowed
    keeps playing."""
    import deviceconnect.hub as hub_module
    monkeypatch.setattr(hub_module, "SWEEP_SECONDS", 0.1)
    w = world(DEVICECONNECT_OPERATOR_RECHECK_SECONDS=0.2)
    w.operator_id = w.operator.get("/api/management/v1/useradm/users/me").get_json()["id"]
    device = w.device()
    troubleshooter = Operator.create(w.app, w.client, roles=["RBAC_ROLE_REMOTE_TERMINAL"])
    leaving = Operator.create(w.app, w.client, roles=["RBAC_ROLE_REMOTE_TERMINAL"])
    staying = Operator.create(w.app, w.client, roles=["RBAC_ROLE_REMOTE_TERMINAL"])
    users = {u["email"]: u["id"] for u in w.operator.get("/api/management/v1/useradm/users").get_json()}

    async def call(fn):
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def scenario():
        dev = await w.connect_device(device)
        op = await w.connect_operator(device.id)
        sid = await _open_shell(w, dev, op)
        for n in range(20):
            dev.send_msg(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, {"status": p.Int64(1)}, b"line %d\r\n" % n))
            await op.recv()
        op.leave()
        await wait_until(lambda: w.service.get_session("", sid).end_ts is not None, what="the session's end")

        def play(who):
            sock = FakeSocket({"Authorization": f"Bearer {who.token}"}, query="sleep_ms=10000")
            w._run(w.relay.playback, sock, session_id=sid)
            return sock

        by_role, by_token, kept = play(troubleshooter), play(leaving), play(staying)
        for sock in (by_role, by_token, kept):
            assert await sock.recv() is not None  # streaming, 10 s to the next message
        r = await call(lambda: w.operator.put(f"/api/management/v1/useradm/users/{users[troubleshooter.email]}",
                                              json={"roles": ["RBAC_ROLE_OBSERVER"]}))
        assert r.status_code == 204, r.data
        r = await call(lambda: leaving.post("/api/management/v1/useradm/auth/logout"))
        assert r.status_code == 202, r.data
        assert await by_role.closed(5) == 1008 and by_role.close_reason.startswith("forbidden")
        assert await by_token.closed(5) == 1008 and by_token.close_reason == "token no longer valid"
        assert kept.close_code is None
        assert len(w.hub.playbacks) == 1
        await w.finish()

    run(scenario())
