"""Prometheus metrics by route template and status; multiprocess-safe under gunicorn."""

from __future__ import annotations

import os

from flask import Flask, Response
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

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


def metrics_view() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
