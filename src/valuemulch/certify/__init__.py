"""Certification: evaluating policies against human distributions, beside baselines and frontier models,
and the signed, typed record (`Report`) of what was evaluated and what it scored.
"""

from valuemulch.certify._certificate import file_hashes, model_population
from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._evaluate import HEADLINE, Evaluation, ItemScores, Refusals, evaluate, score_policy, summarise_scores
from valuemulch.certify._provenance import certificate_id
from valuemulch.certify._record import RECORDS_FILE, SCHEMA, ItemRecord, MetricSummary, Report
from valuemulch.certify._records import read_records, rescore
from valuemulch.certify._requery import DRIFT_TOLERANCE
from valuemulch.certify._resolve import EvaluateConfig, certify_config, default_signing_key, run_evaluation
from valuemulch.certify._rules import default_policy_file
from valuemulch.certify._run import CERTIFICATE, Verification, Written, certify, verify
from valuemulch.certify._signing import (
    PRIVATE_FILE,
    canonical_json,
    default_key_dir,
    init_keys,
    key_id,
    load_private_key,
    sign_document,
    trusted_keys,
    verify_document,
)
from valuemulch.certify._testbed_eval import CommunitySet, ItemSet, evaluate_on_testbed, fit_for_testbed, recorded_for

__all__ = [
    "CERTIFICATE",
    "DRIFT_TOLERANCE",
    "HEADLINE",
    "PRIVATE_FILE",
    "RECORDS_FILE",
    "SCHEMA",
    "CertifyConfig",
    "CommunitySet",
    "EvaluateConfig",
    "Evaluation",
    "ItemRecord",
    "ItemScores",
    "ItemSet",
    "MetricSummary",
    "Refusals",
    "Report",
    "Verification",
    "Written",
    "canonical_json",
    "certificate_id",
    "certify",
    "certify_config",
    "default_key_dir",
    "default_policy_file",
    "default_signing_key",
    "evaluate",
    "evaluate_on_testbed",
    "file_hashes",
    "fit_for_testbed",
    "init_keys",
    "key_id",
    "load_private_key",
    "model_population",
    "read_records",
    "recorded_for",
    "rescore",
    "run_evaluation",
    "score_policy",
    "sign_document",
    "summarise_scores",
    "trusted_keys",
    "verify",
    "verify_document",
]
