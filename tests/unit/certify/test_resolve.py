"""`EvaluateConfig` refuses bad options before any work, `run_evaluation` evaluates a saved model on a
data file, and `certify_config` fills in the testbed the model was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from valuemulch.certify import EvaluateConfig, certify_config, default_signing_key, run_evaluation
from valuemulch.data import read_norms
from valuemulch.errors import ConfigError
from valuemulch.policies import build

FIXTURES = Path(__file__).parents[2] / "fixtures"
NORMS = FIXTURES / "opinionqa"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"testbed": "us-32"}, "exactly one of --policy NAME or --model DIR"),
        ({"testbed": "us-32", "policy": "uniform", "model": Path("m")}, "exactly one of --policy NAME or --model DIR"),
        ({"policy": "uniform"}, "exactly one of --testbed NAME or --norms PATH"),
        ({"policy": "uniform", "testbed": "us-32", "split": "val"}, "--split must be one of ['train', 'dev', 'test'], got 'val'"),
        ({"policy": "uniform", "testbed": "us-32", "items": "x"}, "--items must be 'all' or 'frontier', got 'x'"),
        ({"policy": "uniform", "testbed": "us-32", "communities": "x"}, "--communities must be seen, unseen or all, got 'x'"),
        ({"policy": "uniform", "testbed": "us-32", "refusals": "x"}, "--refusals must be 'keep' or 'drop', got 'x'"),
        ({"policy": "uniform", "norms": NORMS}, "--norms evaluates a saved model"),
    ],
)
def test_bad_options_are_refused_on_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        EvaluateConfig(**options)
    assert message in str(err.value)


def test_a_saved_model_on_a_data_file_needs_no_data_directory(tmp_path: Path) -> None:
    norms = read_norms(NORMS)
    model = build("option-text-prior").fit(norms).save(tmp_path / "model")
    config = EvaluateConfig(model=model, norms=NORMS, n_boot=20, seed=3, refusals="drop", data=tmp_path / "no-such-data")
    result = run_evaluation(config).to_dict()
    assert result["n_items"] == len(norms) and result["policy"] == str(model)
    assert result["norms"] == str(NORMS) and result["refusals"] == "drop" and result["n_boot"] == 20 and result["seed"] == 3


def test_certify_defaults_to_the_testbed_the_model_names(tmp_path: Path) -> None:
    norms = read_norms(NORMS)
    model = build("uniform").fit(norms).save(tmp_path / "model", provenance={"trained_on": {"testbed": "global-32"}})
    config = certify_config(model, n_boot=50, seed=2, adapt_k=4)
    assert (config.testbed, config.n_boot, config.seed, config.adapt_k) == ("global-32", 50, 2, 4)
    assert Path(config.policy_file).name == "policy.toml" and Path(config.policy_file).is_file()  # the shipped rules
    rules = tmp_path / "rules.toml"
    assert certify_config(model, testbed="us-32", policy_file=rules).testbed == "us-32"
    assert certify_config(model, testbed="us-32", policy_file=rules).policy_file == str(rules)


def test_certify_without_a_testbed_anywhere_is_refused(tmp_path: Path) -> None:
    model = build("uniform").fit(read_norms(NORMS)).save(tmp_path / "model")
    with pytest.raises(ConfigError, match="does not say which testbed"):
        certify_config(model)


def test_the_default_signing_key_follows_the_keys_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEMULCH_KEYS", str(tmp_path / "keys"))
    assert default_signing_key() == tmp_path / "keys" / "signing.key"
