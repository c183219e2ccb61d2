"""Deployments' history reaches the webhooks, on every backend: deployments publishes each
decision (deployments.events.publish_deployment_event) and iotmanager turns it into the matching
`deployment-*` event with the deployment as it is then: started, paused by a failure threshold,
resumed by an operator, finished with the counts, aborted by an operator; each once, in order."""

from __future__ import annotations

import pytest

from common.clock import FrozenClock
from common.errors import Unprocessable
from tests.deployments.conftest import Env
from tests.iotmanager.conftest import T0, drain, service


@pytest.fixture
def env(make_app, backend):
    app = make_app(backend, IOT_MANAGER_DOMAIN_SKIPVERIFY=True, IOT_MANAGER_WEBHOOKS_POLL_SECONDS=0,
                   IOT_MANAGER_WEBHOOKS_TIMEOUT_SECONDS=3, _CLOCK=FrozenClock(T0))
    return Env(app)


def _events(env, receiver, count):
    drain(env.app)
    got = receiver.wait_for(count)
    assert len(got) == count
    return [(r.json["type"], r.json["data"]) for r in got]


def test_a_deployment_from_start_to_finish(env, receiver):
    service(env.app).create_integration("", "webhook", {"type": "http", "http": {"url": receiver.url}})
    env.artifacts.add("app-2")
    dep = env.create(name="fleet", devices=["d1", "d2", "d3", "d4"], failure_threshold=25)
    assert env.poll("d1") is not None
    drain(env.app)
    assert receiver.requests == []  # handed out, not started yet

    env.report("d1", dep.id, "downloading", "installing")
    env.poll("d2")
    env.report("d2", dep.id, "downloading")  # a second device starting is no news
    env.report("d2", dep.id, "failure")  # 1 of 4 failed: the 25 % threshold pauses the deployment
    env.svc.resume("", dep.id, "operator-1")
    env.report("d1", dep.id, "success")
    for device in ("d3", "d4"):
        env.poll(device)
        env.report(device, dep.id, "downloading", "success")
    events = _events(env, receiver, 4)
    assert [e[0] for e in events] == ["deployment-started", "deployment-paused", "deployment-resumed",
                                      "deployment-finished"]
    started, paused, resumed, finished = (e[1] for e in events)
    assert {k: started[k] for k in ("id", "name", "artifact_name", "status", "max_devices", "paused", "actor")} == {
        "id": dep.id, "name": "fleet", "artifact_name": "app-2", "status": "inprogress", "max_devices": 4,
        "paused": False, "actor": "system"}
    assert "statistics" not in started and "finished" not in started
    assert paused["status"] == "inprogress" and paused["paused"] is True  # Mender's status while paused
    assert (paused["reason"], paused["failed"], paused["failure_threshold"]) == ("failure_threshold", 1, 25)
    assert resumed["actor"] == "operator-1" and resumed["paused"] is False
    assert finished["status"] == "finished" and finished["finished"]
    stats = finished["statistics"]
    assert stats == {"success": 3, "failure": 1}  # the non-zero counts
    # the history and the webhooks tell the same story
    history, _ = env.svc.store.list_events("", dep.id, 0, 100)
    assert [d["event_id"] for d in (started, paused, resumed, finished)] == [e.id for e in history]

    # an operator's abort: one event, as the history records it
    other = env.create(name="second", devices=["d5", "d6", "d7"])
    env.poll("d7")
    env.report("d7", other.id, "downloading")
    env.svc.abort("", other.id, "operator-2")
    with pytest.raises(Unprocessable):
        env.svc.abort("", other.id, "operator-2")  # already finished: no second event
    events = _events(env, receiver, 6)[4:]
    assert [e[0] for e in events] == ["deployment-started", "deployment-aborted"]
    aborted = events[1][1]
    assert (aborted["id"], aborted["actor"], aborted["reason"], aborted["status"]) == (
        other.id, "operator-2", "operator", "finished")
    assert len(receiver.requests) == 6


def test_an_organization_without_webhooks_keeps_nothing(env):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    env.poll("d1")
    env.report("d1", dep.id, "downloading", "success")
    assert env.dep(dep.id).status == "finished"
    assert service(env.app).list_events("") == []
