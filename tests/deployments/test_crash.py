"""A worker killed between two writes leaves nothing half done: assigning a device (claiming its
slot and writing its device deployment) is one step on SQLite and a resumable one on MongoDB, an
abort is one step on SQLite and finished by whoever meets its remains on MongoDB. The kill is
injected after the n-th write of the step, deterministically, on each real store."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.errors import Unprocessable
from deployments import model as m
from tests.helpers import ROOT

EU = [{"scope": "inventory", "attribute": "region", "type": "$eq", "value": "eu"}]


class Killed(BaseException):
    """The worker died here (BaseException: nothing in the server catches it)."""


def _is_write(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")


class WriteTap:
    """Calls `on_write(n)` after the n-th database write made while armed, on either backend."""

    def __init__(self, monkeypatch, store):
        self.armed = False
        self.count = 0
        self.on_write = lambda n: None
        if hasattr(store, "db") and store.db.kind == "sqlite":
            conn = store.db.conn
            execute = conn.execute

            def tapped_execute(sql, *args):
                cur = execute(sql, *args)
                if self.armed and _is_write(sql):
                    self._written()
                return cur

            monkeypatch.setattr(conn, "execute", tapped_execute)
        else:
            collection = type(store.deployments)
            for name in ("insert_one", "insert_many", "update_one", "update_many", "find_one_and_update"):
                method = getattr(collection, name)
                monkeypatch.setattr(collection, name, self._tap(method))

    def _tap(self, method):
        def tapped(collection, *args, **kwargs):
            result = method(collection, *args, **kwargs)
            if self.armed:
                self._written()
            return result
        return tapped

    def _written(self):
        self.count += 1
        self.on_write(self.count)

    def around(self, obj, name: str, on_write, every: int = 1):
        """Arm the tap during every `every`-th call of `obj.name`."""
        original = getattr(obj, name)
        calls = [0]

        def wrapper(*args, **kwargs):
            calls[0] += 1
            if calls[0] % every:
                return original(*args, **kwargs)
            self.armed, self.count, self.on_write = True, 0, on_write
            try:
                return original(*args, **kwargs)
            finally:
                self.armed = False

        setattr(obj, name, wrapper)


def kill_after(k: int):
    def on_write(n):
        if n == k:
            raise Killed()
    return on_write


def nonzero(stats):
    return {k: v for k, v in stats.items() if v}


def roll_out(env, dep_id, devices, rounds=6):
    """Every device polls until it gets the deployment (a killed poll is retried in the next
    round, as the client does) and reports success. Returns the devices that never got it."""
    waiting = list(devices)
    for _ in range(rounds):
        left = []
        for device in waiting:
            try:
                instructions = env.poll(device)
            except Killed:
                left.append(device)
                continue
            if instructions is None:
                left.append(device)
                continue
            assert instructions["id"] == dep_id
            got = env.svc.store.get_deployment("", dep_id, counts=False)
            assert got.device_count <= got.max_devices or got.dynamic
            env.report(device, dep_id, "success")
        waiting = left
    return waiting


@pytest.mark.parametrize("kill_at", [1, 2])
def test_a_dynamic_deployment_of_150_ends_with_150_despite_killed_assignments(env, monkeypatch, kill_at):
    env.artifacts.add("app-2")
    devices = [env.inventory.add(region="eu") for _ in range(150)]
    dep = env.create(filter_terms=EU, max_devices=150)
    tap = WriteTap(monkeypatch, env.svc.store)
    tap.around(env.svc.store, "assign_device", kill_after(kill_at), every=3)  # a third of them die mid-way
    assert roll_out(env, dep.id, devices) == []
    got = env.dep(dep.id)
    assert got.status == "finished" and got.device_count == 150 and got.assigning == []
    assert nonzero(got.stats) == {"success": 150}
    assert env.svc.store.count_device_statuses("", dep.id) == {"success": 150}


def test_a_static_deployment_of_300_never_counts_301(env, monkeypatch):
    """(The dynamic test above kills at each step; this one after the first, the slot claim.)"""
    env.artifacts.add("app-2")
    devices = [f"d{i:03}" for i in range(300)]
    dep = env.create(devices=devices, phases=[{"batch_size": 50}, {"start_ts": env.clock.now() + 10}])
    env.clock.advance(10)
    tap = WriteTap(monkeypatch, env.svc.store)
    tap.around(env.svc.store, "assign_device", kill_after(1), every=3)
    assert roll_out(env, dep.id, devices) == []  # roll_out checks device_count <= 300 after every poll
    got = env.dep(dep.id)
    assert got.status == "finished" and got.device_count == 300 and got.assigning == []
    assert [p.device_count for p in got.phases] == [150, 150]
    assert nonzero(got.stats) == {"success": 300}


def test_a_killed_assignment_leaves_nothing_on_sqlite_and_a_resumable_note_on_mongodb(env, monkeypatch, backend):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    tap = WriteTap(monkeypatch, env.svc.store)
    tap.around(env.svc.store, "assign_device", kill_after(1))
    with pytest.raises(Killed):
        env.poll("d1")
    got = env.dep(dep.id)
    if backend == "sqlite":  # rolled back: as if the poll never came
        assert (got.device_count, got.assigning) == (0, [])
    else:  # the slot is claimed and the assignment noted, the device deployment not written yet
        assert (got.device_count, got.assigning) == (1, ["d1"])
    assert env.svc.store.get_device_deployment("", dep.id, "d1") is None
    setattr(env.svc.store, "assign_device", type(env.svc.store).assign_device.__get__(env.svc.store))
    assert env.poll("d1")["id"] == dep.id
    got = env.dep(dep.id)
    assert (got.device_count, got.assigning) == (1, [])


# ---------------------------------------------------------------- abort

def test_a_poll_during_an_abort_gets_nothing(env):
    """The deployment is finished before its device deployments are closed: a device asking in
    between is refused, instead of getting a pending device deployment nobody closes."""
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2", "d3"])
    env.poll("d1")
    answers = []
    original = env.svc.store.close_active_device_deployments

    def close_with_a_poll_first(*args):
        answers.append(env.poll("d3"))
        return original(*args)

    env.svc.store.close_active_device_deployments = close_with_a_poll_first
    env.svc.abort("", dep.id)
    assert answers == [None]
    assert env.poll("d3") is None
    assert env.svc.store.get_device_deployment("", dep.id, "d3") is None
    assert nonzero(env.stats(dep.id)) == {"aborted": 3}  # d2 and d3 never asked: aborted too (issue 20)


def test_an_abort_between_the_steps_of_an_assignment(env, monkeypatch, backend):
    """On MongoDB an abort can land between the claim and the insert, or between the insert and
    the settling: the assigning poll closes what it wrote. (On SQLite the assignment is one
    transaction: an abort comes before or after it.)"""
    env.artifacts.add("app-2")
    tap = WriteTap(monkeypatch, env.svc.store)
    points = ["before"] if backend == "sqlite" else ["before", 1, 2]
    for i, point in enumerate(points):
        device = f"dev-{i}"
        dep = env.create(name=f"abort-{i}", devices=[device, "other"])
        env.poll("other")
        abort = lambda *_: env.svc.abort("", dep.id)  # noqa: E731
        if point == "before":
            original = env.svc.store.assign_device
            env.svc.store.assign_device = lambda *a, _o=original: (abort(), _o(*a))[1]
        else:
            tap.around(env.svc.store, "assign_device", lambda n, _p=point: abort() if n == _p else None)
        assert env.poll(device) is None
        env.svc.store.assign_device = type(env.svc.store).assign_device.__get__(env.svc.store)
        dd = env.svc.store.get_device_deployment("", dep.id, device)
        assert dd is None or dd.status == m.ABORTED
        got = env.dep(dep.id)
        assert got.status == "finished" and got.aborted and got.assigning == []
        counts = env.svc.store.count_device_statuses("", dep.id)
        # both listed devices count as aborted, with a device deployment or without (issue 20)
        assert set(counts) == {m.ABORTED} and nonzero(got.stats) == {m.ABORTED: 2}
        assert env.poll(device) is None


def test_a_killed_abort_is_finished_by_the_next_poll_or_abort(env, monkeypatch, backend):
    env.artifacts.add("app-2")
    dep = env.create(devices=["d1", "d2"])
    env.poll("d1")
    env.poll("d2")
    tap = WriteTap(monkeypatch, env.svc.store)
    tap.around(env.svc, "abort", kill_after(1))
    with pytest.raises(Killed):
        env.svc.abort("", dep.id)  # killed once the deployment is marked finished
    env.svc.abort = type(env.svc).abort.__get__(env.svc)
    if backend == "sqlite":  # one transaction: nothing happened
        assert env.dep(dep.id).status == "pending"
        assert env.poll("d1")["id"] == dep.id
        env.svc.abort("", dep.id)
    else:  # finished, its device deployments still active: the next poll closes them
        assert env.dep(dep.id).status == "finished"
        assert env.poll("d1") is None
        assert env.dd_status(dep.id, "d2") == m.ABORTED
        with pytest.raises(Unprocessable):
            env.svc.abort("", dep.id)
    got = env.dep(dep.id)
    assert got.status == "finished" and got.aborted
    assert nonzero(got.stats) == {"aborted": 2}
    assert env.poll("d2") is None


# ---------------------------------------------------------------- the artifact of a device deployment

def test_two_polls_choosing_the_artifact_count_its_size_once(env):
    env.artifacts.add("app-2", size=7000)
    dep = env.create(devices=["d1"])
    answers = []
    original = env.artifacts.find_by_name
    calls = []

    def find_with_a_concurrent_poll(*args):
        found = original(*args)
        if not calls:
            calls.append(1)
            answers.append(env.poll("d1"))
        return found

    env.poll("d1")  # assigned; the artifact is chosen below by two polls at once
    env.svc.store.update_device_deployment("", env.svc.store.get_device_deployment("", dep.id, "d1").id,
                                           "pending", {"artifact_id": None})
    env.svc.store.adjust_stats("", dep.id, {}, total_size=-7000, fetch=False)
    env.artifacts.find_by_name = find_with_a_concurrent_poll
    answers.append(env.poll("d1"))
    assert [a["id"] for a in answers] == [dep.id, dep.id]
    assert env.dep(dep.id).total_size == 7000


# ---------------------------------------------------------------- a real process killed (SQLite)

CHILD = r"""
import dataclasses, os, sys
sys.path.insert(0, sys.argv[1])
from common.app import create_app
from tests.deployments.fakes import FakeArtifacts, FakeInventory
from tests.helpers import backend_config

app = create_app(backend_config("sqlite", sys.argv[2]))
ctx = app.extensions["mender"]
artifacts = FakeArtifacts()
artifact = artifacts.add("app-2")
artifacts.items = {sys.argv[3]: dataclasses.replace(artifact, id=sys.argv[3])}
ctx.services.artifacts, ctx.services.inventory = artifacts, FakeInventory()
store = ctx.services.deployments.store
conn = store.db.conn
execute = conn.execute

def execute_then_die(sql, *args):
    cur = execute(sql, *args)
    if sql.lstrip().upper().startswith("INSERT INTO DEVICE_DEPLOYMENTS"):
        os._exit(9)  # the worker is killed inside the assignment's transaction
    return cur

conn.execute = execute_then_die
ctx.services.deployments.next_deployment("", "d1", {"artifact_name": "app-1", "device_type": "dt"}, "http://x")
"""


def test_a_worker_killed_inside_the_assignment_leaves_nothing_on_sqlite(make_app, tmp_path):
    from tests.deployments.conftest import Env
    data_dir = str(tmp_path / "data")
    env = Env(make_app("sqlite", MENDER_DATA_DIR=data_dir))
    artifact = env.artifacts.add("app-2")
    dep = env.create(devices=["d1"])
    child = subprocess.run([sys.executable, "-c", CHILD, ROOT, data_dir, artifact.id], timeout=60,
                           capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    assert env.svc.store.get_device_deployment("", dep.id, "d1") is None
    assert env.dep(dep.id).device_count == 0
    assert env.poll("d1")["id"] == dep.id  # the writer lock died with the worker
    assert env.dep(dep.id).device_count == 1
    assert os.path.exists(os.path.join(data_dir, "mender.db"))
