"""`alive` and `health` for each service's internal API."""

from __future__ import annotations

import os
from typing import Callable

from flask.views import MethodView

from common.api import Blueprint
from common.errors import Unavailable


def add_health_routes(blp: Blueprint, checks: Callable[[], list[Callable[[float], None]]],
                      timeout: Callable[[], float]) -> None:
    """Add GET alive (always 204) and GET health (204 when every check passes within the
    timeout, else 503 with the error body) to an internal blueprint."""

    @blp.route("/alive")
    class Alive(MethodView):
        @blp.response(204, description="The service is up.")
        def get(self):
            return None

    @blp.route("/health")
    class Health(MethodView):
        @blp.response(204, description="The service and its dependencies answer.")
        @blp.alt_response(503, description="A dependency does not answer.")
        def get(self):
            limit = timeout()
            for check in checks():
                try:
                    check(limit)
                except Unavailable:
                    raise
                except Exception as exc:  # any failure of a dependency is "unavailable"
                    raise Unavailable(f"service unavailable: {type(exc).__name__}") from exc
            return None


def data_disk_check(path: str, min_free: int) -> Callable[[float], None]:
    """A health check: Unavailable when the data directory's filesystem has less than `min_free`
    bytes left for the server (writes would fail; reads go on)."""

    def check(timeout: float) -> None:
        if min_free <= 0:
            return
        target = path
        while not os.path.exists(target) and os.path.dirname(target) != target:
            target = os.path.dirname(target)  # not made yet: the disk it will be made on
        try:
            st = os.statvfs(target)
        except OSError as exc:
            raise Unavailable(f"data directory unavailable: {exc.strerror}") from exc
        free = st.f_bavail * st.f_frsize
        if free < min_free:
            raise Unavailable(f"storage full: {free} bytes free on the data disk, {min_free} needed")

    return check
