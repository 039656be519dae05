"""`stack` over recorded runs: replayed from the data root given at predict time, cross-fitted without
lookup, deterministic, and refusing a backbone that answers nothing it is fitted on.

The data roots are GlobalOpinionQA-shaped fixtures written here: questions with two countries' shares
and recorded runs whose file ``i.json`` answers for the i-th country.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from valuemulch.certify._crossfit import cross_fit, question_fold
from valuemulch.data import frontier_targets, load_recorded
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy, StackPolicy
from valuemulch.types import NormItem, Norms

COUNTRIES = ("France", "Japan")
LETTERS = "ABC"
N_QUESTIONS = 24


def _letters(p: np.ndarray) -> str:
    return repr({LETTERS[j]: round(float(v), 6) for j, v in enumerate(p)})


def _root(path: Path, run_seed: int) -> Path:
    """Questions whose human shares a 'good' run tracks (with noise) and a 'bad' run does not."""
    rng = np.random.default_rng(0)
    shares = {f"Question {k}: is option one best?": rng.dirichlet(np.ones(3), size=len(COUNTRIES)) for k in range(N_QUESTIONS)}
    data = {
        text: {
            "MC_options": "['One', 'Two', 'Three']",
            "countries": repr(list(COUNTRIES)),
            **{c: repr(s[i].round(6).tolist()) for i, c in enumerate(COUNTRIES)},
        }
        for text, s in shares.items()
    }
    (path / "distributional_alignment/Global_Values/data").mkdir(parents=True)
    (path / "distributional_alignment/Global_Values/data/data.json").write_text(json.dumps(data), encoding="utf-8")
    run_rng = np.random.default_rng(run_seed)
    for method, noise in (("express_distribution", 0.3), ("sequence", 3.0)):
        run = path / f"distributional_alignment/results/globalvalues/{method}/m1/task1/globalvalues"
        run.mkdir(parents=True)
        for i, _ in enumerate(COUNTRIES):
            out = {}
            for text, s in shares.items():
                target = s[i].round(6)
                guess = np.exp(np.log(np.maximum(target, 1e-3)) + noise * run_rng.normal(size=3))
                out[text] = {"avg_actual_results": _letters(guess / guess.sum()), "expected_results": _letters(target)}
            (run / f"{i}.json").write_text(json.dumps(out), encoding="utf-8")
    return path


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    """Two data roots with the same questions and human shares, and different recorded outputs."""
    return _root(tmp_path / "a", 1), _root(tmp_path / "b", 2)


def _stack(root: Path, backbones: str = "recorded:*,uniform") -> StackPolicy:
    return StackPolicy(backbones=backbones, data_root=str(root), inner_folds=3)


def test_the_layer_trusts_the_run_that_tracks_the_humans(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    stack = _stack(root).fit(frontier_targets(root))
    weights = stack.layer_.weights if stack.layer_.config.pooling != "single" else {}
    good = "recorded:m1/express_distribution/task1@globalopinionqa"
    assert good in stack.layer_.backbones
    assert (
        (stack.layer_.config.pooling == "single"
        and stack.layer_.config.ranking[0] == good)
        or max(weights, key=weights.get) == good
    )


def test_a_saved_layer_replays_the_runs_of_the_root_it_is_given(roots: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = roots
    norms = frontier_targets(a)
    stack = _stack(a).fit(norms)
    stack.save(tmp_path / "model")
    loaded = Policy.load(tmp_path / "model")
    question = next(iter(norms)).question
    before = loaded.predict("France", [question])[0]
    np.testing.assert_allclose(before, stack.predict("France", [question])[0])
    loaded.use_data_root(b)
    after = loaded.predict("France", [question])[0]
    assert not np.allclose(before, after)
    replayed = {m.label: m for m in loaded.models_}["recorded:m1/express_distribution/task1@globalopinionqa"]
    np.testing.assert_allclose(
        replayed.predict("France", [question])[0], load_recorded(b, replayed.run).predict("France", question.id)
    )


def test_a_named_backbone_that_answers_no_fitted_item_is_refused(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    items = list(frontier_targets(root))
    unseen = Norms(
        [NormItem("Nowhere", i.question, i.distribution) for i in items if i.community == COUNTRIES[0]]
    )  # no run answers "Nowhere"
    with pytest.raises(ConfigError, match="--cross-fit"):
        _stack(root, "recorded:m1/express_distribution/task1@globalopinionqa,uniform").fit(unseen)


def _scrambled(norms: Norms, questions: set[str]) -> Norms:
    rng = np.random.default_rng(7)
    return Norms(
        [
            NormItem(
                i.community,
                i.question,
                rng.dirichlet(np.ones(i.question.n_options)) if i.question.id in questions else i.distribution,
            )
            for i in norms
        ]
    )


def test_cross_fitting_never_reads_the_predicted_folds_human_data(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    norms = frontier_targets(root)
    fold0 = {i.question.id for i in norms if question_fold(i.question, 3, 0) == 0}
    assert 0 < len(fold0) < N_QUESTIONS
    first = cross_fit(_stack(root), Norms(), norms, folds=3)
    again = cross_fit(_stack(root), Norms(), _scrambled(norms, fold0), folds=3)
    changed = 0
    for item in norms:
        p, q = (f.predict(item.community, [item.question])[0] for f in (first, again))
        if item.question.id in fold0:
            np.testing.assert_array_equal(p, q)
        else:
            changed += not np.array_equal(p, q)
    assert changed > 0  # the other folds' layers did learn from the scrambled fold


def test_cross_fitting_is_deterministic_for_a_seed_and_folds_follow_it(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    norms = frontier_targets(root)
    a, b = (cross_fit(_stack(root), Norms(), norms, folds=3, seed=0) for _ in range(2))
    other = cross_fit(_stack(root), Norms(), norms, folds=3, seed=1)
    assert a.plan == b.plan and a.plan != other.plan
    for item in norms:
        np.testing.assert_array_equal(
            a.predict(item.community, [item.question])[0], b.predict(item.community, [item.question])[0]
        )
    assert set(a.plan.fold_of) == {i.question.id for i in norms}


def test_cross_fitting_needs_a_stack_and_two_folds(roots: tuple[Path, Path]) -> None:
    root, _ = roots
    norms = frontier_targets(root)
    with pytest.raises(ConfigError, match="--policy stack"):
        cross_fit(Policy.__new__(Policy), Norms(), norms, folds=3)
    with pytest.raises(ConfigError, match="K >= 2"):
        cross_fit(_stack(root), Norms(), norms, folds=1)


def test_a_backbone_takes_parameters_and_keeps_its_label_through_save(roots: tuple[Path, Path], tmp_path: Path) -> None:
    """``name(key=value;...)`` builds a backbone with parameters (how `lm(steering=few-shot)` is pooled);
    the layer knows it by that text, so two settings of one policy are two backbones."""
    root, _ = roots
    norms = frontier_targets(root)
    stack = _stack(root, "position-prior(per_community=false),position-prior,recorded:*").fit(norms)
    assert stack.labels_[:2] == ["position-prior(per_community=false)", "position-prior"]
    assert stack.models_[0].per_community is False and stack.models_[1].per_community is True
    stack.save(tmp_path / "model")
    loaded = Policy.load(tmp_path / "model")
    assert loaded.labels_ == stack.labels_
    question = next(iter(norms)).question
    np.testing.assert_array_equal(loaded.predict("Japan", [question])[0], stack.predict("Japan", [question])[0])
    for bad in ("position-prior(per_community=false", "position-prior)x(", "(per_community=false)"):
        with pytest.raises(ConfigError, match="backbone"):
            _stack(root, bad).fit(norms)


def test_cross_fitting_a_saved_layer_adds_the_runs_it_left_out(roots: tuple[Path, Path]) -> None:
    """A `recorded:*` layer fitted where no run answers (the train split) pools the rest alone; cross-
    fitting it (certify --cross-fit) refits each fold over every recorded run as well."""
    root, _ = roots
    items = list(frontier_targets(root))
    elsewhere = Norms([NormItem("Nowhere", i.question, i.distribution) for i in items if i.community == COUNTRIES[0]])
    saved = _stack(root).fit(elsewhere)
    assert list(saved.layer_.backbones) == ["uniform"]
    fitted = cross_fit(saved, Norms(), Norms(items), folds=3)
    for summary in fitted.summaries():
        assert "recorded:m1/express_distribution/task1@globalopinionqa" in summary["backbones"]
    assert list(saved.layer_.backbones) == ["uniform"]  # the saved layer itself is untouched
