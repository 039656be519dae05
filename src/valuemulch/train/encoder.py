"""The ``encoder`` trainer: fit EncoderPolicy on a testbed's train split, with provenance."""

from __future__ import annotations

from valuemulch.data import Testbed
from valuemulch.policies import EncoderPolicy, Progress
from valuemulch.train._base import Trained, TrainingRun
from valuemulch.train.encoder_config import EncoderConfig


def train_encoder(config: EncoderConfig, *, progress: Progress | None = None, testbed: Testbed | None = None) -> Trained:
    """Fit the encoder policy on the seen communities' train split (plus ``config.add_norms``).

    ``testbed``: the loaded testbed, when the caller has it already (else it is loaded from the config).
    """
    policy = EncoderPolicy(**config.policy_params())
    run = TrainingRun(config, testbed)
    policy.fit(run.norms, progress=progress)
    return run.finish(policy, "encoder", encoder_id=policy.encoder_id_)
