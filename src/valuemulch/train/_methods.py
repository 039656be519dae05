"""Which config and trainer a policy name takes, and ``train(config)`` that runs the right one."""

from __future__ import annotations

from typing import Any

from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.policies import RECORDED_PREFIX, Progress, policy_class
from valuemulch.train._base import Trained, _PolicyConfig
from valuemulch.train.baseline import train_baseline
from valuemulch.train.baseline_config import BaselineConfig
from valuemulch.train.encoder import train_encoder
from valuemulch.train.encoder_config import EncoderConfig
from valuemulch.train.lm import train_lm
from valuemulch.train.lm_config import LMConfig
from valuemulch.train.stack import train_stack
from valuemulch.train.stack_config import StackConfig

CONFIGS: dict[str, type[_PolicyConfig]] = {"encoder": EncoderConfig, "lm": LMConfig, "stack": StackConfig}

TrainConfig = EncoderConfig | LMConfig | StackConfig | BaselineConfig


def config_class(policy: str) -> type[_PolicyConfig]:
    """The config of the method that trains ``policy``; oracles are refused (they read every item's
    human data, so they are references for `valuemulch evaluate`, not something to deploy)."""
    if policy in CONFIGS:
        return CONFIGS[policy]
    if not policy.startswith(RECORDED_PREFIX) and policy_class(policy).oracle:
        raise ConfigError(
            f"'{policy}' is an oracle (it reads the evaluated questions' human data); it is a reference for "
            "`valuemulch evaluate`, not something to train and deploy."
        )
    return BaselineConfig


def make_config(policy: str, *, overrides: dict[str, Any] | None = None, **run: Any) -> TrainConfig:
    """The config for training ``policy``: the run's fields (testbed, out, seed, ...) with the
    hyper-parameter ``overrides`` on top (they win, ``seed`` included); an unknown key is named with
    the valid ones."""
    cls = config_class(policy)
    overrides = dict(overrides or {})
    valid = cls.hyperparameters()
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(
            f"Unknown hyper-parameter {', '.join(repr(k) for k in unknown)} for the '{policy}' policy "
            f"(--set key=value); valid keys: {valid}."
        )
    values = {**run, **overrides, **({"policy": policy} if cls is BaselineConfig else {})}
    return cls.parse(values)  # type: ignore[return-value]


def train(config: TrainConfig, *, progress: Progress | None = None, testbed: Testbed | None = None) -> Trained:
    """Run the trainer of the config's method."""
    if isinstance(config, EncoderConfig):
        return train_encoder(config, progress=progress, testbed=testbed)
    if isinstance(config, LMConfig):
        return train_lm(config, progress=progress, testbed=testbed)
    if isinstance(config, StackConfig):
        return train_stack(config, testbed=testbed)
    return train_baseline(config, testbed=testbed)
