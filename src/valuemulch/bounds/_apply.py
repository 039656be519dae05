"""``apply_bounds``: the one function certification and deployment both use.

Order matters and is fixed: tier 1 masks red-line options first (on the community's answer *and*
on the population's, so no later step can bring them back); tier 2 may refuse, or replace the
answer with the population's; tier 3's strength moves the answer towards the population; and the
tier-2 budget then shrinks it towards the population until it is within ``max_divergence``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from valuemulch.bounds._detect import Detector, Flag, default_detector
from valuemulch.bounds._org_policy import OrgPolicy
from valuemulch.bounds._tier1 import GuardJudge, judge
from valuemulch.errors import ConfigError, DataError
from valuemulch.metrics import jsd
from valuemulch.types import Distribution, Norms, Question, pool


@dataclass(frozen=True)
class Reason:
    tier: int
    code: str
    option: int | None = None
    detail: str = ""
    act: str | None = None  # tier 1: what choosing the option endorses, as read, so a reader sees why

    def to_dict(self) -> dict[str, object]:
        return {"tier": self.tier, "code": self.code, "option": self.option, "detail": self.detail, "act": self.act}


@dataclass
class BoundedAnswer:
    """The answer after bounds: a distribution over the question's options, or a refusal. ``doubtful``
    options keep their mass but are never chosen (``choosable``)."""

    distribution: np.ndarray | None
    masked: list[int] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    doubtful: list[int] = field(default_factory=list)

    @property
    def choosable(self) -> np.ndarray | None:
        """The distribution over the options that may be chosen (neither masked nor in doubt), or None."""
        if self.distribution is None:
            return None
        p = self.distribution.copy()
        p[self.doubtful] = 0.0
        return p / p.sum() if p.sum() > 0 else None

    @property
    def refused(self) -> bool:
        return self.distribution is None


def _shrink(target: np.ndarray, population: np.ndarray, budget: float) -> tuple[np.ndarray, float]:
    """The mix ``population + lam (target - population)`` with the largest lam whose JS distance to
    the population is within ``budget`` (the distance grows with lam, so bisection finds it)."""
    if budget <= 0:
        return population.copy(), 1.0 if np.array_equal(target, population) else 0.0  # exactly the population
    if float(jsd(population, target)) <= budget:
        return target, 1.0
    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if float(jsd(population, population + mid * (target - population))) <= budget:
            lo = mid
        else:
            hi = mid
    return (population.copy() if lo == 0 else population + lo * (target - population)), lo


def _check_inputs(question: Question, p: np.ndarray, strength: float, option_tags: tuple[tuple[str, ...], ...] | None) -> None:
    """Refuse inputs no bound can make sense of, with the caller's mistake named."""
    k = question.n_options
    try:  # any positive mass is accepted: masking rescales ``p`` itself, so the numbers stay p's
        Distribution(p, k, renormalise=True, where=f"apply_bounds: question '{question.id}'")
    except DataError:
        raise ConfigError(
            f"apply_bounds: expected {k} finite non-negative values for '{question.id}', got {p.tolist()}."
        ) from None
    if not 0 <= strength <= 1:
        raise ConfigError(f"apply_bounds: strength must be in [0, 1], got {strength}.")
    if option_tags is not None and len(option_tags) != k:
        raise ConfigError(f"apply_bounds: expected {k} option tag tuples, got {len(option_tags)}.")


def apply_bounds(
    question: Question,
    distribution: np.ndarray,
    community: str,
    policy: OrgPolicy | None = None,
    *,
    population: np.ndarray | None = None,
    strength: float = 1.0,
    option_tags: tuple[tuple[str, ...], ...] | None = None,
    detector: Detector | None = None,
    guard: GuardJudge | None = None,
) -> BoundedAnswer:
    """Bound one community's answer. ``population`` (the population's answer) is needed whenever
    tier 2 or 3 move the answer towards it; ``option_tags[i]`` may tag option i ``redline:<id>``;
    ``detector`` defaults to the shipped one (tags, rules and meaning); ``guard`` adds a guard model's
    masks and doubts (``bounds._tier1``)."""
    policy = policy or OrgPolicy()
    k = question.n_options
    p = np.asarray(distribution, dtype=float)
    _check_inputs(question, p, strength, option_tags)
    tier1 = judge(question, detector or default_detector(), option_tags, guard)
    reasons = [_reason(question, flag) for flag in tier1.flags]
    masked = tier1.masked
    for topic in policy.refuse:
        if topic.matches(question.text):
            return BoundedAnswer(None, masked, [*reasons, Reason(2, "refuse_topic", None, topic.name)])
    keep = np.ones(k, dtype=bool)
    keep[masked] = False
    substantive = keep & ~np.asarray(question.refusal, dtype=bool)
    if not substantive.any():
        return BoundedAnswer(
            None, masked, [*reasons, Reason(1, "no_admissible_option", None, "every substantive option crosses a red line")]
        )
    doubtful = [i for i in sorted(tier1.doubtful) if substantive[i]]
    reasons += [Reason(1, "doubtful", i, tier1.doubtful[i]) for i in doubtful]
    if not (substantive & ~np.isin(np.arange(k), doubtful)).any():
        return BoundedAnswer(
            None,
            masked,
            [*reasons, Reason(1, "no_clear_option", None, "every substantive option is masked or in doubt")],
            doubtful,
        )
    pop = None
    if population is not None:
        pop = np.asarray(population, dtype=float) * keep
        pop = pop / pop.sum() if pop.sum() > 0 else keep / keep.sum()
    p = p * keep
    p = p / p.sum() if p.sum() > 0 else (pop if pop is not None else keep / keep.sum())
    needs_population = (
        not policy.allows(community)
        or any(t.matches(question.text) for t in policy.no_personalise)
        or strength < 1
        or policy.max_divergence is not None
    )
    if needs_population and pop is None:
        raise ConfigError(
            f"apply_bounds: '{question.id}' needs the population's answer (tier 2 or 3 move answers towards it); pass population=..."
        )
    if pop is not None:
        if not policy.allows(community):
            p = pop
            reasons.append(Reason(2, "community_not_allowed", None, community))
        elif shared := [t.name for t in policy.no_personalise if t.matches(question.text)]:
            p = pop
            reasons.append(Reason(2, "no_personalise_topic", None, shared[0]))
        if strength < 1:
            p = pop + strength * (p - pop)
            reasons.append(Reason(3, "strength", None, f"{strength:g}"))
        if policy.max_divergence is not None:
            p, lam = _shrink(p, pop, policy.max_divergence)
            if lam < 1:
                reasons.append(Reason(2, "divergence_budget", None, f"shrunk to {lam:.3f} of the way from the population"))
    p = np.clip(p, 0, None) * keep
    return BoundedAnswer(p / p.sum(), masked, reasons, doubtful)


def _reason(question: Question, flag: Flag) -> Reason:
    """A tier-1 mask as the audit shows it: the red line (or the uncleared decision), and the act read."""
    detail = f"{flag.source}: {question.options[flag.option]}" + (f" (p = {flag.score:.3f})" if flag.score is not None else "")
    code = "decision_not_cleared" if flag.source == "uncleared" else f"redline:{flag.redline}"
    return Reason(1, code, flag.option, detail, flag.act)


def population_answers(norms: Norms) -> dict[str, np.ndarray]:
    """Each question's population answer: its communities' answers pooled by respondents (``pool``)."""
    by_question = norms.by_question()
    return {qid: pool([i.distribution for i in by_question[qid]], [i.n for i in by_question[qid]]) for qid in norms.questions}


def audit(norms: Norms, policy: OrgPolicy | None = None, guard: GuardJudge | None = None) -> list[dict[str, Any]]:
    """Bound every item of a dataset against its own population answer: what ``bounds check`` prints."""
    population = population_answers(norms)
    rows = []
    for item in sorted(norms, key=lambda i: (i.question.id, i.community)):
        answer = apply_bounds(
            item.question, item.distribution, item.community, policy, population=population[item.question.id], guard=guard
        )
        rows.append(
            {
                "question_id": item.question.id,
                "community": item.community,
                "masked": answer.masked,
                "refused": answer.refused,
                "reasons": [r.to_dict() for r in answer.reasons],
                "doubtful": answer.doubtful,
                "distribution": None if answer.distribution is None else answer.distribution.tolist(),
            }
        )
    return rows
