"""The training configs: every field described, the same defaults as the policies, the CLI's help
taken from them, and errors that name the field, what it allows and what came."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
import typer
from pydantic import BaseModel

from valuemulch.cli import app
from valuemulch.errors import ConfigError
from valuemulch.policies import EncoderPolicy, LMPolicy
from valuemulch.train import BaselineConfig, DetectorConfig, EncoderConfig, LMConfig, config_class, make_config

CONFIGS: list[type[BaseModel]] = [EncoderConfig, LMConfig, BaselineConfig, DetectorConfig]


def _options(*path: str) -> dict[str, Any]:
    """The options of ``valuemulch <path>`` by parameter name, as the CLI builds them."""
    command: Any = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {p.name: p for p in command.params if p.name}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_a_description(config: type[BaseModel]) -> None:
    missing = [name for name, field in config.model_fields.items() if not (field.description or "").strip()]
    assert not missing, f"{config.__name__}: fields without Field(description=...): {missing}"


@pytest.mark.parametrize(("config", "policy"), [(EncoderConfig, EncoderPolicy), (LMConfig, LMPolicy)])
def test_hyperparameters_are_the_policys_own_with_its_defaults(config: type[EncoderConfig], policy: type[Any]) -> None:
    signature = inspect.signature(policy.__init__).parameters
    params = {n: p.default for n, p in signature.items() if n != "self"}
    assert sorted(config.hyperparameters()) == sorted(params)
    defaults = config(testbed="us-32").model_dump()
    assert {n: defaults[n] for n in params} == params


def test_train_options_take_their_help_from_the_config() -> None:
    options = _options("train")
    shared = set(EncoderConfig.RUN_FIELDS) | {"seed"}
    assert shared <= set(options), sorted(shared - set(options))
    for name in shared:
        for config in (EncoderConfig, LMConfig, BaselineConfig):
            assert getattr(options[name], "help", None) == config.model_fields[name].description, (config.__name__, name)


def test_bounds_train_has_one_option_per_field_with_its_help_and_default() -> None:
    options = _options("bounds", "train")
    assert set(DetectorConfig.model_fields) <= set(options)
    for name, field in DetectorConfig.model_fields.items():
        assert getattr(options[name], "help", None) == field.description, name
        if name != "out":  # required on the command line
            assert options[name].default == field.default, name


def test_unknown_set_key_names_it_and_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as err:
        make_config("encoder", testbed="us-32", overrides={"epochz": 3})
    message = str(err.value)
    assert "'epochz'" in message and "valid keys" in message
    assert all(f"'{key}'" in message for key in EncoderConfig.hyperparameters())


def test_run_fields_are_not_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="'testbed'"):
        make_config("encoder", testbed="us-32", overrides={"testbed": "global-32"})


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"epochs": 0}, ("'epochs' field of EncoderConfig", "> 0", "got 0")),
        ({"dropout": 1.5}, ("'dropout'", "< 1", "got 1.5")),
        ({"hidden": "wide"}, ("'hidden'", "an integer", "got 'wide'")),
        ({"joint": "maybe"}, ("'joint'", "true or false", "got 'maybe'")),
    ],
)
def test_bad_values_name_field_allowed_and_got(overrides: dict[str, Any], needles: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as err:
        make_config("encoder", testbed="us-32", overrides=overrides)
    assert all(n in str(err.value) for n in needles), str(err.value)


def test_cross_field_and_choice_checks() -> None:
    with pytest.raises(ConfigError, match="'method' field of LMConfig must be one of 'logprobs', 'verbalized' or 'sampled'"):
        make_config("lm", testbed="us-32", overrides={"method": "greedy"})
    with pytest.raises(ConfigError, match="lora_steps=0 when base_url is set"):
        make_config("lm", testbed="us-32", overrides={"lora_steps": 5, "base_url": "http://localhost:8000/v1"})
    with pytest.raises(ConfigError, match=r"'testbed' field .* one of \['global-32', 'us-32'\].*got 'us-33'"):
        make_config("encoder", testbed="us-33")
    with pytest.raises(ConfigError, match="per_community unset unless"):
        make_config("uniform", testbed="us-32", overrides={"per_community": False})
    with pytest.raises(ConfigError, match="has no field 'epochz'"):
        EncoderConfig.parse({"testbed": "us-32", "epochz": 3})
    with pytest.raises(ConfigError, match="'head_init' field of DetectorConfig must be one of 'lr' or 'zero'; got 'ones'"):
        DetectorConfig.parse({"head_init": "ones"})


def test_policy_names_pick_their_method() -> None:
    assert config_class("encoder") is EncoderConfig and config_class("lm") is LMConfig
    assert config_class("option-text-prior") is BaselineConfig and config_class("recorded:x/y/z") is BaselineConfig
    with pytest.raises(ConfigError, match="oracle"):
        config_class("pooled-oracle")
    with pytest.raises(ConfigError, match="valuemulch policies"):
        config_class("unifrom")
    assert make_config("option-text-prior", testbed="us-32", seed=3, overrides={"per_community": False}).model_dump() == {
        "seed": 3, "out": None, "testbed": "us-32", "data": None, "add_norms": None, "policy": "option-text-prior",
        "per_community": False,
    }  # fmt: skip
    assert make_config("encoder", testbed="us-32", seed=3, overrides={"seed": 5}).seed == 5  # --set wins, as before


def test_detector_defaults_are_the_shipped_run() -> None:
    """The shipped file's metadata records the config it was trained with: the defaults are it."""
    from safetensors import safe_open

    from valuemulch.bounds import Detector

    adapter = Detector().adapter
    assert adapter is not None
    with safe_open(str(adapter), framework="pt") as f:
        meta = f.metadata()
    config = DetectorConfig()
    assert meta["config"] == json.dumps(config.training_config())
    assert meta["run"] == config.run_label() == "lora8 seed 0"
