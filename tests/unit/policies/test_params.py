"""`parse_params`: ``key=value`` overrides, typed as JSON where they parse."""

from __future__ import annotations

import pytest

from valuemulch.errors import ConfigError
from valuemulch.policies import build, parse_params


def test_values_are_json_where_they_parse_else_text() -> None:
    params = parse_params(["epochs=40", "lr=0.5", "freeze=true", "backbone=minilm", "note=a=b", "empty="])
    assert params == {"epochs": 40, "lr": 0.5, "freeze": True, "backbone": "minilm", "note": "a=b", "empty": ""}
    assert type(params["epochs"]) is int


def test_later_pairs_win() -> None:
    assert parse_params(["epochs=3", "epochs=5"]) == {"epochs": 5}


@pytest.mark.parametrize("pair", ["epochs", "=3"])
def test_a_pair_without_key_or_equals_is_refused(pair: str) -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_params([pair])


def test_parsed_params_build_a_policy() -> None:
    assert build("encoder", **parse_params(["epochs=3", "hidden=64"])).get_params()["epochs"] == 3
