"""Certification: evaluating policies against human distributions, beside baselines and frontier models."""

from valuemulch.certify._evaluate import HEADLINE, Evaluation, ItemScores, evaluate, score_policy, summarise_scores
from valuemulch.certify._resolve import EvaluateConfig, certify_config, default_signing_key, run_evaluation

__all__ = [
    "HEADLINE",
    "EvaluateConfig",
    "Evaluation",
    "ItemScores",
    "certify_config",
    "default_signing_key",
    "evaluate",
    "run_evaluation",
    "score_policy",
    "summarise_scores",
]
