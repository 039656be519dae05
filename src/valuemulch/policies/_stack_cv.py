"""Choosing the community layer's settings by inner cross-validation, and cross-fitting it.

Recorded frontier runs answer only test questions, so the layer that is scored on them must be fitted
on other test questions: `cross_fit` splits questions into K folds by a hash of their text and
predicts each fold with a layer fitted on the others, every setting chosen by `choose_by_inner_cv`
inside those training folds (inner folds hash the text with another salt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from valuemulch.policies._stack_math import (
    Item,
    Layer,
    LayerConfig,
    Objective,
    Pooling,
    Predictions,
    _Batch,
    _batch,
    _calibrated,
    _chain,
    _fit_communities,
    _fit_shared,
    _pool,
    _subset,
    fit_calibrations,
    fit_layer,
    fold_of,
    mean_tv,
    outer_fold,
)


@dataclass(frozen=True)
class Grid:
    """What inner cross-validation chooses among (every pooled combination, plus the best single)."""

    poolings: tuple[Pooling, ...] = ("linear", "loglinear")
    objectives: tuple[Objective, ...] = ("ce", "tv")
    calibration_objectives: tuple[Objective, ...] = ("ce", "tv")
    weight_l2: tuple[float, ...] = (1e-5, 1e-4, 1e-3)
    shrink: tuple[float | None, ...] = (None, 0.1, 0.03, 0.01)
    single: bool = True
    bias_l2: float = 1e-2
    n_folds: int = 5
    min_coverage: float = 0.9  # a single backbone must answer this share of the items to head the ranking

    def configs(self) -> list[LayerConfig]:
        return [
            LayerConfig(p, o, l2, s, bias_l2=self.bias_l2)
            for p in self.poolings
            for o in self.objectives
            for l2 in self.weight_l2
            for s in self.shrink
        ]


@dataclass(frozen=True)
class Choice:
    """The chosen setting and every candidate's inner-CV TV (over the inner held-out items)."""

    config: LayerConfig
    cv_tv: dict[str, float] = field(default_factory=dict)
    backbone_tv: dict[str, float] = field(default_factory=dict)  # each calibrated backbone, items it answers


def _canonical(
    items: Sequence[Item], predictions: Predictions, targets: Sequence[np.ndarray]
) -> tuple[list[Item], dict[str, list[np.ndarray | None]], list[np.ndarray]]:
    order = sorted(range(len(items)), key=lambda j: (items[j].community, items[j].question))
    preds = {b: [predictions[b][j] for j in order] for b in sorted(predictions)}
    return [items[j] for j in order], preds, [targets[j] for j in order]


def _row_tv(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(pred - target).sum(axis=-1)


def choose_by_inner_cv(items: Sequence[Item], predictions: Predictions, targets: Sequence[np.ndarray], grid: Grid) -> Choice:
    """Pick each backbone's calibration, then pooling x objective x L2 x shrinkage (or a single backbone).

    Two passes over the same inner folds: the first fits calibrations with and without a position
    bias, by cross-entropy and by TV, and keeps for each backbone the variant with the lowest
    held-out TV; the
    second fits every pooled candidate on the calibrated outputs and scores it on held-out TV.
    """
    items, preds, targets = _canonical(items, predictions, targets)
    names = tuple(preds)
    batch = _batch(items, names, preds, targets)
    assert batch.target is not None
    folds = np.array([fold_of(i.group, grid.n_folds, "inner") for i in items])
    usable = [f for f in range(grid.n_folds) if (folds == f).any() and (folds != f).any()]
    if not usable:
        raise ValueError(f"inner cross-validation needs items of at least two questions; got {len(set(i.group for i in items))}")
    variants = [(obj, on) for obj in grid.calibration_objectives for on in (False, True)]
    q_by_fold: dict[int, list[np.ndarray]] = {}
    err = np.zeros((len(variants), len(names)))
    count = np.zeros(len(names))
    for f in usable:
        train, test = _subset(batch, folds != f), folds == f
        q_by_fold[f] = [
            _calibrated(batch, fit_calibrations(train, [on] * len(names), grid.bias_l2, [obj] * len(names)))
            for obj, on in variants
        ]
        for v, q in enumerate(q_by_fold[f]):
            tv = np.stack([_row_tv(q[b], batch.target) for b in range(len(names))])
            err[v] += (tv * (batch.answers & test[None])).sum(axis=1)
        count += (batch.answers & test[None]).sum(axis=1)
    mean = err / np.maximum(count, 1)
    pick = np.argmin(mean, axis=0)  # per backbone; first of equals: no bias, cross-entropy
    backbone_tv = {b: float(mean[pick[j], j]) for j, b in enumerate(names)}
    coverage = batch.answers.mean(axis=1)
    ranking = tuple(sorted(names, key=lambda b: (coverage[names.index(b)] < grid.min_coverage, backbone_tv[b], b)))
    calibration = {
        "position_bias": tuple(b for j, b in enumerate(names) if variants[pick[j]][1]),
        "calibrate_by_tv": tuple(b for j, b in enumerate(names) if variants[pick[j]][0] == "tv"),
        "bias_l2": grid.bias_l2,
    }
    configs = [replace(c, **calibration) for c in grid.configs()]  # type: ignore[arg-type]
    if grid.single:
        configs.append(LayerConfig("single", ranking=ranking, **calibration))  # type: ignore[arg-type]
    held = {c.label(): np.zeros_like(batch.target) for c in configs}
    scored = np.zeros(len(items), dtype=bool)
    for f in usable:
        q = np.stack([q_by_fold[f][pick[b]][b] for b in range(len(names))])
        _score_fold(items, names, batch, q, folds != f, folds == f, configs, held)
        scored |= folds == f
    cv_tv = {label: mean_tv(pred[scored], batch.target[scored]) for label, pred in held.items()}
    best = min(configs, key=lambda c: cv_tv[c.label()])  # first of equals: the grid's order is fixed
    return Choice(best, cv_tv, backbone_tv)


def _score_fold(
    items: Sequence[Item],
    names: Sequence[str],
    batch: _Batch,
    q: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    configs: Sequence[LayerConfig],
    held: dict[str, np.ndarray],
) -> None:
    """Fit every candidate on ``train`` and write its predictions of ``test`` into ``held``."""
    sub, q_tr, q_te = _subset(batch, train), q[:, train], q[:, test]
    answers_te, mask_te = batch.answers[:, test], batch.mask[test]
    train_comms = [i.community for i, t in zip(items, train, strict=True) if t]
    test_comms = [i.community for i, t in zip(items, test, strict=True) if t]
    shared_cache: dict[tuple[str, str, float], tuple[np.ndarray, float]] = {}
    for config in configs:
        if config.pooling == "single":
            order = [list(names).index(b) for b in config.ranking]
            held[config.label()][test] = _chain(order, q_te, answers_te)
            continue
        key = (config.pooling, config.objective, config.weight_l2)
        if key not in shared_cache:
            shared_cache[key] = _fit_shared(sub, q_tr, config)
        shared, tau = shared_cache[key]
        per = {} if config.shrink is None else _fit_communities(train_comms, sub, q_tr, config, shared, tau)
        theta = np.stack([per.get(c, shared) for c in test_comms])
        held[config.label()][test] = _pool(config.pooling, theta, tau, q_te, answers_te, mask_te)[0]


def fit_stack(items: Sequence[Item], predictions: Predictions, targets: Sequence[np.ndarray], grid: Grid | None = None) -> Layer:
    """Choose by inner CV, then fit the chosen layer on all the given items."""
    choice = choose_by_inner_cv(items, predictions, targets, grid or Grid())
    return replace(fit_layer(items, predictions, targets, choice.config), cv_tv=choice.cv_tv)


def cross_fit(
    items: Sequence[Item],
    predictions: Predictions,
    targets: Sequence[np.ndarray],
    grid: Grid | None = None,
    n_folds: int = 5,
    seed: int = 0,
) -> tuple[list[np.ndarray], list[Layer]]:
    """Out-of-fold predictions: each question's items come from a layer fitted without that question
    (the folds of ``valuemulch evaluate --cross-fit K --seed S``: `outer_fold`)."""
    folds = np.array([outer_fold(i.group, n_folds, seed) for i in items])
    out: list[np.ndarray | None] = [None] * len(items)
    layers = []
    for f in range(n_folds):
        test = [int(j) for j in np.flatnonzero(folds == f)]
        train = [int(j) for j in np.flatnonzero(folds != f)]
        if not len(test):
            continue
        pick = {b: [rows[j] for j in train] for b, rows in predictions.items()}
        layer = fit_stack([items[j] for j in train], pick, [targets[j] for j in train], grid)
        found = layer.predict([items[j] for j in test], {b: [rows[j] for j in test] for b, rows in predictions.items()})
        for j, p in zip(test, found, strict=True):
            out[j] = p
        layers.append(layer)
    return [p for p in out if p is not None], layers
