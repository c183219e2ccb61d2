"""The JSON shapes of devices and auth sets, as Mender's management API prints them."""

from __future__ import annotations

from common.clock import rfc3339_ms


def render_auth_set(auth_set: dict, identity_data: dict) -> dict:
    return {"id": auth_set["id"], "device_id": auth_set["device_id"], "identity_data": identity_data,
            "pubkey": auth_set["pubkey"],
            "ts": rfc3339_ms(auth_set["ts"]), "status": auth_set["status"]}


def render_device(device: dict) -> dict:
    """A device record with `identity_data` and `auth_sets` (from the service) as the API shows it."""
    out = {"id": device["id"], "identity_data": device["identity_data"], "status": device["status"],
           "decommissioning": bool(device["decommissioning"]),
           "created_ts": rfc3339_ms(device["created_ts"]), "updated_ts": rfc3339_ms(device["updated_ts"]),
           "auth_sets": [render_auth_set(a, device["identity_data"]) for a in device.get("auth_sets", [])]}
    if device.get("check_in_time") is not None:
        out["check_in_time"] = rfc3339_ms(device["check_in_time"])
    return out
