"""Cross-fitting: score a layer on questions it was not fitted on, when its backbones answer only those.

Recorded frontier runs answer test questions only, so a layer that pools them cannot learn on the
train split. The evaluated questions are split into K folds by a hash of their text (one question's
items never straddle folds); each fold is predicted by a layer fitted on the other folds, every
hyper-parameter chosen by inner cross-validation inside them. The backbones that learn (the
encoder) learn once, from the train split.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._record_layer import CrossFitRecord, LayerSummary
from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy, StackPolicy, outer_fold
from valuemulch.types import Norms, Question


@dataclass(frozen=True)
class CrossFit:
    """What the evaluation JSON records: the number of folds, the seed and each question's fold."""

    folds: int
    seed: int
    fold_of: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"folds": self.folds, "seed": self.seed, "fold_of": dict(sorted(self.fold_of.items()))}


def question_fold(question: Question, folds: int, seed: int) -> int:
    """The fold of a question: a hash of its text (and the seed), so every item of it goes together."""
    return outer_fold(question.text, folds, seed)


class CrossFitted(Policy):
    """Each question answered by the layer fitted without its fold (not registered: it is not saved)."""

    name = "cross-fitted"

    def __init__(self, inner: StackPolicy, per_fold: Sequence[StackPolicy], plan: CrossFit) -> None:
        self.inner, self.per_fold, self.plan = inner, list(per_fold), plan
        self._fitted = True

    @property
    def label(self) -> str:
        return self.inner.label

    def summaries(self) -> list[dict[str, Any]]:
        """Each fold's layer as a reader sees it (`Layer.summary`), fold by fold."""
        return [layer.summary() for layer in self.per_fold]

    def _layer(self, question: Question) -> StackPolicy:
        fold = self.plan.fold_of.get(question.id)
        if fold is None:
            raise ConfigError(
                f"Question '{question.id}' was not among the cross-fitted questions; evaluate it with the same items."
            )
        return self.per_fold[fold]

    def covers(self, community: str, question: Question) -> bool:
        return question.id in self.plan.fold_of and self._layer(question).covers(community, question)

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        out: dict[int, np.ndarray] = {}
        by_fold: dict[int, list[int]] = {}
        for j, q in enumerate(questions):
            by_fold.setdefault(self.plan.fold_of[q.id], []).append(j)
        for fold, idx in by_fold.items():
            for j, p in zip(idx, self.per_fold[fold].predict(community, [questions[j] for j in idx]), strict=True):
                out[j] = p
        return [out[j] for j in range(len(questions))]


def cross_fit(
    policy: Policy, train: Norms, evaluated: Norms, *, folds: int, seed: int = 0, progress: Callable[[str], None] | None = None
) -> CrossFitted:
    """Fit ``policy``'s backbones on ``train``, then one layer per fold of ``evaluated``'s questions;
    ``progress`` hears each stage with the time so far."""
    start = time.perf_counter()

    def say(message: str) -> None:
        if progress is not None:
            progress(f"{message} ({time.perf_counter() - start:.0f} s)")

    if not isinstance(policy, StackPolicy):
        raise ConfigError(
            f"--cross-fit fits a community layer on other folds of the evaluated questions; policy '{policy.label}' is not "
            "one. Cross-fit a `stack` policy: `evaluate --policy stack --set backbones=...`, or certify a model that "
            "`train --policy stack` wrote."
        )
    if folds < 2:
        raise ConfigError(f"--cross-fit takes K >= 2 folds; got {folds}.")
    questions = evaluated.questions
    plan = CrossFit(folds, seed, {qid: question_fold(q, folds, seed) for qid, q in questions.items()})
    empty = [f for f in range(folds) if f not in plan.fold_of.values()]
    if len(empty) >= folds - 1:
        raise ConfigError(
            f"--cross-fit {folds} needs questions in at least two folds; the {len(questions)} evaluated questions fill {folds - len(empty)}."
        )
    if policy.is_fitted():  # a saved layer: keep its learned backbones, refit the layer per fold
        base = policy.for_refit()
    else:
        say(f"fitting the backbones on {len(train)} train items")
        policy.fit_backbones(train)
        base = policy
    per_fold = []
    for f in range(folds):
        layer = copy.copy(base)
        others = [qid for qid, g in plan.fold_of.items() if g != f]
        say(f"fold {f + 1}/{folds}: fitting the layer on {len(others)} other questions, inner CV")
        layer.fit_layer(evaluated.filter(question_ids=others))
        per_fold.append(layer)
    return CrossFitted(policy, per_fold, plan)


def answerer(
    saved: Policy, testbed: Testbed, seen_test: Norms, config: CertifyConfig, say: Callable[[str], None]
) -> tuple[Policy, CrossFitRecord | None]:
    """What answers the test split: the saved model, or with ``config.cross_fit`` K, per fold of the
    test questions a layer refitted on the other folds (over the saved model's learned backbones)."""
    if config.cross_fit is None:
        return saved, None
    fitted = cross_fit(
        saved, testbed.items("train", "seen"), seen_test, folds=config.cross_fit, seed=config.seed, progress=say
    )
    plan = fitted.plan
    layers = [LayerSummary.model_validate(s) for s in fitted.summaries()]
    return fitted, CrossFitRecord(folds=plan.folds, seed=plan.seed, fold_of=dict(sorted(plan.fold_of.items())), layers=layers)
