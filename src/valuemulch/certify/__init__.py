"""Certification: evaluating policies against human distributions, beside baselines and frontier models."""

from valuemulch.certify._certificate import certificate_id, file_hashes, model_population
from valuemulch.certify._evaluate import HEADLINE, Evaluation, ItemScores, evaluate, score_policy, summarise_scores
from valuemulch.certify._resolve import EvaluateConfig, certify_config, default_signing_key, run_evaluation
from valuemulch.certify._signing import canonical_json, trusted_keys, verify_document

__all__ = [
    "HEADLINE",
    "EvaluateConfig",
    "Evaluation",
    "ItemScores",
    "canonical_json",
    "certificate_id",
    "certify_config",
    "default_signing_key",
    "evaluate",
    "file_hashes",
    "model_population",
    "run_evaluation",
    "score_policy",
    "summarise_scores",
    "trusted_keys",
    "verify_document",
]
