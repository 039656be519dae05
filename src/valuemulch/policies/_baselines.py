"""Honest baselines and references. Every report shows them beside the model.

Deployable baselines learn only from training questions: ``uniform``, ``position-prior``,
``option-text-prior``. References read the evaluated questions' human data and are labelled
``oracle``: ``pooled-oracle`` (the population answer), ``majority`` (its one-hot mode: what a
one-size-fits-all model collapses to) and ``noise-ceiling`` (a multinomial resample of the survey
itself: the best agreement sampling noise allows).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from valuemulch.errors import DataError
from valuemulch.policies._base import BOOLEAN, SEED, Constraint, Policy, Progress, Rng, register
from valuemulch.types import Norms, Question, normalise_text, pool


@register
class UniformPolicy(Policy):
    name = "uniform"
    description = "Equal mass on every option: the floor any model must beat."

    def __init__(self) -> None:
        pass

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        """Nothing to learn: the answer depends on the number of options alone."""

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        return [np.full(q.n_options, 1.0 / q.n_options) for q in questions]


def _position_means(norms: Norms) -> dict[str, dict[str, list[float]]]:
    """Mean distribution per option count, for each community and pooled ("*")."""
    sums: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for item in norms:
        k = item.question.n_options
        for who in (item.community, "*"):
            sums[who][k] = sums[who].get(k, np.zeros(k)) + item.distribution
            counts[who][k] += 1
    return {who: {str(k): (v / counts[who][k]).tolist() for k, v in by_k.items()} for who, by_k in sums.items()}


@register
class PositionPriorPolicy(Policy):
    name = "position-prior"
    description = "Mean share of each option position (for questions with as many options) on train questions, per community."

    parameter_constraints: ClassVar[dict[str, Constraint]] = {"per_community": BOOLEAN}

    def __init__(self, *, per_community: bool = True) -> None:
        self.per_community = per_community

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        self.means_ = _position_means(norms)

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        return [self._one(community, q) for q in questions]

    def _one(self, community: str, q: Question) -> np.ndarray:
        for who in (community, "*") if self.per_community else ("*",):
            mean = self.means_.get(who, {}).get(str(q.n_options))
            if mean is not None:
                p = np.asarray(mean, dtype=float) + 1e-9  # keep every option possible
                return p / p.sum()
        return np.full(q.n_options, 1.0 / q.n_options)


@register
class OptionTextPriorPolicy(Policy):
    name = "option-text-prior"
    description = "Mean share an option's text ('Refused', 'Somewhat agree') got on train questions, per community; position prior for unseen texts."

    parameter_constraints: ClassVar[dict[str, Constraint]] = {"per_community": BOOLEAN}

    def __init__(self, *, per_community: bool = True) -> None:
        self.per_community = per_community

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for item in norms:
            for option, share in zip(item.question.options, item.distribution, strict=True):
                text = normalise_text(option)
                for who in (item.community, "*"):
                    sums[who][text] += float(share)
                    counts[who][text] += 1
        self.shares_ = {who: {t: sums[who][t] / counts[who][t] for t in sums[who]} for who in sums}
        self.positions_ = PositionPriorPolicy(per_community=self.per_community).fit(norms)

    def state(self) -> dict[str, Any]:
        return {"shares_": self.shares_, "positions_": self.positions_.state()}

    def set_state(self, state: dict[str, Any]) -> None:
        positions = PositionPriorPolicy(per_community=self.per_community)
        positions.set_state(state["positions_"])
        super().set_state({"shares_": state["shares_"], "positions_": positions})

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        out = []
        whos = (community, "*") if self.per_community else ("*",)
        for q, fallback in zip(questions, self.positions_.predict(community, questions), strict=True):
            p = np.array(
                [
                    next((self.shares_[w][t] for w in whos if t in self.shares_.get(w, {})), fallback[i])
                    for i, t in enumerate(map(normalise_text, q.options))
                ]
            )
            p = p + 1e-9
            out.append(p / p.sum())
        return out


class _PooledReference(Policy):
    """Shared fitting for references that read each question's population answer."""

    oracle = True
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"leave_out_self": BOOLEAN}

    def __init__(self, *, leave_out_self: bool = False) -> None:
        self.leave_out_self = leave_out_self

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        # Stored weighted by respondents (when known), as ``pool`` weighs them, so that leaving one
        # community out is a sum of the rest.
        mass: dict[str, dict[str, list[float]]] = defaultdict(dict)
        for item in norms:
            w = item.n if item.n else 1.0
            mass[item.question.id][item.community] = (w * item.distribution).tolist()
        self.mass_ = dict(mass)

    def covers(self, community: str, question: Question) -> bool:
        by_c = self.mass_.get(question.id, {}) if self.is_fitted() else {}
        return bool(by_c) and not (self.leave_out_self and set(by_c) == {community})

    def pooled(self, community: str, q: Question) -> np.ndarray:
        self.check_fitted()
        by_c = self.mass_.get(q.id)
        if not by_c:
            raise DataError(
                f"policy '{self.name}'",
                field="question",
                expected="a question it was given data for",
                got=q.id,
                fix="fit it on the evaluated norms",
            )
        return pool([v for c, v in by_c.items() if not (self.leave_out_self and c == community)])


@register
class PooledOraclePolicy(_PooledReference):
    name = "pooled-oracle"
    description = "ORACLE: the question's pooled population distribution, read from the evaluated data (no model has it for a new question)."

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        return [self.pooled(community, q) for q in questions]


@register
class MajorityPolicy(_PooledReference):
    name = "majority"
    description = "ORACLE: one-hot on the population's most common answer: the mode collapse of a one-size-fits-all model."

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        out = []
        for q in questions:
            p = self.pooled(community, q)
            onehot = np.zeros_like(p)
            onehot[int(np.argmax(p))] = 1.0
            out.append(onehot)
        return out


@register
class NoiseCeilingPolicy(Policy):
    name = "noise-ceiling"
    description = "REFERENCE: a multinomial resample of the survey at its own size: the agreement sampling noise allows."
    oracle = True
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"seed": SEED}

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        # Fitting draws nothing: the resample is drawn at predict time from one stream per item,
        # keyed by the ``seed`` parameter, so ``rng`` has nothing to seed.
        self.items_ = {f"{i.community}\x1f{i.question.id}": [i.distribution.tolist(), i.n] for i in norms if i.n}

    def covers(self, community: str, question: Question) -> bool:
        return self.is_fitted() and f"{community}\x1f{question.id}" in self.items_

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        out = []
        for q in questions:
            key = f"{community}\x1f{q.id}"
            if key not in self.items_:
                raise DataError(
                    f"policy '{self.name}'",
                    field="item",
                    expected="an item with a known number of respondents",
                    got=key,
                    fix="skip items without n",
                )
            p, n = self.items_[key]
            # One stream per item, so the resample does not depend on evaluation order.
            rng = np.random.default_rng([self.seed, int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")])
            draw = rng.multinomial(round(n), np.asarray(p) / np.sum(p)).astype(float)
            out.append(draw / draw.sum())
        return out
