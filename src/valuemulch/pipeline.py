"""The main job: train a policy on a testbed, certify it, and register it for deployment.

Each step is the same function the individual commands call; this module only chains them and
decides where things go under ``--out``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from valuemulch.certify import CERTIFICATE, CertifyConfig, Report, certify, default_key_dir, default_policy_file, init_keys
from valuemulch.data import load_testbed
from valuemulch.deploy import Entry, Registry
from valuemulch.errors import ConfigError
from valuemulch.policies import Progress
from valuemulch.training import train


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
    seed: int = 0,
    n_boot: int = 1000,
    key_dir: Path | None = None,
    registry: Registry | None = None,
    on_step: Callable[[str], None] | None = None,
    on_train: Progress | None = None,
) -> PipelineResult:
    """Train -> certify -> register. The signing key is created on first use (owner-only file)."""
    say = on_step or (lambda _msg: None)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty; choose a new directory.")
    key_dir = key_dir or default_key_dir()
    new_key = None
    if not (key_dir / "signing.key").exists():
        new_key = init_keys(key_dir).private
    seconds = {}
    t0 = time.perf_counter()
    say(f"training '{policy}' on {testbed_name}")
    testbed = load_testbed(testbed_name, data_root)
    trained = train(policy, testbed, seed=seed, progress=on_train)
    model_dir = trained.policy.save(out / "model", provenance=trained.provenance)
    seconds["train"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    config = CertifyConfig(testbed=testbed_name, policy_file=str(default_policy_file()), n_boot=n_boot, seed=seed)
    written = certify(model_dir, out / "certificate", config, data_root, key_dir / "signing.key", progress=say, testbed=testbed)
    seconds["certify"] = time.perf_counter() - t1
    say("registering")
    entry = (registry or Registry()).register(written.directory / CERTIFICATE)
    seconds["total"] = time.perf_counter() - t0
    return PipelineResult(model_dir, written.certificate, written.directory / CERTIFICATE, entry, seconds, new_key)
