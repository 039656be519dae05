"""Certification: evaluating policies against human distributions, beside baselines and frontier models."""

from valuemulch.certify._certificate import certificate_id, file_hashes, model_population
from valuemulch.certify._evaluate import HEADLINE, Evaluation, ItemScores, evaluate, score_policy, summarise_scores
from valuemulch.certify._signing import canonical_json, trusted_keys, verify_document

__all__ = [
    "HEADLINE",
    "Evaluation",
    "ItemScores",
    "canonical_json",
    "certificate_id",
    "evaluate",
    "file_hashes",
    "model_population",
    "score_policy",
    "summarise_scores",
    "trusted_keys",
    "verify_document",
]
