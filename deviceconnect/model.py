"""deviceconnect's records: a device's connection state, an operator session."""

from __future__ import annotations

from dataclasses import dataclass, field

CONNECTED = "connected"
DISCONNECTED = "disconnected"
UNKNOWN = "unknown"  # known to the server, never connected

# Session types, as Mender's audit log names them
TERMINAL = "terminal"
PORT_FORWARD = "portforward"
FILE_TRANSFER = "filetransfer"


@dataclass(slots=True)
class DeviceState:
    tenant_id: str
    device_id: str
    status: str
    created_ts: float
    updated_ts: float
    version: int = 0  # bumped by every connection, so a late disconnect of an old one changes nothing
    holder: str | None = None  # the process holding the socket while connected


@dataclass(slots=True)
class Session:
    """An operator's connection to a device (one WebSocket, or one file transfer)."""

    id: str
    tenant_id: str
    user_id: str
    device_id: str
    start_ts: float
    expire_ts: float
    end_ts: float | None = None
    types: list[str] = field(default_factory=list)
    bytes_recorded: int = 0
    holder: str = ""  # the process that served it
