"""deviceconfig's wire seam: a device's configuration as the management API prints it."""

from __future__ import annotations

from common.clock import rfc3339_ms
from deviceconfig.model import DeviceConfiguration


def device_configuration(d: DeviceConfiguration) -> dict:
    """Mender's DeviceConfiguration: `configured` and `reported` always (empty objects when
    nothing is set), `deployment_id` and `reported_ts` once there are some."""
    out = {"id": d.device_id, "configured": d.configured, "reported": d.reported}
    if d.deployment_id:
        out["deployment_id"] = d.deployment_id
    if d.reported_ts is not None:
        out["reported_ts"] = rfc3339_ms(d.reported_ts)
    if d.updated_ts is not None:
        out["updated_ts"] = rfc3339_ms(d.updated_ts)
    return out
