"""Deployments fixtures: the service on each real store, with in-test artifacts and inventory."""

import pytest

from common.clock import FrozenClock
from deployments.api import render
from tests.deployments.fakes import FakeArtifacts, FakeInventory

T0 = 1_800_000_000.0
BASE = "https://server.example"


class Env:
    def __init__(self, app):
        self.app = app
        self.ctx = app.extensions["mender"]
        self.clock = self.ctx.clock
        self.artifacts = FakeArtifacts()
        self.inventory = FakeInventory()
        self.ctx.services.artifacts = self.artifacts
        self.ctx.services.inventory = self.inventory
        self.ctx.migrate_all()
        self.svc = self.ctx.services.deployments

    def create(self, **kw):
        kw.setdefault("name", "rollout")
        kw.setdefault("artifact_name", "app-2")
        return self.svc.create_deployment("", **kw)

    def poll(self, device_id, artifact_name="app-1", device_type="dt", **provides):
        """The device's `next` answer as the API sends it (None: 204)."""
        instructions = self.svc.next_deployment("", device_id, {"artifact_name": artifact_name,
                                                                "device_type": device_type, **provides}, BASE)
        return None if instructions is None else render.instructions(instructions)

    def report(self, device_id, dep_id, *statuses):
        for s in statuses:
            self.svc.report_status("", device_id, dep_id, s)

    def dep(self, dep_id):
        return self.svc.get_deployment("", dep_id)

    def stats(self, dep_id):
        return self.dep(dep_id).stats

    def dd_status(self, dep_id, device_id):
        return self.svc.store.get_device_deployment("", dep_id, device_id).status


@pytest.fixture
def env(make_app, backend):
    return Env(make_app(backend, _CLOCK=FrozenClock(T0)))
