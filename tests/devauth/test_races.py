"""devauth's multi-step writes under interleavings that only MongoDB allows (no transaction on a
standalone server; on SQLite the writer lock serialises them): the interleaving is injected,
deterministically, by running the concurrent request inside a store call of the first."""

from __future__ import annotations

import pytest

from common.errors import Conflict, Unprocessable
from devauth import crypto
from devauth.model import ACCEPTED, PENDING, REJECTED
from tests.conftest import _backend_params
from tests.helpers import generate_device_key, public_pem


@pytest.fixture(params=[p for p in _backend_params() if p.id != "sqlite"])
def ctx(make_app, request):
    context = make_app(request.param).extensions["mender"]
    context.ensure_migrated()
    return context


def pending(ctx, identity, keys=1):
    """A device that authenticated with `keys` keys (each a pending auth set): (device id, set ids)."""
    svc = ctx.services.devauth
    id_hash = crypto.identity_hash(identity)
    sets = []
    for _ in range(keys):
        pem = public_pem(generate_device_key("ed25519"))
        with svc._store.transaction():
            svc._admit("", identity, id_hash, pem)
        sets.append(svc._store.get_auth_set_by_key("", id_hash, crypto.normalize_pubkey(pem)).id)
    return svc._store.get_device_by_hash("", id_hash).id, sets


def inject_once(monkeypatch, store, name, concurrent, before=True):
    """Run `concurrent()` once, inside the first call of store.name (before or after the real call)."""
    original = getattr(store, name)
    state = {"done": False}

    def wrapper(*args, **kwargs):
        if state["done"]:
            return original(*args, **kwargs)
        state["done"] = True
        if before:
            concurrent()
            return original(*args, **kwargs)
        result = original(*args, **kwargs)
        concurrent()
        return result

    monkeypatch.setattr(store, name, wrapper)


def statuses(ctx, device_id):
    store = ctx.services.devauth._store
    return sorted(a.status for a in store.list_auth_sets("", [device_id]))


def inventory_status(ctx, device_id):
    device = ctx.services.inventory.store.get_device("", device_id)
    return {(a.scope, a.name): a.value for a in device.attributes}[("identity", "status")]


def test_two_concurrent_accepts_of_one_device_leave_one_key_accepted(ctx, monkeypatch):
    svc = ctx.services.devauth
    device, (a1, a2) = pending(ctx, {"mac": "two-keys"}, keys=2)
    inject_once(monkeypatch, svc._store, "set_auth_set_status",
                lambda: svc.set_auth_set_status("", device, a2, ACCEPTED))
    with pytest.raises(Conflict):  # the first accept lost to the one that ran inside it
        svc.set_auth_set_status("", device, a1, ACCEPTED)
    assert statuses(ctx, device) == [ACCEPTED, REJECTED]
    assert svc._store.get_auth_set("", a2).status == ACCEPTED
    assert svc._store.get_device("", device).status == ACCEPTED


def test_a_stale_status_recomputation_does_not_overwrite_a_newer_one(ctx, monkeypatch):
    """A reject reads the auth sets, then an accept of the same set runs to its end, then the
    reject writes its (older) view: the device must stay accepted, in devauth and in inventory."""
    svc = ctx.services.devauth
    device, (a1,) = pending(ctx, {"mac": "flip"})
    svc.set_auth_set_status("", device, a1, ACCEPTED)
    inject_once(monkeypatch, svc._store, "list_auth_sets",
                lambda: svc.set_auth_set_status("", device, a1, ACCEPTED), before=False)
    svc.set_auth_set_status("", device, a1, REJECTED)
    assert statuses(ctx, device) == [ACCEPTED]
    assert svc._store.get_device("", device).status == ACCEPTED
    assert inventory_status(ctx, device) == ACCEPTED


def test_concurrent_accepts_never_exceed_the_device_limit(ctx, monkeypatch):
    svc = ctx.services.devauth
    svc.set_max_devices("", 1)
    first, (s1,) = pending(ctx, {"mac": "first"})
    second, (s2,) = pending(ctx, {"mac": "second"})
    inject_once(monkeypatch, svc._store, "count_devices",
                lambda: svc.set_auth_set_status("", second, s2, ACCEPTED), before=False)
    with pytest.raises(Unprocessable):  # counted 0 accepted, but the other one got in meanwhile
        svc.set_auth_set_status("", first, s1, ACCEPTED)
    assert svc._store.count_devices("", [ACCEPTED]) == 1
    assert statuses(ctx, first) == [PENDING] and statuses(ctx, second) == [ACCEPTED]
    assert inventory_status(ctx, first) == PENDING


class Killed(BaseException):
    """The worker died here."""


def test_a_device_killed_before_its_inventory_entry_gets_it_on_its_next_request(ctx, monkeypatch):
    svc = ctx.services.devauth
    inventory = ctx.services.inventory

    def killed(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(inventory, "upsert_identity", killed)
    identity = {"mac": "killed-early"}
    pem = public_pem(generate_device_key("ed25519"))
    with pytest.raises(Killed):
        svc._admit("", identity, crypto.identity_hash(identity), pem)
    device = svc._store.get_device_by_hash("", crypto.identity_hash(identity))
    assert device is not None and inventory.store.get_device("", device.id) is None
    monkeypatch.undo()
    svc._admit("", identity, crypto.identity_hash(identity), pem)  # the device asks again
    attrs = {(a.scope, a.name): a.value for a in inventory.store.get_device("", device.id).attributes}
    assert attrs[("identity", "mac")] == "killed-early" and attrs[("identity", "status")] == PENDING
