"""`train_and_save`: fit, save with provenance, and score on the dev split, as `valuemulch train` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuemulch.certify import evaluate
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy
from valuemulch.train import make_config
from valuemulch.train.pipeline import DEV_METRICS, train_and_save


@pytest.mark.data
def test_train_and_save_scores_the_saved_model_on_dev(us32, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = make_config("position-prior", testbed="us-32", out=tmp_path / "model", seed=5)
    saved = train_and_save(config, us32)
    assert saved.path == tmp_path / "model" and Policy.read_provenance(saved.path)["trained_on"]["testbed"] == "us-32"
    assert saved.trained.provenance["policy"] == "position-prior" and saved.trained.communities == us32.seen
    reloaded = evaluate(Policy.load(saved.path), us32.items("dev", "seen"), n_boot=200, seed=0)
    assert saved.dev == {m: reloaded.summaries[m].mean for m in DEV_METRICS}
    assert all(0 < v < 1 for v in saved.dev.values() if v is not None)


@pytest.mark.data
def test_train_and_save_needs_an_out_directory(us32) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="'out' is required"):
        train_and_save(make_config("position-prior", testbed="us-32"), us32)
