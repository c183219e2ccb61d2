"""inventory's wire seam: devices, attributes, saved filters and counts as the API prints them,
built here only."""

from __future__ import annotations

from typing import Any

from common.clock import rfc3339_ms
from inventory.model import Attribute, AttributeCount, Device, Filter


def value(v: Any) -> Any:
    """An attribute value: integral floats as integers (as Go prints float64)."""
    if isinstance(v, list):
        return [value(x) for x in v]
    if isinstance(v, float) and v.is_integer() and abs(v) < 2 ** 63:
        return int(v)
    return v


def attribute(a: Attribute) -> dict:
    out = {"name": a.name, "value": value(a.value), "scope": a.scope}
    if a.description:
        out["description"] = a.description
    if a.timestamp is not None:
        out["timestamp"] = rfc3339_ms(a.timestamp)
    return out


def device(d: Device) -> dict:
    return {"id": d.id, "attributes": [attribute(a) for a in d.attributes], "updated_ts": rfc3339_ms(d.updated_ts)}


def saved_filter(f: Filter) -> dict:
    return {"id": f.id, "name": f.name, "terms": f.terms}


def attribute_count(c: AttributeCount) -> dict:
    return {"name": c.name, "scope": c.scope, "count": c.count}


def statistics(by_status: dict[str, dict[str, int]]) -> dict:
    return {"devices_by_status": by_status}


def group_change(updated: int, matched: int | None = None) -> dict:
    """The answer to a group change: devices changed (and, adding, devices found)."""
    out = {"updated_count": updated}
    if matched is not None:
        out["matched_count"] = matched
    return out
