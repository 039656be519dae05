"""The certification rules read the typed record; a section without items still gives a verdict."""

from __future__ import annotations

import json
from pathlib import Path

from valuemulch.certify import Report, default_policy_file
from valuemulch.certify._rules import check_rules, load_rules

EXAMPLE = Path(__file__).parents[2] / "fixtures" / "certificate_example.json"


def test_a_missing_mean_fails_the_rule_instead_of_crashing() -> None:
    """A baseline with no scored items has a null mean; `_beats` used to raise TypeError formatting it."""
    report = Report.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    report.evaluation.baselines["option-text-prior"].metrics["one_minus_jsd"].mean = None
    verdict = check_rules(load_rules(default_policy_file()), report.evaluation, report.bounds, 1000)
    result = next(r for r in verdict.rules if r.id == "not-below-option-text-prior")
    assert not result.passed and "option-text-prior —" in result.detail and not verdict.certified
