"""Prometheus metrics by route template and status; multiprocess-safe under gunicorn."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Callable

from flask import Flask, Response, current_app
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

REQUESTS = Counter("mender_http_requests_total", "HTTP requests served",
                   ["method", "route", "status"])
LATENCY = Histogram("mender_http_request_duration_seconds", "HTTP request latency",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_children: dict[tuple[str, str, int], tuple] = {}  # routes are templates and statuses few: a bounded set


def observe(method: str, route: str, status: int, seconds: float) -> None:
    if method not in _METHODS:  # any token is a method on the wire: keep the label set bounded
        method = "other"
    key = (method, route, status)
    pair = _children.get(key)
    if pair is None:  # `labels()` validates and locks on every call: do it once per combination
        pair = _children[key] = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
    pair[0].inc()
    pair[1].observe(seconds)


_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


_labels: dict[str, str] = {}  # one entry per URL rule: bounded


def route_label(rule: str) -> str:
    """A route template in one form whatever the converters: `/devices/<string:id>` and
    `/devices/<id>` both become `/devices/{id}` (OpenAPI's form)."""
    label = _labels.get(rule)
    if label is None:
        label = _labels[rule] = _CONVERTER.sub(r"{\1}", rule)
    return label


class FleetCollector:
    """Gauges of the whole fleet (AppContext.fleet_gauges), counted at most once per `ttl`
    seconds per process, whatever the scrape rate: each count is an index scan, never per scrape."""

    def __init__(self, gauges: list[tuple[str, str, str, Callable[[], dict[str, int]]]], ttl: float):
        self.gauges = gauges
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._values: list[tuple[str, str, str, dict[str, int]]] = []

    def values(self) -> list[tuple[str, str, str, dict[str, int]]]:
        with self._lock:
            now = time.monotonic()
            if now - self._at >= self.ttl:
                try:
                    current_app.extensions["mender"].ensure_migrated()
                    self._values = [(name, doc, label, dict(fn())) for name, doc, label, fn in self.gauges]
                    self._at = now
                except Exception:  # the database is down: the HTTP metrics are still served
                    log.warning("fleet gauges not counted", exc_info=True)
                    return []
            return self._values

    def collect(self):
        for name, doc, label, counts in self.values():
            family = GaugeMetricFamily(name, doc, labels=[label])
            for value, count in sorted(counts.items()):
                family.add_metric([str(value)], count)
            yield family


def metrics_view() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        from prometheus_client import REGISTRY
        registry.register(_Delegate(REGISTRY))
    fleet = current_app.extensions.get("mender_fleet_collector")
    if fleet is not None:
        registry.register(fleet)
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class _Delegate:
    """The process's default registry inside a per-scrape one (so the fleet gauges join it)."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def init_app(app: Flask, ctx=None) -> None:
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
    if ctx is not None:
        app.extensions["mender_fleet_collector"] = FleetCollector(ctx.fleet_gauges,
                                                                  float(ctx.config["MENDER_METRICS_FLEET_SECONDS"]))
