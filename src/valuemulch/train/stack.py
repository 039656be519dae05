"""The stack trainer: backbones and the community layer fitted on a testbed's train split."""

from __future__ import annotations

from valuemulch.data import Testbed
from valuemulch.policies import make_policy
from valuemulch.train._base import Trained, TrainingRun
from valuemulch.train.stack_config import StackConfig


def train_stack(config: StackConfig, *, testbed: Testbed | None = None) -> Trained:
    """Fit ``stack`` on the seen communities' train split; a named backbone that answers none of it is refused."""
    run = TrainingRun(config, testbed)
    policy = make_policy("stack", data_root=run.testbed.data_root, backbones=config.backbones, inner_folds=config.inner_folds)
    policy.fit(run.norms)
    return run.finish(policy, "stack", encoder_id=None)
