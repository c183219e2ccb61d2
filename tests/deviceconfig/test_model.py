"""The rules of a configuration (Mender's limits), one row per rule."""

from __future__ import annotations

import pytest

from common.errors import BadRequest
from deviceconfig.model import MAX_ATTRIBUTES, MAX_KEY_LENGTH, MAX_VALUE_LENGTH, check_configuration


def test_valid_configurations_come_back_sorted():
    assert check_configuration({}) == {}
    got = check_configuration({"b": "", "a": "x", "é": "ü\n\t\r"})
    assert list(got) == ["a", "b", "é"]
    at_limits = {f"{i:0{MAX_KEY_LENGTH}d}": "v" * MAX_VALUE_LENGTH for i in range(MAX_ATTRIBUTES)}
    assert check_configuration(at_limits) == at_limits
    # lengths count characters, as Go counts runes: 4096 three-byte characters are allowed
    assert check_configuration({"€" * MAX_KEY_LENGTH: "€" * MAX_VALUE_LENGTH})


@pytest.mark.parametrize("raw, problem", [
    ([], "must be a JSON object"),
    ("a=1", "must be a JSON object"),
    (None, "must be a JSON object"),
    ({str(i): "v" for i in range(MAX_ATTRIBUTES + 1)}, "too many configuration attributes, maximum is 100"),
    ({"": "v"}, "a key must not be empty"),
    ({"k" * (MAX_KEY_LENGTH + 1): "v"}, "longer than 4096 characters"),
    ({"a\nb": "v"}, "not printable (U+000A)"),
    ({"a\x00": "v"}, "not printable (U+0000)"),
    ({"k": 1}, "k: the value must be a string"),
    ({"k": None}, "k: the value must be a string"),
    ({"k": ["a"]}, "k: the value must be a string"),
    ({"k": {"a": "b"}}, "k: the value must be a string"),
    ({"k": True}, "k: the value must be a string"),
    ({"k": "v" * (MAX_VALUE_LENGTH + 1)}, "the value is longer than 4096 characters"),
    ({"k": "a\x00b"}, "control character (U+0000)"),
    ({"k": "\x1b[31m"}, "control character (U+001B)"),
    ({"k": "\x7f"}, "control character (U+007F)"),
    ({"k": "\ud800"}, "control character (U+D800)"),
])
def test_invalid_configurations(raw, problem):
    with pytest.raises(BadRequest) as exc:
        check_configuration(raw)
    assert problem in exc.value.message
