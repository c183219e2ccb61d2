"""The relay between real processes: two gunicorn workers on the embedded bus (a session whose
operator and device sockets are held by different workers), two gunicorn instances sharing one
database over NATS, and the refusals as a real client sees them (HTTP status of a refused
handshake, close codes)."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import time

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from websockets.exceptions import ConnectionClosed, InvalidStatus

from deviceconnect import protocol as p
from tests.deviceconnect.live import (Mgmt, create_user, device_socket, echo_exchange, holders, operator_socket, recv,
                                      send, session_holder)
from tests.deviceconnect.nats import NatsServer
from tests.helpers import GunicornServer, free_port


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("dc-workers"))
    create_user(data_dir)
    with GunicornServer(data_dir, workers=2) as server:
        yield server, Mgmt(server.url), os.path.join(data_dir, "mender.db")


def test_sessions_across_two_workers_on_the_embedded_bus(two_workers):
    server, mgmt, db = two_workers
    devices = [mgmt.device() for _ in range(4)]
    sockets = {}
    with contextlib.ExitStack() as stack:
        deadline = time.monotonic() + 60
        # connect devices until both workers hold some (which worker accepts is the kernel's choice)
        while len(set(holders(db).values())) < 2 and time.monotonic() < deadline:
            dev = devices.pop() if devices else mgmt.device()
            sockets[dev.id] = stack.enter_context(device_socket(server.url, dev.token))
            while mgmt.state(dev.id) != "connected":
                time.sleep(0.05)
        held = holders(db)
        assert len(set(held.values())) == 2, held
        crossed = 0
        for attempt in range(40):
            device_id = list(sockets)[attempt % len(sockets)]
            with operator_socket(server.url, mgmt.token, device_id) as op:
                sid = echo_exchange(sockets[device_id], op, b"ping-%d" % attempt)
                crossed += session_holder(db, sid) != held[device_id]
            # the session's end reaches the device: its shell stops, the session closes
            stop, close = recv(sockets[device_id]), recv(sockets[device_id])
            assert (stop.typ, stop.body, close.proto, close.typ) == (p.SHELL_STOP, b"user disconnected",
                                                                     p.PROTO_CONTROL, p.CLOSE)
            if crossed >= 2 and attempt >= 3:
                break
        assert crossed >= 1, "no session had its operator and its device in different workers"


def test_refused_handshakes_and_close_codes_as_a_client_sees_them(two_workers):
    server, mgmt, _ = two_workers
    dev = mgmt.device()
    with pytest.raises(InvalidStatus) as exc:
        device_socket(server.url, "not-a-token")
    assert exc.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as exc:
        operator_socket(server.url, mgmt.token, dev.id)  # not connected
    assert exc.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as exc:
        operator_socket(server.url, dev.token, dev.id)  # a device is not an operator
    assert exc.value.response.status_code == 401
    with device_socket(server.url, dev.token) as ws:
        while mgmt.state(dev.id) != "connected":
            time.sleep(0.05)
        ws.send(b"\xc1garbage")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1007
    deadline = time.monotonic() + 10
    while mgmt.state(dev.id) != "disconnected" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mgmt.state(dev.id) == "disconnected"
    with device_socket(server.url, dev.token) as ws:
        ws.send(b"\x80" * (64 * 1024 + 1))  # past gunicorn's websocket_max_message_size
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009
    # check-update reaches a connected device through whichever worker answers the HTTP call
    with device_socket(server.url, dev.token) as ws:
        while mgmt.state(dev.id) != "connected":
            time.sleep(0.05)
        r = mgmt.post(f"/api/management/v1/deviceconnect/devices/{dev.id}/check-update")
        assert r.status_code == 202, r.text
        assert recv(ws).typ == p.CHECK_UPDATE


def _ed25519_pem(path: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return path


def test_two_instances_sharing_a_database_over_nats(tmp_path):
    nats = NatsServer(str(tmp_path)).start()
    shared = tmp_path / "shared"
    shared.mkdir()
    env = {"DEVICECONNECT_NATS_URI": nats.url, "MENDER_DB_URL": f"sqlite:///{shared / 'mender.db'}",
           "DEVICEAUTH_SERVER_PRIV_KEY_PATH": _ed25519_pem(str(shared / "devauth.pem")),
           "USERADM_SERVER_PRIV_KEY_PATH": _ed25519_pem(str(shared / "useradm.pem"))}
    a_dir, b_dir = str(tmp_path / "a"), str(tmp_path / "b")
    create_user(a_dir, env)
    a = GunicornServer(a_dir, env=env, workers=1)
    b = GunicornServer(b_dir, env=env, workers=1)
    try:
        a.start()
        b.start()
        mgmt_a, mgmt_b = Mgmt(a.url), Mgmt(b.url)
        dev = mgmt_a.device()
        with device_socket(a.url, dev.token) as dws:  # the device on instance A
            deadline = time.monotonic() + 10
            while mgmt_b.state(dev.id) != "connected" and time.monotonic() < deadline:
                time.sleep(0.05)
            with operator_socket(b.url, mgmt_b.token, dev.id) as op:  # the operator on instance B
                sid = echo_exchange(dws, op, b"over nats")
                assert session_holder(str(shared / "mender.db"), sid) != holders(str(shared / "mender.db"))[dev.id]
                # the device leaves: the operator on the other instance hears it and the session ends
                dws.close()
                stop = recv(op)
                assert (stop.typ, stop.body) == (p.SHELL_STOP, b"device disconnected")
                with pytest.raises(ConnectionClosed) as closed:
                    op.recv(timeout=10)
                assert closed.value.rcvd.code == 1000
        # decommissioning on B closes the device's socket on A
        with device_socket(a.url, dev.token) as dws:
            deadline = time.monotonic() + 10
            while mgmt_b.state(dev.id) != "connected" and time.monotonic() < deadline:
                time.sleep(0.05)
            r = mgmt_b.http.delete(f"{b.url}/api/management/v2/devauth/devices/{dev.id}", timeout=10)
            assert r.status_code == 204, r.text
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    dws.recv(timeout=10)
            assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "device decommissioned"
    finally:
        b.stop()
        a.stop()
        nats.stop()


def _raw_handshake(url: str, token: str) -> socket.socket:
    """A websocket client that completes the handshake and then never reads again (a device that
    lost power; no FIN ever comes)."""
    host, port = url.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /api/devices/v1/deviceconnect/connect HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n").encode())
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return sock


def test_pings_keep_live_devices_and_drop_silent_ones(tmp_path):
    data_dir = str(tmp_path / "data")
    create_user(data_dir)
    with GunicornServer(data_dir, workers=1, env={"DEVICECONNECT_PING_INTERVAL_SECONDS": "1"}) as server:
        mgmt = Mgmt(server.url)
        live, silent = mgmt.device(), mgmt.device()
        with device_socket(server.url, live.token) as ws:
            raw = _raw_handshake(server.url, silent.token)
            try:
                deadline = time.monotonic() + 10
                while mgmt.state(silent.id) != "connected" and time.monotonic() < deadline:
                    time.sleep(0.05)
                deadline = time.monotonic() + 30
                while mgmt.state(silent.id) != "disconnected" and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert mgmt.state(silent.id) == "disconnected"
                assert mgmt.state(live.id) == "connected"  # it answered every ping
                ws.send(p.encode(p.ProtoMsg(p.PROTO_CONTROL, p.PING, "none")))  # and still talks
                time.sleep(0.2)
                assert mgmt.state(live.id) == "connected"
            finally:
                raw.close()


def test_without_its_nats_server_deviceconnect_answers_503_and_the_rest_works(tmp_path):
    data_dir = str(tmp_path / "data")
    create_user(data_dir)
    with GunicornServer(data_dir, workers=1, env={"DEVICECONNECT_NATS_URI": f"nats://127.0.0.1:{free_port()}"}) as server:
        mgmt = Mgmt(server.url)
        dev = mgmt.device()  # devices still authenticate: only remote access is down
        with pytest.raises(InvalidStatus) as exc:
            device_socket(server.url, dev.token)
        assert exc.value.response.status_code == 503
        r = requests.get(server.internal_url + "/api/internal/v1/deviceconnect/health", timeout=30)
        assert r.status_code == 503
        assert requests.get(server.internal_url + "/api/internal/v1/inventory/health", timeout=10).status_code == 204


def _playback_socket(base: str, token: str, session_id: str, sleep_ms: int):
    from websockets.sync.client import connect
    from tests.deviceconnect.live import ws_url
    return connect(ws_url(base, f"/api/management/v1/deviceconnect/sessions/{session_id}/playback?sleep_ms={sleep_ms}"),
                   additional_headers={"Authorization": f"Bearer {token}"}, max_size=None)


def test_operator_sockets_per_user_are_limited_and_a_playback_ends_with_its_token(tmp_path):
    """A user holds at most DEVICECONNECT_MAX_SESSIONS_PER_USER operator websockets (sessions and
    playbacks) per worker: one more is refused before the upgrade with 429 and a JSON error, a
    closed one frees its place, another user is not affected. A playback whose token is revoked
    (logout) is closed with 1008 at the next re-check, between two messages 10 s apart."""
    data_dir = str(tmp_path / "data")
    create_user(data_dir)
    env = {"DEVICECONNECT_MAX_SESSIONS_PER_USER": "2", "DEVICECONNECT_OPERATOR_RECHECK_SECONDS": "1"}
    with GunicornServer(data_dir, workers=1, env=env) as server:
        mgmt = Mgmt(server.url)
        dev = mgmt.device()
        with device_socket(server.url, dev.token) as dws:
            while mgmt.state(dev.id) != "connected":
                time.sleep(0.05)
            with operator_socket(server.url, mgmt.token, dev.id) as op:
                sid = echo_exchange(dws, op, b"a line to play back")
            recv(dws), recv(dws)  # the session's end reaches the device
            with contextlib.ExitStack() as stack:
                stack.enter_context(operator_socket(server.url, mgmt.token, dev.id))
                second = stack.enter_context(_playback_socket(server.url, mgmt.token, sid, 10_000))
                second.recv(timeout=10)  # playing: the next message in 10 s
                for refused in (lambda: operator_socket(server.url, mgmt.token, dev.id),
                                lambda: _playback_socket(server.url, mgmt.token, sid, 0)):
                    with pytest.raises(InvalidStatus) as exc:
                        refused()
                    response = exc.value.response
                    assert response.status_code == 429
                    body = __import__("json").loads(response.body)
                    assert "DEVICECONNECT_MAX_SESSIONS_PER_USER" in body["error"] and body["request_id"]
                other = Mgmt(server.url)  # another login of the same user: the same user
                with pytest.raises(InvalidStatus) as exc:
                    operator_socket(server.url, other.token, dev.id)
                assert exc.value.response.status_code == 429
                r = mgmt.post("/api/management/v1/useradm/users", json={"email": "second@example.com",
                                                                        "password": "another-long-password"})
                assert r.status_code == 201, r.text
                with operator_socket(server.url, Mgmt(server.url, "second@example.com", "another-long-password").token,
                                     dev.id):
                    pass  # another user is not affected
                second.close()  # its place is free
                deadline = time.monotonic() + 10
                while True:  # the server counts it free once its handler returned
                    try:
                        playback = stack.enter_context(_playback_socket(server.url, other.token, sid, 10_000))
                        break
                    except InvalidStatus as exc:
                        assert exc.value.response.status_code == 429 and time.monotonic() < deadline
                        time.sleep(0.1)
                playback.recv(timeout=10)  # the first message; the next one in 10 s
                r = other.post("/api/management/v1/useradm/auth/logout")
                assert r.status_code == 202, r.text
                with pytest.raises(ConnectionClosed) as closed:
                    playback.recv(timeout=30)  # the sweeper runs every 5 s
                assert closed.value.rcvd.code == 1008
