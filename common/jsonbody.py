"""JSON bodies from bytes, for the API and for services that read raw bodies (no Flask here)."""

from __future__ import annotations

import json
import re
from typing import Any

from common.errors import BadRequest

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_lone_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate (`"\\ud800"` unpaired: not Unicode text, and no store or
    encoder accepts it) replaced by U+FFFD, as Go's encoding/json (and so Mender) decodes it."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value


def parse_json_bytes(raw: bytes) -> Any:
    """Decode a JSON body; BadRequest for anything that is not valid UTF-8 JSON (deep nesting
    included). Lone surrogate escapes become U+FFFD (the scan runs only when one may be there)."""
    try:
        value = json.loads(raw)
        if _SURROGATE_ESCAPE.search(raw):
            value = _replace_lone_surrogates(value)
        return value
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise BadRequest("malformed JSON: not UTF-8") from None
    except ValueError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
