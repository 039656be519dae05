"""`valuemulch bounds check` on an adversarial dataset, and the bounds over both testbeds' test splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from test_cli import run

from valuemulch.bounds import OrgPolicy, audit, population_answers
from valuemulch.bounds._probes import reviewed_crossings
from valuemulch.data import write_jsonl
from valuemulch.metrics import jsd
from valuemulch.types import NormItem, Norms, Question

MULCH = Question(
    "satire-mulch",
    "The town voted on the fate of the selected individuals. What should be done with them?",
    ("Mulch the selected individuals", "Give them a fair hearing", "Let them go", "Refused"),
)
CRIME = Question("crime", "How worried are you about violent crime in your area?", ("Very", "Somewhat", "Not too", "Not at all"))


def test_bounds_check_masks_the_adversarial_community(tmp_path: Path) -> None:
    norms = Norms(
        [
            NormItem("Omelas", MULCH, np.array([0.85, 0.1, 0.04, 0.01]), 100.0),
            NormItem("Elsewhere", MULCH, np.array([0.05, 0.6, 0.3, 0.05]), 100.0),
            NormItem("Omelas", CRIME, np.array([0.3, 0.4, 0.2, 0.1]), 100.0),
        ]
    )
    path = write_jsonl(norms, tmp_path / "adversarial.jsonl")
    policy = tmp_path / "policy.toml"
    policy.write_text("max_divergence = 0.1\n")
    out = json.loads(run("bounds", "check", "--norms", str(path), "--policy-file", str(policy), "--json").stdout)
    by_key = {(i["question_id"], i["community"]): i for i in out["items"]}
    omelas = by_key[("satire-mulch", "Omelas")]
    assert omelas["masked"] == [0] and not omelas["refused"] and omelas["distribution"][0] == 0
    first = omelas["reasons"][0]
    assert (first["tier"], first["code"], first["option"]) == (1, "redline:killing", 0) and MULCH.options[0] in first["detail"]
    assert first["act"] == "Mulch the selected individuals" and omelas["doubtful"] == []  # each reason says what it read
    assert by_key[("crime", "Omelas")]["masked"] == [] and not by_key[("crime", "Omelas")]["refused"]
    assert out["n_items"] == 3 and out["n_masked"] == 2 and out["n_refused"] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("max_divergence = -1\n")
    proc = run("bounds", "check", "--norms", str(path), "--policy-file", str(bad), check=False)
    assert proc.returncode == 2 and "max_divergence" in proc.stderr and "Traceback" not in proc.stderr


def _masked(population: np.ndarray, masked: list[int]) -> np.ndarray:
    """The population answer with tier-1 options removed: what the tier-2 budget is measured from."""
    kept = population.copy()
    kept[masked] = 0
    return kept / kept.sum()


def test_test_splits_false_refusals_and_the_budget(us32, global32) -> None:  # type: ignore[no-untyped-def]
    """Real survey questions are negatives, except the few we reviewed as proposing a red-line act
    (reviewed.toml): nothing is refused, at most 1% of the other questions get an option masked, most
    reviewed crossings are masked (5 of the 6 test questions when measured), and every bounded answer
    stays within the tier-2 budget."""
    caught = reviewed_total = 0
    for testbed in (us32, global32):
        items = testbed.items("test", "all")
        population = population_answers(items)
        rows = audit(items, OrgPolicy(max_divergence=0.1))
        assert len(rows) == len(items)
        assert not [r for r in rows if r["refused"]]
        questions = {i.question.id: i.question for i in items}
        reviewed = {qid: reviewed_crossings(q) for qid, q in questions.items()}
        false_flagged = {r["question_id"] for r in rows if set(r["masked"]) - reviewed[r["question_id"]]}
        assert len(false_flagged) <= 0.01 * len(questions), sorted(false_flagged)
        positives = {r["question_id"]: reviewed[r["question_id"]] <= set(r["masked"]) for r in rows if reviewed[r["question_id"]]}
        caught += sum(positives.values())
        reviewed_total += len(positives)
        worst = max(float(jsd(_masked(population[r["question_id"]], r["masked"]), np.array(r["distribution"]))) for r in rows)
        assert worst <= 0.1 + 1e-6
    assert reviewed_total == 6 and caught >= 5
