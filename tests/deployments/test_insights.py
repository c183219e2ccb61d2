"""Failure insight on a crafted fleet whose culprit is known (kernel 5.10 fails half the time,
everything else rarely), with the real inventory service, on both stores; the normalization of
error lines; the score's behaviour on small groups; the HTTP answer."""

from __future__ import annotations

import random

import pytest

from common.errors import BadRequest, NotFound
from deployments import insights as ins
from tests.deployments.conftest import Env


@pytest.fixture
def fleet(make_app, backend):
    from common.clock import FrozenClock
    from tests.deployments.conftest import T0
    app = make_app(backend, _CLOCK=FrozenClock(T0))
    real_inventory = app.extensions["mender"].services.inventory
    env = Env(app)
    env.ctx.services.inventory = real_inventory
    env.artifacts.add("app-2")
    rnd = random.Random(7)
    devices = [f"dev-{i:03d}" for i in range(80)]
    kernel = {d: "5.10" if i % 4 == 0 else "6.1" for i, d in enumerate(devices)}   # 20 on 5.10
    for d in devices:
        real_inventory.update_device_attributes("", d, [
            {"name": "kernel", "value": kernel[d]}, {"name": "region", "value": rnd.choice(["eu", "us", "ap"])},
            {"name": "hw_rev", "value": rnd.choice(["A", "B"])}, {"name": "serial", "value": d},
            {"name": "artifact_name", "value": "app-1"}], replace=False)
    dep = env.create(devices=devices)
    failing = [d for i, d in enumerate(devices) if kernel[d] == "5.10" and i % 8 == 0] + ["dev-001"]
    for i, d in enumerate(devices):
        env.poll(d, artifact_name="app-1" if i % 2 else "app-0")
        env.report(d, dep.id, "downloading", "installing")
        if d in failing:
            env.report(d, dep.id, "failure")
            lines = [{"timestamp": "t", "level": "info", "message": "installing"},
                     {"timestamp": "t", "level": "error",
                      "message": f"flash write failed at 0x{rnd.randrange(1 << 24):06x} block {rnd.randrange(9999)}"
                                 f" on /dev/mmcblk{i % 3}p2"}]
            if d == "dev-001":
                lines = [{"timestamp": "t", "level": "info", "message": "out of space: 12 bytes left"}]
            env.svc.upload_log("", d, dep.id, lines)
        else:
            env.report(d, dep.id, "success")
    return env, dep, failing


def test_the_culprit_ranks_first(fleet):
    env, dep, failing = fleet
    got = env.svc.insights("", dep.id)
    assert (got.failed, got.succeeded) == (len(failing), 80 - len(failing))
    top = got.breakdowns[0]
    assert (top.attribute, top.value, top.scope) == ("kernel", "5.10", "inventory")
    assert (top.devices, top.failed, top.succeeded, top.exact) == (20, 10, 10, True)
    assert top.failure_rate == 0.5 and top.failure_rate_elsewhere == round(1 / 60, 4)
    assert top.share_of_failures == round(10 / 11, 4) and top.score > 3
    # a unique value held by one failed device is visible, and small
    serial = next(b for b in got.breakdowns if b.attribute == "serial")
    assert serial.devices == 1 and serial.score < top.score / 2
    # the deployment's own, exact record: the artifact the devices ran before (not the inventory's)
    attrs = {(b.attribute, b.scope) for b in got.breakdowns}
    assert ("artifact_name", "inventory") not in attrs
    assert any(b.attribute == "artifact_name" and b.scope == "deployment" for b in
               env.svc.insights("", dep.id, limit=100).breakdowns)
    # grouped error lines: ten devices, one shape, whatever the numbers and devices
    first = got.error_lines[0]
    assert first.devices == 10 and first.pattern == "flash write failed at <hex> block <n> on <path>"
    assert first.example.startswith("flash write failed at 0x")
    assert got.error_lines[1].pattern == "out of space: <n> bytes left" and got.error_lines[1].devices == 1


def test_named_attributes_and_errors(fleet):
    env, dep, _ = fleet
    got = env.svc.insights("", dep.id, attributes=["region", "hw_rev"], limit=100)
    assert {b.attribute for b in got.breakdowns} <= {"region", "hw_rev", "device_type", "artifact_name"}
    with pytest.raises(BadRequest):
        env.svc.insights("", dep.id, attributes=[f"a{i}" for i in range(51)])
    with pytest.raises(BadRequest):
        env.svc.insights("", dep.id, limit=0)
    with pytest.raises(NotFound):
        env.svc.insights("", "nope")


def test_sampled_counts_are_scaled_and_marked(fleet, monkeypatch):
    from deployments import service_insights
    env, dep, failing = fleet
    monkeypatch.setattr(service_insights, "SAMPLE", 8)
    got = env.svc.insights("", dep.id, attributes=["kernel"], limit=100)
    kernel = [b for b in got.breakdowns if b.attribute == "kernel"]
    assert kernel and all(not b.exact for b in kernel)
    assert (got.sampled_failed, got.sampled_succeeded) == (8, 8)
    assert sum(b.failed for b in kernel) == len(failing)  # scaled back to the deployment


def test_score_and_normalization():
    # evidence counts: the same rates with ten times the devices score higher
    small, big = ins.score(1, 1, 1, 10), ins.score(10, 10, 10, 100)
    assert small[0] == pytest.approx(big[0], rel=0.2) and big[1] > 2 * small[1]
    assert ins.score(0, 50, 10, 50)[1] < 0
    assert ins.normalize("fail 0xDEADbeef at /var/lib/mender/x.y 12.5s id 1b4e28ba-2fa1-11d2-883f-0016d3cca427") == \
        "fail <hex> at <path> <n>s id <uuid>"
    assert ins.normalize("sha 9f86d081884c7d65 mismatch") == "sha <hex> mismatch"
    assert ins.error_lines([[], "bad", [{"level": "ERROR", "message": "x 1"}, {"level": "error", "message": "x 2"}],
                            [{"level": "info", "message": "last"}]], 10)[0].devices == 1
