"""deviceconfig's record (a device's desired and reported configuration) and the rules of a
configuration: a flat map of string keys to string values, bounded as Mender bounds it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from common.errors import BadRequest

# Mender's limits (deviceconfig model/validation.go): at most 100 attributes, keys of 1 to 4096
# characters, values of at most 4096 characters (Go counts runes: characters, not bytes).
MAX_ATTRIBUTES = 100
MAX_KEY_LENGTH = 4096
MAX_VALUE_LENGTH = 4096
# A value is free text (a certificate, a script) but no control character other than tab and line
# breaks; a key is printable (it names a setting in a JSON file that shell scripts read).
_VALUE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(slots=True)
class DeviceConfiguration:
    """A device's configuration: what the operator wants (`configured`, since `updated_ts`), what
    the device last said it applied (`reported`, at `reported_ts`; None: never), and the latest
    configuration deployment made from it."""

    tenant_id: str
    device_id: str
    configured: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    deployment_id: str | None = None
    updated_ts: float | None = None
    reported_ts: float | None = None


def check_configuration(raw: Any, what: str = "configuration") -> dict[str, str]:
    """`raw` (a decoded JSON body) as a configuration, keys sorted; BadRequest naming the first
    problem."""
    if not isinstance(raw, dict):
        raise BadRequest(f"{what}: must be a JSON object of string values")
    if len(raw) > MAX_ATTRIBUTES:
        raise BadRequest(f"{what}: too many configuration attributes, maximum is {MAX_ATTRIBUTES}")
    out: dict[str, str] = {}
    for key in sorted(raw):
        value = raw[key]
        shown = key if len(key) <= 64 else key[:64] + "…"
        if not key:
            raise BadRequest(f"{what}: a key must not be empty")
        if len(key) > MAX_KEY_LENGTH:
            raise BadRequest(f"{what}: key {shown!r}: longer than {MAX_KEY_LENGTH} characters")
        if not key.isprintable():
            bad = next(c for c in key if not c.isprintable())
            raise BadRequest(f"{what}: key {shown!r}: contains a character that is not printable (U+{ord(bad):04X})")
        if not isinstance(value, str):
            raise BadRequest(f"{what}: {shown}: the value must be a string")
        if len(value) > MAX_VALUE_LENGTH:
            raise BadRequest(f"{what}: {shown}: the value is longer than {MAX_VALUE_LENGTH} characters")
        bad_char = _VALUE_CONTROL.search(value)
        if bad_char:
            raise BadRequest(f"{what}: {shown}: the value contains a control character "
                             f"(U+{ord(bad_char.group()):04X})")
        out[key] = value
    return out
