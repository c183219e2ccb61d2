"""Failure insight as plain functions: which attribute values separate a deployment's failed devices
from its succeeded ones (a smoothed log odds ratio and its z score), and the failed devices' most
common error lines, grouped by shape.

The score of a value v of an attribute, from a 2×2 table of devices with a final outcome:

              failed   succeeded
    with v      a         b
    without v   c         d

    log OR = ln((a+½)(d+½) / ((b+½)(c+½)))            (Haldane–Anscombe: no zero cells)
    SE     = √(1/(a+½) + 1/(b+½) + 1/(c+½) + 1/(d+½))
    score  = log OR / SE

The score grows with the strength of the association *and* with the evidence: one failed device
that happens to hold a unique value scores about 1, a value held by half the failures and few
successes scores in the tens. Values are ranked by score. When the devices' attributes are read
from a sample (a case–control design: up to SAMPLE failed and SAMPLE succeeded devices), the odds
ratio is unchanged in expectation and the SE is computed from the sample's own counts, so the
score is honest about the smaller evidence; counts and rates are then scaled back to the whole
deployment and marked `exact: false`.
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, field

ERROR_LEVELS = frozenset({"error", "fatal", "critical", "panic", "err", "crit", "emerg", "alert"})
MAX_LINES_PER_DEVICE = 50     # error lines read per failed device
MAX_LINE_CHARS = 500          # a line is cut there before it is normalized

_NORMALIZE = [
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![\w.])(?:/[\w.@+\-]+)+/?"), "<path>"),
    (re.compile(r"\d+(?:[.:,]\d+)*"), "<n>"),
]


@dataclass(slots=True)
class Breakdown:
    """One value of one attribute: its devices' outcomes and its score."""

    attribute: str
    scope: str                 # "inventory", or "deployment" for what the deployment itself recorded
    value: object
    devices: int
    failed: int
    succeeded: int
    failure_rate: float        # failed / devices
    failure_rate_elsewhere: float
    share_of_failures: float   # failed / all failed
    log_odds_ratio: float
    score: float
    exact: bool = True         # False: counted on a sample, scaled to the deployment


@dataclass(slots=True)
class ErrorLine:
    pattern: str               # the line with numbers, hex, ids and paths replaced
    example: str               # one such line as a device wrote it
    devices: int               # failed devices whose log has it


@dataclass(slots=True)
class Insights:
    deployment_id: str
    failed: int
    succeeded: int
    sampled_failed: int
    sampled_succeeded: int
    breakdowns: list[Breakdown] = field(default_factory=list)
    error_lines: list[ErrorLine] = field(default_factory=list)
    logs_read: int = 0


def score(a: float, b: float, c: float, d: float) -> tuple[float, float]:
    """(log odds ratio, z score) of the 2×2 table (see the module docstring)."""
    a, b, c, d = (max(0.0, x) + 0.5 for x in (a, b, c, d))
    log_or = math.log(a * d / (b * c))
    return log_or, log_or / math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def breakdown(attribute: str, scope: str, value, a: int, b: int, failed_n: int, succeeded_n: int,
              failed_total: int, succeeded_total: int) -> Breakdown:
    """A value held by `a` of `failed_n` failed and `b` of `succeeded_n` succeeded devices (a
    sample when the totals are larger), reported for the whole deployment."""
    log_or, z = score(a, b, failed_n - a, succeeded_n - b)
    exact = failed_n == failed_total and succeeded_n == succeeded_total
    f = a * failed_total / failed_n if failed_n else 0.0
    s = b * succeeded_total / succeeded_n if succeeded_n else 0.0
    rest_f, rest_s = failed_total - f, succeeded_total - s
    devices = f + s
    return Breakdown(attribute=attribute, scope=scope, value=value, devices=round(devices), failed=round(f),
                     succeeded=round(s), failure_rate=_ratio(f, devices),
                     failure_rate_elsewhere=_ratio(rest_f, rest_f + rest_s),
                     share_of_failures=_ratio(f, failed_total), log_odds_ratio=round(log_or, 4),
                     score=round(z, 4), exact=exact)


def rank(cells: list[tuple], limit: int) -> list[Breakdown]:
    """The `limit` values held by failed devices that separate them best, strongest first. A cell
    is (attribute, scope, value, a, b, failed_n, succeeded_n, failed_total, succeeded_total), as
    `breakdown` takes them; only the cells that make the cut become records (an attribute unique
    per device gives thousands of cells)."""
    scored = [(score(c[3], c[4], c[5] - c[3], c[6] - c[4])[1], c[3], c) for c in cells if c[3] > 0]
    best = heapq.nlargest(limit, scored, key=lambda t: (t[0], t[1]))
    out = [breakdown(*c) for _, _, c in best]
    out.sort(key=lambda b: (-b.score, -b.failed, b.attribute, str(b.value)))
    return out


def _ratio(x: float, y: float) -> float:
    return round(x / y, 4) if y > 0 else 0.0


def normalize(line: str) -> str:
    """A log line's shape: numbers, hex, UUIDs and paths replaced, spaces collapsed."""
    out = line[:MAX_LINE_CHARS]
    for pattern, token in _NORMALIZE:
        out = pattern.sub(token, out)
    return " ".join(out.split())


def error_lines(logs: list[list[dict]], limit: int) -> list[ErrorLine]:
    """The most common error lines of failed devices' logs, grouped by shape and counted once per
    device; a log without an error-level line contributes its last line."""
    groups: dict[str, list] = {}
    for messages in logs:
        if not isinstance(messages, list) or not messages:
            continue
        lines = [m for m in messages if isinstance(m, dict) and str(m.get("level", "")).lower() in ERROR_LEVELS]
        if not lines:
            lines = [messages[-1]] if isinstance(messages[-1], dict) else []
        seen = set()
        for msg in lines[:MAX_LINES_PER_DEVICE]:
            text = str(msg.get("message", ""))
            shape = normalize(text)
            if not shape or shape in seen:
                continue
            seen.add(shape)
            entry = groups.setdefault(shape, [0, text[:MAX_LINE_CHARS]])
            entry[0] += 1
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [ErrorLine(pattern=shape, example=example, devices=n) for shape, (n, example) in ranked]
