"""The community layer's numerical core on synthetic data where the right answer is known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valuemulch.policies._stack_cv import Grid, choose_by_inner_cv, cross_fit, fit_stack
from valuemulch.policies._stack_math import Calibration, Item, Layer, LayerConfig, fit_layer, fold_of, mean_tv

SMALL = Grid(weight_l2=(1e-2,), shrink=(None,), objectives=("ce",), n_folds=4)


def _world(
    n_questions: int = 30, communities: tuple[str, ...] = ("a", "b", "c"), seed: int = 0
) -> tuple[list[Item], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    items, targets = [], []
    for q in range(n_questions):
        k = int(rng.integers(3, 6))
        for c in communities:
            items.append(Item(c, f"q{q}", k, fold_key=f"text of question {q}"))
            targets.append(0.8 * rng.dirichlet(np.full(k, 2.0)) + 0.2 / k)
    return items, targets


def _noisy(targets: list[np.ndarray], scale: float, seed: int) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    out: list[np.ndarray | None] = []
    for t in targets:
        p = t * np.exp(scale * rng.normal(size=len(t)))
        out.append(p / p.sum())
    return out


def _junk(targets: list[np.ndarray], seed: int) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    return [rng.dirichlet(np.full(len(t), 0.5)) for t in targets]


def _tv(pred: list[np.ndarray], targets: list[np.ndarray]) -> float:
    return float(np.mean([0.5 * np.abs(p - t).sum() for p, t in zip(pred, targets, strict=True)]))


def test_calibration_recovers_a_known_temperature() -> None:
    items, targets = _world()
    sharp = [t**2 / (t**2).sum() for t in targets]  # the truth at temperature 1/2
    layer = fit_layer(items, {"sharp": sharp}, targets, LayerConfig("single", ranking=("sharp",)))
    assert layer.calibrations[0].temperature == pytest.approx(2.0, rel=0.02)
    assert _tv(layer.predict(items, {"sharp": sharp}), targets) < 0.01


def test_position_bias_is_learned_where_the_backbone_is_skewed() -> None:
    items, targets = _world(seed=1)
    skewed = []
    for t in targets:
        p = t * np.exp(np.r_[1.0, np.zeros(len(t) - 1)])  # favours the first option
        skewed.append(p / p.sum())
    plain = fit_layer(items, {"s": skewed}, targets, LayerConfig("single", ranking=("s",)))
    biased = fit_layer(items, {"s": skewed}, targets, LayerConfig("single", ranking=("s",), position_bias=("s",), bias_l2=1e-4))
    bias = biased.calibrations[0].bias  # identified up to a constant: compare positions
    assert bias[0] - bias[1] == pytest.approx(-1.0, abs=0.1) and bias[2] - bias[1] == pytest.approx(0.0, abs=0.1)
    assert _tv(biased.predict(items, {"s": skewed}), targets) < 0.5 * _tv(plain.predict(items, {"s": skewed}), targets)
    choice = choose_by_inner_cv(items, {"s": skewed}, targets, SMALL)
    assert choice.config.position_bias == ("s",)


@pytest.mark.parametrize("pooling", ["linear", "loglinear"])
def test_weights_favour_the_good_backbone(pooling: str) -> None:
    items, targets = _world()
    preds = {"good": _noisy(targets, 0.2, 1), "junk": _junk(targets, 2)}
    layer = fit_layer(items, preds, targets, LayerConfig(pooling, weight_l2=1e-5))  # type: ignore[arg-type]
    assert layer.weights["good"] > 0.9
    assert _tv(layer.predict(items, preds), targets) < _tv(preds["good"], targets)  # type: ignore[arg-type]


def test_pooling_two_independent_noisy_backbones_beats_either() -> None:
    items, targets = _world(n_questions=40)
    preds = {"x": _noisy(targets, 0.4, 1), "y": _noisy(targets, 0.4, 2)}
    layer = fit_stack(items, preds, targets, SMALL)
    assert layer.config.pooling in ("linear", "loglinear")
    assert layer.weights["x"] == pytest.approx(0.5, abs=0.1)
    pooled, alone = cross_fit(items, preds, targets, SMALL)[0], min(_tv(p, targets) for p in preds.values())  # type: ignore[arg-type]
    assert _tv(pooled, targets) < alone


def test_falls_back_to_the_single_backbone_when_pooling_cannot_help() -> None:
    items, targets = _world()
    preds = {"truth": list(targets), "junk": _junk(targets, 3)}
    choice = choose_by_inner_cv(items, preds, targets, SMALL)
    assert choice.config.pooling == "single" and choice.config.ranking[0] == "truth"
    assert choice.cv_tv["single:truth"] < 1e-3


def test_a_silent_backbone_only_renormalises_the_weights() -> None:
    items, targets = _world()
    preds: dict[str, list[np.ndarray | None]] = {
        "x": _noisy(targets, 0.3, 1),
        "y": _noisy(targets, 0.3, 2),
        "z": _noisy(targets, 0.5, 3),
    }
    layer = fit_layer(items, preds, targets, LayerConfig("linear"))
    silent = dict(preds, z=[None if j % 2 else p for j, p in enumerate(preds["z"])])
    got = layer.predict(items, silent)
    q = {
        b: [c.apply(np.asarray(p)[None], np.ones((1, len(p)), bool))[0] for p in preds[b]]
        for b, c in zip(layer.backbones, layer.calibrations, strict=True)
    }  # type: ignore[arg-type]
    w = layer.weights
    for j in range(1, len(items), 2):
        expect = (w["x"] * q["x"][j] + w["y"] * q["y"][j]) / (w["x"] + w["y"])
        np.testing.assert_allclose(got[j], expect, atol=1e-12)
    full = layer.predict(items, preds)
    for j in range(0, len(items), 2):
        np.testing.assert_allclose(got[j], full[j], atol=1e-12)


def test_community_weights_go_to_the_shared_ones_as_the_strength_grows() -> None:
    items, targets = _world(communities=("a", "b"))
    # x is good for community a only, y for b only: per-community weights should split them
    x = [t if i.community == "a" else j for i, t, j in zip(items, _noisy(targets, 0.1, 1), _junk(targets, 2), strict=True)]
    y = [t if i.community == "b" else j for i, t, j in zip(items, _noisy(targets, 0.1, 3), _junk(targets, 4), strict=True)]
    preds = {"x": x, "y": y}
    gaps = []
    for strength in (1e-5, 1e-3, 1e-1, 1e1, 1e4):
        layer = fit_layer(items, preds, targets, LayerConfig("linear", shrink=strength))
        gaps.append(max(float(np.abs(np.subtract(v, layer.log_weights)).max()) for v in layer.community_log_weights.values()))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3
    loose = fit_layer(items, preds, targets, LayerConfig("linear", shrink=1e-5))
    assert np.exp(loose.community_log_weights["a"][0]) > 0.9 and np.exp(loose.community_log_weights["b"][1]) > 0.9


def test_deterministic_order_free_and_serialisable() -> None:
    items, targets = _world(n_questions=16)
    preds = {"x": _noisy(targets, 0.3, 1), "y": _junk(targets, 2)}
    grid = Grid(weight_l2=(1e-2,), shrink=(None, 0.1), n_folds=3)
    one, two = fit_stack(items, preds, targets, grid), fit_stack(items, preds, targets, grid)
    assert one == two
    order = list(reversed(range(len(items))))
    three = fit_stack(
        [items[j] for j in order], {b: [v[j] for j in order] for b, v in preds.items()}, [targets[j] for j in order], grid
    )
    assert three.items_hash == one.items_hash and three.config == one.config
    np.testing.assert_allclose(three.log_weights, one.log_weights, atol=1e-9)
    back = Layer.from_dict(json.loads(json.dumps(one.to_dict())))
    assert back == one
    for p, r in zip(back.predict(items, preds), one.predict(items, preds), strict=True):
        np.testing.assert_array_equal(p, r)


def test_folds_follow_the_question_text() -> None:
    assert fold_of("same text", 5) == fold_of("same text", 5)
    items, _ = _world(n_questions=50)
    by_question = {i.question: {fold_of(j.group, 5) for j in items if j.question == i.question} for i in items}
    assert all(len(f) == 1 for f in by_question.values())
    assert len({fold_of(i.group, 5) for i in items}) == 5


def test_refuses_items_no_backbone_answers_and_misshapen_predictions() -> None:
    items, targets = _world(n_questions=4)
    with pytest.raises(ValueError, match="no backbone answers"):
        fit_layer(items, {"x": [None] * len(items)}, targets, LayerConfig())
    with pytest.raises(ValueError, match="expected"):
        fit_layer(items, {"x": [np.ones(9)] * len(items)}, targets, LayerConfig())


def test_calibration_is_the_identity_at_temperature_one() -> None:
    p = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(Calibration().apply(p, np.ones_like(p, bool)), p)
    assert mean_tv(p, p) == 0.0


def test_calibration_by_tv_scores_no_worse_in_tv_than_by_cross_entropy() -> None:
    items, targets = _world(seed=2)
    rng = np.random.default_rng(5)
    spiky: list[np.ndarray | None] = []
    for t in targets:  # the right mode, but a confident miss now and then: cross-entropy flattens it
        p = t**3 if rng.random() < 0.8 else rng.dirichlet(np.full(len(t), 0.3))
        spiky.append(p / p.sum())
    tvs, temps = {}, {}
    for by_tv in ((), ("s",)):
        layer = fit_layer(items, {"s": spiky}, targets, LayerConfig("single", ranking=("s",), calibrate_by_tv=by_tv))
        tvs[bool(by_tv)], temps[bool(by_tv)] = _tv(layer.predict(items, {"s": spiky}), targets), layer.calibrations[0].temperature
    assert tvs[True] <= tvs[False] and temps[True] < temps[False]
