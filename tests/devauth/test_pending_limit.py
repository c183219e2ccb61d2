"""DEVAUTH_MAX_PENDING: a flood of auth requests from new identities stops adding pending devices
at the cap (429), while devices the server already knows keep their answers (both backends)."""

from __future__ import annotations

import pytest

from tests.helpers import Device, Operator, accepted_device

CAP = 10


@pytest.fixture
def capped(make_app, backend):
    app = make_app(backend, DEVAUTH_MAX_PENDING=str(CAP))
    client = app.test_client()
    return app, client, Operator.create(app, client)


def _count(operator, status):
    r = operator.get(f"/api/management/v2/devauth/devices?status={status}&per_page=500")
    assert r.status_code == 200
    return len(r.get_json())


def test_a_flood_of_new_identities_stops_at_the_cap(capped):
    app, client, operator = capped
    accepted = accepted_device(app, operator, client)
    pending = [Device(client) for _ in range(CAP - 1)]
    for d in pending:
        assert d.auth().status_code == 401
    statuses = {}
    for _ in range(500):  # the flood: 500 unauthenticated requests with new identities
        r = Device(client).auth()
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code == 429:
            body = r.get_json()
            assert set(body) == {"error", "request_id"} and f"limit {CAP}" in body["error"]
            assert r.headers["Retry-After"]
    assert statuses == {401: 1, 429: 499}  # the tenth pending device, then nothing more
    assert _count(operator, "pending") == CAP  # bounded growth
    # devices the server knows are unaffected: pending ones stay pending, accepted ones get tokens
    assert pending[0].auth().status_code == 401
    assert accepted.auth().status_code == 200
    # a known identity with a new key is not a new identity either
    rotated = Device(client, identity=pending[1].identity)
    assert rotated.auth().status_code == 401
    # room again once the operator deals with a pending device
    record = operator.find_device(pending[2])
    assert operator.delete(f"/api/management/v2/devauth/devices/{record['id']}").status_code == 204
    assert Device(client).auth().status_code == 401
    assert Device(client).auth().status_code == 429


def test_minus_one_is_unlimited(make_app):
    app = make_app("sqlite", DEVAUTH_MAX_PENDING="-1")
    client = app.test_client()
    assert all(Device(client).auth().status_code == 401 for _ in range(CAP + 5))


KEYS_CAP = 3


def test_a_flood_of_new_keys_for_a_known_identity_stops_at_the_cap(make_app, backend):
    """DEVAUTH_MAX_PENDING_KEYS: DEVAUTH_MAX_PENDING counts identities, so new keys for one known
    identity (unauthenticated, anyone who knows it) added auth sets to its device without end
    (300 requests: 301 auth sets)."""
    app = make_app(backend, DEVAUTH_MAX_PENDING_KEYS=str(KEYS_CAP))
    client = app.test_client()
    operator = Operator.create(app, client)
    accepted = accepted_device(app, operator, client)
    statuses = {}
    for _ in range(20):
        r = Device(client, identity=accepted.identity).auth()
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code == 429:
            body = r.get_json()
            assert set(body) == {"error", "request_id"} and f"limit {KEYS_CAP}" in body["error"]
            assert r.headers["Retry-After"]
    assert statuses == {401: KEYS_CAP, 429: 20 - KEYS_CAP}
    record = operator.find_device(accepted)
    assert sorted(a["status"] for a in record["auth_sets"]) == ["accepted"] + ["pending"] * KEYS_CAP
    # the device's known keys are unaffected
    assert accepted.auth().status_code == 200
    # room again once the operator removes a pending key
    pending = next(a for a in record["auth_sets"] if a["status"] == "pending")
    assert operator.delete(f"/api/management/v2/devauth/devices/{record['id']}/auth/{pending['id']}"
                           ).status_code == 204
    assert Device(client, identity=accepted.identity).auth().status_code == 401
    assert Device(client, identity=accepted.identity).auth().status_code == 429


def test_pending_keys_minus_one_is_unlimited(make_app):
    app = make_app("sqlite", DEVAUTH_MAX_PENDING_KEYS="-1")
    client = app.test_client()
    first = Device(client)
    assert first.auth().status_code == 401
    assert all(Device(client, identity=first.identity).auth().status_code == 401 for _ in range(12))
