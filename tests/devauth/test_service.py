"""Service rules without HTTP: the transition table's shape, status aggregation."""

from __future__ import annotations

import itertools

import pytest

from devauth.model import AUTH_SET_STATUSES
from devauth.service import ALLOW, DENY, NOOP, TRANSITIONS, device_status


def test_transition_table_is_complete_and_same_status_is_a_noop():
    assert set(TRANSITIONS) == set(itertools.product(AUTH_SET_STATUSES, AUTH_SET_STATUSES))
    for status in AUTH_SET_STATUSES:
        assert TRANSITIONS[(status, status)] == NOOP
    assert {k for k, v in TRANSITIONS.items() if v == ALLOW} == {
        ("pending", "accepted"), ("pending", "rejected"), ("rejected", "accepted"), ("accepted", "rejected"),
        ("accepted", "pending"), ("rejected", "pending")}
    assert all(v == DENY for (a, b), v in TRANSITIONS.items() if a != b and PREAUTH in (a, b))


PREAUTH = "preauthorized"


@pytest.mark.parametrize("statuses,expected", [
    ([], "noauth"),
    (["pending"], "pending"),
    (["rejected"], "rejected"),
    (["preauthorized"], "preauthorized"),
    (["accepted"], "accepted"),
    (["rejected", "pending"], "pending"),
    (["pending", "preauthorized"], "preauthorized"),
    (["rejected", "accepted", "pending", "preauthorized"], "accepted"),
    (["rejected", "rejected"], "rejected"),
])
def test_device_status_aggregation(statuses, expected):
    assert device_status(statuses) == expected


def test_authenticate_is_registered_as_the_devices_authenticator(app):
    ctx = app.extensions["mender"]
    assert ctx.authenticators["devices"] == ctx.services.devauth.authenticate
