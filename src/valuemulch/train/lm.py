"""The ``lm`` trainer: fit LMPolicy on a testbed's train split, with provenance."""

from __future__ import annotations

from valuemulch.data import Testbed
from valuemulch.policies import LMPolicy, Progress
from valuemulch.train._base import Trained, TrainingRun
from valuemulch.train.lm_config import LMConfig


def train_lm(config: LMConfig, *, progress: Progress | None = None, testbed: Testbed | None = None) -> Trained:
    """Fit the LM policy on the seen communities' train split (plus ``config.add_norms``); with
    ``lora_steps > 0`` that fine-tunes an adapter, else it only records the communities."""
    policy = LMPolicy(**config.policy_params())
    run = TrainingRun(config, testbed)
    policy.fit(run.norms, progress=progress)
    return run.finish(policy, "lm", encoder_id=None)
