"""The typed record: settings that forbid unknown keys, the schema version, and per-item re-scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from valuemulch.certify import (
    CertifyConfig,
    Evaluation,
    ItemScores,
    MetricSummary,
    evaluate,
    init_keys,
    read_records,
    rescore,
    sign_document,
    trusted_keys,
    verify,
)
from valuemulch.certify._records import records_bytes
from valuemulch.errors import ConfigError
from valuemulch.metrics import METRICS, score_items, summarise
from valuemulch.policies import make_policy
from valuemulch.types import NormItem, Norms, Question

EXAMPLE = Path(__file__).parents[2] / "fixtures" / "certificate_example.json"


def test_an_unknown_certify_setting_is_an_error_naming_it() -> None:
    with pytest.raises(ValidationError, match="n_bot"):
        CertifyConfig.model_validate({"testbed": "us-32", "policy_file": "policy.toml", "n_bot": 50})
    config = CertifyConfig.model_validate({"testbed": "us-32", "policy_file": "policy.toml", "n_boot": 50})
    assert config.n_boot == 50 and config.budgets == [0.05, 0.1, 0.2, 0.3, None]


def test_every_certify_setting_is_described() -> None:
    assert all(f.description for f in CertifyConfig.model_fields.values())


@pytest.mark.parametrize("schema", ["valuemulch.certificate/1", "valuemulch.certificate/3", None])
def test_verify_refuses_other_schema_versions(tmp_path: Path, schema: str | None) -> None:
    """Once its signature holds (a trusted key signed it), an unknown schema version is refused by name."""
    keys = init_keys(tmp_path / "keys")
    doc = json.loads(EXAMPLE.read_text())
    doc["schema"] = schema
    path = tmp_path / "certificate.json"
    path.write_text(json.dumps(sign_document(doc, keys.private)))
    with pytest.raises(ConfigError, match=r"unknown certificate schema .*reads valuemulch\.certificate/2 only"):
        verify(path, trusted_keys([keys.public]), tmp_path)


def _scores(rng: np.random.Generator, n_questions: int = 12, communities: tuple[str, ...] = ("a", "b", "c")) -> ItemScores:
    keys, gold, pred, ordinal = [], [], [], []
    for q in range(n_questions):
        k = 2 + q % 4
        positions = None if q % 3 == 0 else tuple(float(i) for i in range(k))
        for c in communities:
            keys.append((c, f"q{q}"))
            gold.append(rng.dirichlet(np.ones(k)))
            pred.append(rng.dirichlet(np.ones(k)))
            ordinal.append(positions)
    return ItemScores(keys, score_items(gold, pred, ordinal), gold=gold, pred=pred, ordinal=ordinal)


@pytest.mark.parametrize("metric", list(METRICS))
def test_a_metric_rescored_from_the_records_matches_the_aggregate(tmp_path: Path, metric: str) -> None:
    scores = _scores(np.random.default_rng(7))
    path = tmp_path / "items.jsonl"
    path.write_bytes(records_bytes(scores.records("seen") + _scores(np.random.default_rng(8)).records("baseline:other")))
    stored = summarise(
        scores.scores[metric],
        [k[0] for k in scores.keys],
        [k[1] for k in scores.keys],
        higher_is_better=METRICS[metric].higher_is_better,
        n_boot=200,
        seed=3,
    )
    assert rescore(read_records(path), "seen", metric, n_boot=200, seed=3) == MetricSummary.of(stored)


def test_rescore_names_what_exists() -> None:
    records = _scores(np.random.default_rng(0), n_questions=2).records("seen")
    with pytest.raises(ConfigError, match=r"wasserstein.*one_minus_jsd"):
        rescore(records, "seen", "wasserstein", n_boot=10, seed=0)
    with pytest.raises(ConfigError, match=r"'unseen'.*'seen'"):
        rescore(records, "unseen", "tv", n_boot=10, seed=0)


def test_evaluate_returns_a_typed_record_whose_items_rescore_to_its_metrics() -> None:
    rng = np.random.default_rng(1)
    questions = [Question(id=f"q{i}", text=f"text {i}", options=("a", "b", "c")[: 2 + i % 2]) for i in range(8)]
    norms = Norms([NormItem(c, q, rng.dirichlet(np.ones(q.n_options)), 100.0) for c in ("c1", "c2") for q in questions])
    result = evaluate(make_policy("position-prior").fit(norms), norms, compare=[make_policy("uniform").fit(norms)], n_boot=50)
    assert isinstance(result, Evaluation) and len(result.items) == result.n_items == 16
    for metric, stored in result.metrics.items():
        again = rescore(result.items, "evaluated", metric, n_boot=50, seed=0)
        assert (again.mean, again.ci, again.n) == (stored.mean, stored.ci, stored.n), metric
    Evaluation.model_validate(result.model_dump())  # the record round-trips through its own schema
    assert set(result.to_dict()["compared"]["uniform"]) == {
        "n_items", "oracle", "metrics", f"{result.policy}_on_same_items", "paired_difference",
    }  # fmt: skip
