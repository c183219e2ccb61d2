"""Bulk preauthorization files: CSV or JSON in, one row per device (no HTTP here).

JSON: an array of objects `{"identity_data": {...}, "pubkey": "<PEM>"}`.
CSV: a header row; a `pubkey` column, and either an `identity_data` column holding a JSON
object or any number of other columns, whose non-empty cells become the identity attributes
(string values), e.g. `mac,sn,pubkey`.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from common.jsonbody import parse_json_bytes
from common.errors import BadRequest

CSV, JSON = "csv", "json"
MAX_CSV_FIELD = 64 * 1024


def detect_format(data: bytes, filename: str = "", content_type: str = "") -> str:
    """CSV or JSON from the content type, the file name, else the first non-blank byte."""
    ct = content_type.split(";")[0].strip().lower()
    if ct in ("text/csv", "application/csv"):
        return CSV
    if ct == "application/json" or ct.endswith("+json"):
        return JSON
    name = filename.lower()
    if name.endswith(".csv"):
        return CSV
    if name.endswith(".json"):
        return JSON
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return JSON if head in (b"[", b"{") else CSV


def parse_rows(data: bytes, fmt: str) -> list[dict]:
    """The rows of a file: dicts `{row, identity_data, pubkey}` or `{row, error}` for a row that
    cannot be read. Raises BadRequest when the file as a whole is unreadable."""
    if fmt == JSON:
        return _json_rows(data)
    if fmt == CSV:
        return _csv_rows(data)
    raise BadRequest(f"unknown format {fmt!r} (csv or json)")


def _json_rows(data: bytes) -> list[dict]:
    doc = parse_json_bytes(data)
    if not isinstance(doc, list):
        raise BadRequest("a JSON preauthorization file is an array of {identity_data, pubkey} objects")
    rows = []
    for n, item in enumerate(doc, start=1):
        if not isinstance(item, dict):
            rows.append({"row": n, "error": "not an object"})
            continue
        extra = set(item) - {"identity_data", "pubkey"}
        if extra:
            rows.append({"row": n, "error": f"unknown fields: {', '.join(sorted(map(str, extra)))}"})
        elif "identity_data" not in item or "pubkey" not in item:
            rows.append({"row": n, "error": "identity_data and pubkey are required"})
        else:
            rows.append({"row": n, "identity_data": item["identity_data"], "pubkey": item["pubkey"]})
    return rows


def _csv_rows(data: bytes) -> list[dict]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("CSV file is not UTF-8") from None
    if "\x00" in text:
        raise BadRequest("CSV file contains NUL bytes")
    old_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_CSV_FIELD)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise BadRequest("empty CSV file") from None
        if "pubkey" not in header:
            raise BadRequest("CSV header needs a pubkey column")
        if len(set(header)) != len(header) or "" in header:
            raise BadRequest("CSV header has empty or repeated column names")
        if "identity_data" in header and len(header) != 2:
            raise BadRequest("with an identity_data column, the CSV has only identity_data and pubkey")
        rows = []
        n = 0
        for n, cells in enumerate(reader, start=1):
            if not any(c.strip() for c in cells):
                continue  # blank line
            rows.append(_csv_row(n, header, cells))
        return rows
    except csv.Error as exc:
        raise BadRequest(f"CSV row {n + 1}: {exc}") from None
    finally:
        csv.field_size_limit(old_limit)


def _csv_row(n: int, header: list[str], cells: list[str]) -> dict[str, Any]:
    if len(cells) != len(header):
        return {"row": n, "error": f"{len(cells)} cells for {len(header)} columns"}
    record = dict(zip(header, cells))
    pubkey = record.pop("pubkey")
    if "identity_data" in record:
        try:
            identity = json.loads(record["identity_data"])
        except (ValueError, RecursionError):
            return {"row": n, "error": "identity_data: not a JSON document"}
    else:
        identity = {k: v for k, v in record.items() if v != ""}
    return {"row": n, "identity_data": identity, "pubkey": pubkey}
