"""deviceconnect's rules: connection states, operator sessions, recordings, and the remote-access
actions (check-update, send-inventory, file transfer) — plain Python, no Flask, no event loop.

The sockets themselves live in `deviceconnect.relay` (per process, on the event loop); this
service is what they, the HTTP API and the other services call, always through a thread.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable, Iterator

from common.clock import Clock, rfc3339_ms
from common.errors import Conflict, NotFound
from deviceconnect import envelope
from deviceconnect import protocol as p
from deviceconnect.bus import device_subject
from deviceconnect.model import CONNECTED, DISCONNECTED, UNKNOWN, DeviceState, Session
from deviceconnect.store import DeviceconnectStore

log = logging.getLogger(__name__)

# Remote-access actions (Mender's audit log names them so). Every one passes through
# RemoteAccessHooks before it happens: the hook point where roles (the remote-terminal
# permission) and the audit log plug in.
OPEN_TERMINAL = "open_terminal"
CLOSE_TERMINAL = "close_terminal"
OPEN_PORT_FORWARD = "open_portforward"
CLOSE_PORT_FORWARD = "close_portforward"
UPLOAD_FILE = "upload_file"
DOWNLOAD_FILE = "download_file"
CHECK_UPDATE = "check_update"
SEND_INVENTORY = "send_inventory"
PLAYBACK = "playback_session"
ACTIONS = (OPEN_TERMINAL, CLOSE_TERMINAL, OPEN_PORT_FORWARD, CLOSE_PORT_FORWARD, UPLOAD_FILE, DOWNLOAD_FILE,
           CHECK_UPDATE, SEND_INVENTORY, PLAYBACK)

# inventory attributes (scope `system`) that mirror the connection state
INVENTORY_STATUS = "connection_status"
INVENTORY_STATUS_TS = "connection_status_ts"

Hook = Callable[[str, str, str, str, dict], None]


class RemoteAccessHooks:
    """Called with (action, tenant, user id, device id, details) before every remote-access
    action, on a thread (a hook may query the database). A hook that raises Forbidden refuses
    the action: the HTTP call answers 403, a WebSocket session is closed with 1008. `close_*`
    actions cannot be refused (their hooks are for the audit log)."""

    def __init__(self) -> None:
        self._hooks: list[Hook] = []

    def register(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def __call__(self, action: str, tenant: str, user_id: str, device_id: str, **details: Any) -> None:
        for hook in self._hooks:
            hook(action, tenant, user_id, device_id, details)


class DeviceconnectService:
    def __init__(self, store: DeviceconnectStore, config, clock: Clock, services, relay=None):
        self._store = store
        self.config = config
        self._clock = clock
        self._services = services
        self.relay = relay  # deviceconnect.hub.Hub: this process's door to the bus
        self.hooks = RemoteAccessHooks()

    # ------------------------------------------------------------------ connection states
    def get_device(self, tenant: str, device_id: str) -> DeviceState:
        """The device's connection state. A device deviceconnect never saw but devauth knows is
        `unknown`; NotFound otherwise."""
        state = self._store.get_device(tenant, device_id)
        if state is not None:
            return state
        try:
            device = self._services.devauth.get_device(tenant, device_id)
        except NotFound:
            raise NotFound("device not found") from None
        return DeviceState(tenant, device_id, UNKNOWN, device.created_ts, device.updated_ts)

    def provision_device(self, tenant: str, device_id: str) -> None:
        """Internal API: make the device known (state `unknown`); idempotent."""
        self._store.provision_device(tenant, device_id, self._clock.now())

    def device_connected(self, tenant: str, device_id: str, holder: str) -> int:
        """A device socket is open in process `holder`; returns this connection's version."""
        version = self._store.set_connected(tenant, device_id, holder, self._clock.now())
        self._mirror(tenant, device_id, CONNECTED)
        return version

    def device_disconnected(self, tenant: str, device_id: str, version: int) -> bool:
        """The device socket of connection `version` closed. A newer connection (the device came
        back meanwhile, perhaps to another process) keeps the device connected."""
        if not self._store.set_disconnected(tenant, device_id, version, self._clock.now()):
            return False
        self._mirror(tenant, device_id, DISCONNECTED)
        # a reconnection may have been recorded between our update and the inventory write
        state = self._store.get_device(tenant, device_id)
        if state is not None and state.status == CONNECTED:
            self._mirror(tenant, device_id, CONNECTED)
        return True

    def _mirror(self, tenant: str, device_id: str, status: str) -> None:
        try:
            self._services.inventory.set_system_attributes(
                tenant, device_id, {INVENTORY_STATUS: status, INVENTORY_STATUS_TS: rfc3339_ms(self._clock.now())})
        except Exception:  # the connection state is deviceconnect's; inventory only mirrors it
            log.exception("could not mirror the connection state of %s into inventory", device_id)

    def heartbeat(self, holder: str, ttl: float) -> None:
        """Process `holder` is alive for `ttl` more seconds."""
        self._store.beat(holder, self._clock.now() + ttl)

    def release_dead_holders(self) -> int:
        """Mark disconnected the devices of processes that stopped beating (killed, host lost)."""
        now = self._clock.now()
        dead = self._store.expired_holders(now)
        if not dead:
            return 0
        released = self._store.release_holders(dead, now)
        for tenant, device_id in released:
            self._mirror(tenant, device_id, DISCONNECTED)
        self._store.delete_holders(dead)
        return len(released)

    def release_holder(self, holder: str) -> None:
        """A process stops: its devices are disconnected."""
        for tenant, device_id in self._store.release_holders([holder], self._clock.now()):
            self._mirror(tenant, device_id, DISCONNECTED)
        self._store.delete_holders([holder])

    def delete_device(self, tenant: str, device_id: str) -> None:
        """Decommissioning: forget the device and close its connection, wherever it is."""
        state = self._store.get_device(tenant, device_id)
        self._store.delete_device(tenant, device_id)
        if state is not None and state.status == CONNECTED:
            self._close_device(tenant, device_id, "device decommissioned")

    def disconnect_device(self, tenant: str, device_id: str, reason: str) -> None:
        """Close the device's connection if it has one (its tokens were revoked)."""
        state = self._store.get_device(tenant, device_id)
        if state is not None and state.status == CONNECTED:
            self._close_device(tenant, device_id, reason)

    def disconnect_tenant(self, tenant: str, reason: str) -> None:
        """Close every connection of the tenant's devices (all their tokens were revoked)."""
        for device_id in self._store.connected_devices(tenant):
            self._close_device(tenant, device_id, reason)

    def _close_device(self, tenant: str, device_id: str, reason: str) -> None:
        if self.relay is None:
            return
        try:
            self.relay.publish_soon(device_subject(tenant, device_id), envelope.close(p.CLOSE_POLICY, reason))
        except Exception:  # the bus is down: the device's token no longer works, it cannot do more harm
            log.exception("could not tell the holder of %s to close it", device_id)

    def delete_tenant(self, tenant: str) -> None:
        self._store.delete_tenant(tenant)

    # ------------------------------------------------------------------ sessions
    def open_session(self, tenant: str, user_id: str, device_id: str, holder: str = "") -> Session:
        """A new operator session with a connected device, served by process `holder`; NotFound
        (unknown or not connected, as Mender)."""
        state = self._store.get_device(tenant, device_id)
        if state is None or state.status != CONNECTED:
            self.get_device(tenant, device_id)  # NotFound for a device nobody knows
            raise NotFound("device not connected")
        now = self._clock.now()
        session = Session(str(uuid.uuid4()), tenant, user_id, device_id, now,
                          now + self.config["DEVICECONNECT_RECORDING_RETENTION_SECONDS"], holder=holder)
        self._store.insert_session(session)
        return session

    def end_session(self, session: Session, types: list[str], bytes_recorded: int) -> None:
        self._store.end_session(session.tenant_id, session.id, self._clock.now(), types, bytes_recorded)

    def get_session(self, tenant: str, session_id: str) -> Session:
        session = self._store.get_session(tenant, session_id)
        if session is None:
            raise NotFound("session not found")
        return session

    def append_recording(self, session: Session, seq: int, chunk: bytes) -> None:
        self._store.append_recording(session.tenant_id, session.id, seq, chunk, session.expire_ts)

    def recording_chunks(self, tenant: str, session_id: str) -> Iterator[bytes]:
        return self._store.recording_chunks(tenant, session_id)

    def purge_expired(self) -> int:
        return self._store.purge_expired(self._clock.now())

    # ------------------------------------------------------------------ Mender client commands
    def connected_device(self, tenant: str, device_id: str) -> DeviceState:
        """The device's state; NotFound, or Conflict when it is not connected."""
        state = self.get_device(tenant, device_id)
        if state.status != CONNECTED:
            raise Conflict("device not connected")
        return state

    def send_client_command(self, tenant: str, user_id: str, device_id: str, command: str) -> None:
        """`check-update` or `send-inventory`: mender-connect runs `mender <command>` on the
        device. NotFound, Conflict (not connected), Forbidden (a hook refused)."""
        action = {p.CHECK_UPDATE: CHECK_UPDATE, p.SEND_INVENTORY: SEND_INVENTORY}[command]
        self.connected_device(tenant, device_id)
        self.hooks(action, tenant, user_id, device_id)
        # a session of its own, closed at once: mender-connect runs the command, then ends it
        sid = str(uuid.uuid4())
        frames = [
            p.encode(p.ProtoMsg(p.PROTO_MENDERCLIENT, command, sid, {p.PROP_USER_ID: user_id})),
            p.encode(p.ProtoMsg(p.PROTO_CONTROL, p.CLOSE, sid)),
        ]
        self.relay.publish_sync(device_subject(tenant, device_id), envelope.frames(sid, frames, end=True))
