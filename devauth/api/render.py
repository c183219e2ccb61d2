"""devauth's wire seam: devices and auth sets as Mender's management API prints them, built here only."""

from __future__ import annotations

from common.clock import rfc3339_ms
from devauth.model import AuthSet, Device, PreauthorizeResult


def auth_set(a: AuthSet, identity_data: dict) -> dict:
    return {"id": a.id, "device_id": a.device_id, "identity_data": identity_data, "pubkey": a.pubkey,
            "ts": rfc3339_ms(a.ts), "status": a.status}


def device(d: Device) -> dict:
    """A device with its auth sets (as the service attaches them)."""
    identity = d.identity
    out = {"id": d.id, "identity_data": identity, "status": d.status, "decommissioning": bool(d.decommissioning),
           "created_ts": rfc3339_ms(d.created_ts), "updated_ts": rfc3339_ms(d.updated_ts),
           "auth_sets": [auth_set(a, identity) for a in d.auth_sets]}
    if d.check_in_time is not None:
        out["check_in_time"] = rfc3339_ms(d.check_in_time)
    return out


def preauthorize_result(r: PreauthorizeResult) -> dict:
    out = {"row": r.row, "status": r.status}
    if r.device_id is not None:
        out["device_id"] = r.device_id
    if r.reason is not None:
        out["reason"] = r.reason
    return out


def bulk_summary(results: list[PreauthorizeResult]) -> dict:
    """A bulk preauthorization's answer: counts per outcome, then every row's result."""
    summary = {s: sum(1 for r in results if r.status == s) for s in ("created", "conflict", "invalid")}
    return {**summary, "results": [preauthorize_result(r) for r in results]}
