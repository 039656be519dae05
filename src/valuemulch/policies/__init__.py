"""Policies: everything that predicts a community's distribution over a question's options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuemulch.policies._base import Policy, Progress, Rng, build, policy_class, policy_names, register
from valuemulch.policies._baselines import (
    MajorityPolicy,
    NoiseCeilingPolicy,
    OptionTextPriorPolicy,
    PooledOraclePolicy,
    PositionPriorPolicy,
    UniformPolicy,
)
from valuemulch.policies._encoder import EncoderPolicy
from valuemulch.policies._listing import describe_policies
from valuemulch.policies._lm import LOG_FILE, EvaluationLog, LMPolicy, Method, Steering, logging_to
from valuemulch.policies._params import parse_params
from valuemulch.policies._recorded import PREFIX as RECORDED_PREFIX
from valuemulch.policies._recorded import RecordedPolicy
from valuemulch.policies._stack import BACKBONES_HELP as STACK_BACKBONES_HELP
from valuemulch.policies._stack import StackPolicy
from valuemulch.policies._stack_math import outer_fold

__all__ = [
    "LOG_FILE",
    "RECORDED_PREFIX",
    "STACK_BACKBONES_HELP",
    "EncoderPolicy",
    "EvaluationLog",
    "LMPolicy",
    "MajorityPolicy",
    "Method",
    "NoiseCeilingPolicy",
    "OptionTextPriorPolicy",
    "Policy",
    "PooledOraclePolicy",
    "PositionPriorPolicy",
    "Progress",
    "RecordedPolicy",
    "Rng",
    "StackPolicy",
    "Steering",
    "UniformPolicy",
    "build",
    "describe_policies",
    "logging_to",
    "make_policy",
    "outer_fold",
    "parse_params",
    "policy_class",
    "policy_names",
    "register",
]


def make_policy(name: str, *, data_root: Path | None = None, **params: Any) -> Policy:
    """Build a policy by name; ``recorded:<model>/<method>/<task>`` needs the data root, and so does
    any policy with a ``data_root`` parameter (``stack``), which gets it unless ``params`` set it."""
    if name.startswith(RECORDED_PREFIX):
        return RecordedPolicy(run=name.removeprefix(RECORDED_PREFIX), data_root=str(data_root))
    if data_root is not None and "data_root" in policy_class(name)._param_names():
        params = {"data_root": str(data_root), **params}
    return build(name, **params)
