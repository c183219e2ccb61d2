"""The wire shapes of bulk operations: the selection a request body carries, and the answer."""

from __future__ import annotations

from common.bulk import BulkResult

SELECTION_PROPERTIES = {
    "device_ids": {"type": "array", "items": {"type": "string"}, "description": "These devices."},
    "filters": {"type": "array", "items": {"type": "object"},
                "description": "Devices matching every v2 predicate (`[]`: every device)."},
    "text": {"type": "string", "description": "Devices whose values start with each word (as in filters/search)."},
}
SELECTION_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": SELECTION_PROPERTIES}}}}
BULK_RESULT = ("`{matched_count, updated_count, failed_count, failures: [{id, error}]}` (at most 100 failures "
               "listed).")


def render_bulk(result: BulkResult) -> dict:
    """A bulk operation's outcome as the API answers it."""
    return {"matched_count": result.matched, "updated_count": result.updated, "failed_count": result.failed,
            "failures": [{"id": i, "error": e} for i, e in result.failures]}
