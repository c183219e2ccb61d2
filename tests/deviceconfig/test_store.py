"""Store contract: both backends behave the same (parametrized over `backend`)."""

from __future__ import annotations

import uuid

from deviceconfig.model import DeviceConfiguration


def _id() -> str:
    return str(uuid.uuid4())


def test_provision_is_idempotent_and_keeps_what_is_there(store):
    dev = _id()
    assert store.get_device("", dev) is None
    store.provision_device("", dev, 100.0)
    assert store.get_device("", dev) == DeviceConfiguration("", dev, {}, {}, None, 100.0, None)
    store.set_configured("", dev, {"a": "1"}, 150.0)
    store.provision_device("", dev, 200.0)  # a second acceptance changes nothing
    assert store.get_device("", dev) == DeviceConfiguration("", dev, {"a": "1"}, {}, None, 150.0, None)


def test_configured_and_reported_are_replaced_independently(store):
    dev = _id()
    store.set_configured("", dev, {"b": "2", "a": "1"}, 10.0)  # creates the record
    store.set_reported("", dev, {"a": "0"}, 20.0)
    got = store.get_device("", dev)
    assert (got.configured, got.reported, got.updated_ts, got.reported_ts) == ({"a": "1", "b": "2"}, {"a": "0"}, 10.0, 20.0)
    assert list(got.configured) == ["a", "b"]  # keys come back sorted
    store.set_configured("", dev, {"c": "3"}, 30.0)  # replaced, not merged
    store.set_reported("", dev, {}, 40.0)
    got = store.get_device("", dev)
    assert (got.configured, got.reported, got.updated_ts, got.reported_ts) == ({"c": "3"}, {}, 30.0, 40.0)


def test_a_report_creates_the_record(store):
    dev = _id()
    store.set_reported("t", dev, {"k": "v"}, 5.0)
    got = store.get_device("t", dev)
    assert (got.configured, got.reported, got.reported_ts, got.deployment_id) == ({}, {"k": "v"}, 5.0, None)


def test_keys_any_string(store):
    """Keys with dots, dollars, spaces and non-ASCII characters round-trip (MongoDB field names
    could not hold them)."""
    dev = _id()
    config = {"a.b": "1", "$set": "2", "with space": "3", "ключ": "значение", "x" * 4096: "y" * 4096,
              "multi": "line one\nline two\ttab"}
    store.set_configured("", dev, config, 1.0)
    store.set_reported("", dev, config, 2.0)
    got = store.get_device("", dev)
    assert got.configured == config and got.reported == config


def test_deployment_id_needs_a_record(store):
    dev = _id()
    assert store.set_deployment_id("", dev, "dep-1") is False
    assert store.get_device("", dev) is None
    store.provision_device("", dev, 1.0)
    assert store.set_deployment_id("", dev, "dep-1") is True
    assert store.set_deployment_id("", dev, "dep-2") is True
    assert store.get_device("", dev).deployment_id == "dep-2"


def test_tenants_are_separate_and_deletes(store):
    dev = _id()
    store.set_configured("t1", dev, {"a": "1"}, 1.0)
    store.set_configured("t2", dev, {"a": "2"}, 1.0)
    store.set_configured("t2", _id(), {"x": "y"}, 1.0)
    assert store.get_device("", dev) is None
    assert store.get_device("t1", dev).configured == {"a": "1"}
    assert store.set_deployment_id("", dev, "d") is False
    store.delete_device("", dev)
    store.delete_device("t1", dev)
    store.delete_device("t1", dev)  # idempotent
    assert store.get_device("t1", dev) is None
    assert store.get_device("t2", dev).configured == {"a": "2"}
    store.delete_tenant("t2")
    assert store.get_device("t2", dev) is None
