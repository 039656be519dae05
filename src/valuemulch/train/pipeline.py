"""The main job: train a policy on a testbed, certify it, and register it for deployment; and the
shorter chains `valuemulch train` and `adapt` run (fit, save, check).

Each step is the same function the individual commands call; this module only chains them and
decides where things go under ``--out``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuemulch.certify import (
    CERTIFICATE,
    PRIVATE_FILE,
    Report,
    certify,
    certify_config,
    default_key_dir,
    evaluate,
    init_keys,
)
from valuemulch.data import Testbed, load_testbed
from valuemulch.errors import ConfigError
from valuemulch.policies import Progress
from valuemulch.serve import Entry, Registry
from valuemulch.train import TrainConfig, Trained, adapt, make_config, train
from valuemulch.types import Norms

#: What `train_and_save` reports on the dev split: the first check of a fresh model.
DEV_METRICS = ("one_minus_jsd", "representativeness", "tv")


@dataclass
class PipelineResult:
    model_dir: Path
    certificate: Report
    certificate_path: Path
    entry: Entry
    seconds: dict[str, float]
    new_key: Path | None


def run_pipeline(
    testbed_name: str,
    out: Path,
    data_root: Path,
    *,
    policy: str = "encoder",
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    key_dir: Path | None = None,
    registry: Registry | None = None,
    on_step: Callable[[str], None] | None = None,
    on_train: Progress | None = None,
) -> PipelineResult:
    """Train ``policy`` (with hyper-parameter ``overrides``) -> certify -> register. The signing key is
    created on first use (owner-only file)."""
    say = on_step or (lambda _msg: None)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new directory.")
    key_dir = key_dir or default_key_dir()
    signing_key = key_dir / PRIVATE_FILE
    new_key = None if signing_key.exists() else init_keys(key_dir).private
    seconds = {}
    t0 = time.perf_counter()
    say(f"training '{policy}' on {testbed_name}")
    testbed = load_testbed(testbed_name, data_root)
    train_config = make_config(policy, overrides=overrides, testbed=testbed_name, seed=seed, data=data_root)
    trained = train(train_config, progress=on_train, testbed=testbed)
    model_dir = trained.policy.save(out / "model", provenance=trained.provenance)
    seconds["train"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    config = certify_config(model_dir, testbed=testbed_name, n_boot=n_boot, seed=seed)
    written = certify(model_dir, out / "certificate", config, data_root, signing_key, progress=say, testbed=testbed)
    seconds["certify"] = time.perf_counter() - t1
    say("registering")
    entry = (registry or Registry()).register(written.directory / CERTIFICATE)
    seconds["total"] = time.perf_counter() - t0
    return PipelineResult(model_dir, written.certificate, written.directory / CERTIFICATE, entry, seconds, new_key)


@dataclass
class SavedModel:
    """A trained or adapted policy as written to disk; ``dev`` holds its dev-split means (train only)."""

    path: Path
    trained: Trained
    dev: dict[str, float | None]


def train_and_save(config: TrainConfig, testbed: Testbed, *, progress: Progress | None = None) -> SavedModel:
    """Train as ``config`` says (see `train`), save the model to ``config.out`` and score it on the dev
    split. The dev scores use 200 resamples, seed 0: a quick look, not a certificate.
    """
    if config.out is None:
        raise ConfigError(f"{type(config).__name__}: 'out' is required to save the model; pass --out DIR.")
    trained = train(config, progress=progress, testbed=testbed)
    path = trained.policy.save(config.out, provenance=trained.provenance)
    dev = evaluate(trained.policy, testbed.items("dev", "seen"), n_boot=200, seed=0)
    return SavedModel(path, trained, {m: dev.summaries[m].mean for m in DEV_METRICS})


def adapt_and_save(
    model_dir: Path,
    community: str,
    norms: Norms,
    out: Path,
    *,
    source: str = "",
    k: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
) -> SavedModel:
    """Onboard ``community`` into the saved model from ``k`` of its answers in ``norms`` (see `adapt`;
    ``source`` says where they came from) and save the result to ``out``; the base model stays as it was."""
    trained = adapt(model_dir, community, norms, k=k, seed=seed, source=source, progress=progress)
    return SavedModel(trained.policy.save(out, provenance=trained.provenance), trained, {})
