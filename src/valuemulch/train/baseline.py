"""The baseline trainer: fit a reference policy (or a recorded run) on a testbed's train split."""

from __future__ import annotations

from valuemulch.data import Testbed
from valuemulch.policies import make_policy
from valuemulch.train._base import Trained, TrainingRun
from valuemulch.train.baseline_config import BaselineConfig


def train_baseline(config: BaselineConfig, *, testbed: Testbed | None = None) -> Trained:
    """Fit ``config.policy`` on the seen communities' train split (plus ``config.add_norms``)."""
    run = TrainingRun(config, testbed)
    params = {} if config.per_community is None else {"per_community": config.per_community}
    policy = make_policy(config.policy, data_root=run.testbed.data_root, **params)
    policy.fit(run.norms)
    return run.finish(policy, config.policy, encoder_id=None)
