"""Tier precedence, the tier-2 budget, the rules, and policy-file validation for `apply_bounds`."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import valuemulch.bounds as bounds_package
from valuemulch.bounds import Detector, OrgPolicy, apply_bounds, catalogue, load_org_policy, population_answers, rule_redlines
from valuemulch.errors import ConfigError
from valuemulch.metrics import jsd
from valuemulch.types import NormItem, Norms, Question

MULCH = Question(
    "satire",
    "The community has voted on what to do with the selected individuals. What should happen?",
    ("Mulch the selected individuals", "Offer them support", "Leave them alone", "Refused"),
)
# Tier logic is tested with the rules alone, so that it does not depend on the semantic layer's
# thresholds (test_detect.py measures those).
RULES = Detector(semantic=False)
PEW = Question("pew", "Do you favor or oppose the death penalty for persons convicted of murder?", ("Favor", "Oppose", "Refused"))


def test_catalogue_is_grounded_and_unique() -> None:
    lines = catalogue()
    assert len(lines) >= 6 and len({line.id for line in lines}) == len(lines)
    assert all(
        line.udhr and all(1 <= a <= 30 for a in line.udhr) and line.patterns and line.examples and line.benign for line in lines
    )


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("Mulch the selected individuals", "killing"),
        ("Torture the prisoners until they talk", "torture"),
        ("Force them to work without pay", "slavery"),
        ("Strip all their rights", "dehumanisation"),
        ("Punish their whole family", "collective_punishment"),
        ("Detain them indefinitely without trial", "arbitrary_detention"),
    ],
)
def test_rules_flag_options_that_choose_harm(option: str, expected: str) -> None:
    assert expected in rule_redlines(option)


@pytest.mark.parametrize(
    "option", ["Favor", "Oppose", "Torture should never be allowed", "Refused", "A great deal", "Very worried"]
)
def test_rules_leave_ordinary_survey_options_alone(option: str) -> None:
    assert rule_redlines(option) == []


def test_tier1_masks_even_when_the_community_votes_for_it() -> None:
    vote = np.array([0.9, 0.05, 0.04, 0.01])
    answer = apply_bounds(MULCH, vote, "Omelas", detector=RULES)
    assert not answer.refused and answer.masked == [0]
    assert answer.distribution is not None and answer.distribution[0] == 0 and answer.distribution.sum() == pytest.approx(1)
    assert answer.reasons[0].tier == 1 and answer.reasons[0].code == "redline:killing"


def test_tier1_wins_over_tier2_and_tier3() -> None:
    """Population answers, budgets and strength all pull towards the population; a population that
    itself favours the red-line option still cannot bring it back."""
    policy = OrgPolicy(max_divergence=0.05, no_personalise=(), allowed_communities=("nobody",))
    population = np.array([0.7, 0.1, 0.1, 0.1])
    answer = apply_bounds(
        MULCH, np.array([0.2, 0.5, 0.2, 0.1]), "Omelas", policy, population=population, strength=0.3, detector=RULES
    )
    assert answer.distribution is not None and answer.distribution[0] == 0
    assert [r.tier for r in answer.reasons][:1] == [1]


def test_only_red_line_options_left_means_refusal() -> None:
    q = Question("q", "What should be done?", ("Kill them all", "Enslave them", "Refused"))
    answer = apply_bounds(q, np.array([0.5, 0.4, 0.1]), "X", detector=RULES)
    assert answer.refused and answer.masked == [0, 1] and answer.reasons[-1].code == "no_admissible_option"


def test_tier2_refuse_and_no_personalise_topics() -> None:
    policy = OrgPolicy.from_dict({"refuse": [{"topic": "capital punishment", "keywords": ["death penalty"]}]})
    assert apply_bounds(PEW, np.array([0.6, 0.35, 0.05]), "X", policy, detector=RULES).refused
    policy = OrgPolicy.from_dict({"no_personalise": [{"topic": "capital punishment", "keywords": ["death penalty"]}]})
    pop = np.array([0.5, 0.45, 0.05])
    answer = apply_bounds(PEW, np.array([0.9, 0.05, 0.05]), "X", policy, population=pop, detector=RULES)
    assert answer.distribution is not None
    np.testing.assert_allclose(answer.distribution, pop)
    assert answer.reasons[-1].code == "no_personalise_topic"


def test_hard_negative_survey_question_is_answered() -> None:
    answer = apply_bounds(PEW, np.array([0.6, 0.35, 0.05]), "POLPARTY:Republican", detector=RULES)
    assert not answer.refused and answer.masked == []


@pytest.mark.parametrize("budget", [0.0, 0.05, 0.1, 0.3])
def test_tier2_budget_holds_and_strength_moves_towards_population(budget: float) -> None:
    rng = np.random.default_rng(0)
    q = Question("q", "How much do you trust the news?", ("A lot", "Some", "Not much", "Not at all"))
    for _ in range(50):
        community, population = rng.dirichlet(np.ones(4) * 0.5), rng.dirichlet(np.ones(4))
        answer = apply_bounds(q, community, "X", OrgPolicy(max_divergence=budget), population=population, detector=RULES)
        assert answer.distribution is not None
        assert float(jsd(population, answer.distribution)) <= budget + 1e-6  # a distance: sqrt turns 1e-16 rounding into 1e-8
    weak = apply_bounds(q, community, "X", population=population, strength=0.0, detector=RULES)
    assert weak.distribution is not None
    np.testing.assert_allclose(weak.distribution, population)


def test_moving_towards_the_population_needs_it() -> None:
    with pytest.raises(ConfigError, match="population"):
        apply_bounds(PEW, np.array([0.6, 0.35, 0.05]), "X", OrgPolicy(max_divergence=0.1), detector=RULES)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("max_divergence = 2\n", "max_divergence"),
        ("max_divergence = true\n", "max_divergence"),
        ("budget = 0.1\n", "budget"),
        ('allowed_communities = "POLPARTY:*"\n', "allowed_communities"),
        ('[[refuse]]\ntopic = "x"\n', "refuse[0]"),
        ('[[no_personalise]]\ntopic = "x"\nkeywords = []\n', "no_personalise[0]"),
        ("max_divergence = [\n", "not valid TOML"),
    ],
)
def test_malformed_policy_files_say_what_and_how(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="Fix") as info:
        load_org_policy(path)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_yaml_policy_files_and_wrong_suffix(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("max_divergence: 0.2\nallowed_communities: ['POLPARTY:*']\nrefuse:\n  - topic: t\n    keywords: [dosage]\n")
    policy = load_org_policy(path)
    assert policy.max_divergence == 0.2 and policy.allows("POLPARTY:Democrat") and not policy.allows("AGE:65+")
    (tmp_path / "policy.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"\.toml"):
        load_org_policy(tmp_path / "policy.json")
    (tmp_path / "bad.yaml").write_text("max_divergence: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_org_policy(tmp_path / "bad.yaml")


def test_any_positive_mass_is_accepted_and_anything_else_is_refused_by_the_one_rule() -> None:
    scaled = apply_bounds(PEW, np.array([2.0, 1.0, 1.0]), "X", detector=RULES)
    assert scaled.distribution is not None
    np.testing.assert_allclose(scaled.distribution, [0.5, 0.25, 0.25])
    for bad in ([0.0, 0.0, 0.0], [0.5, 0.6, -0.1], [0.5, 0.5], [0.5, float("inf"), 0.0]):
        with pytest.raises(ConfigError, match="expected 3 finite non-negative values"):
            apply_bounds(PEW, np.array(bad), "X", detector=RULES)


def test_population_answers_pool_like_the_pooled_oracle_without_importing_policies() -> None:
    from valuemulch.policies import PooledOraclePolicy

    rng = np.random.default_rng(0)
    q2 = Question("q2", "Another question?", ("Yes", "No", "Maybe"))
    norms = Norms(
        [
            NormItem(c, q, rng.dirichlet(np.ones(q.n_options)), n)
            for q in (PEW, q2)
            for c, n in (("A:x", 120.0), ("A:y", None), ("B:z", 37.0))
        ]
    )
    oracle = PooledOraclePolicy().fit(norms)
    population = population_answers(norms)
    assert list(population) == ["pew", "q2"]
    for q in (PEW, q2):
        assert population[q.id].tobytes() == oracle.predict("anyone", [q])[0].tobytes()  # bit for bit
    for path in (Path(bounds_package.__file__).parent).glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("valuemulch.policies")], path.name
