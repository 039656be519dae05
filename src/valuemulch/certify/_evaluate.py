"""Evaluate a policy on items: per-item scores, aggregates with CIs, and like-for-like comparisons.

Every number here is computed from a policy's predictions against human distributions on the same
items; items a policy does not answer are skipped and counted, never scored as zero.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from valuemulch.metrics import METRICS, Summary, paired_bootstrap, score_items, summarise
from valuemulch.policies import Policy
from valuemulch.types import NormItem, Norms

#: The metrics every report leads with; the rest are computed and stored too.
HEADLINE = ("one_minus_jsd", "representativeness", "tv")
Refusals = Literal["keep", "drop"]
VALID_ATOL = 1e-6


@dataclass
class ItemScores:
    """Per-item scores of one policy, aligned with ``keys`` (community, question id).

    ``gold``, ``pred`` and ``ordinal`` are the rows exactly as scored (after dropping refusals when
    asked), so a per-item record written from them can be re-scored without the policy.
    """

    keys: list[tuple[str, str]]
    scores: dict[str, np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)
    gold: list[np.ndarray] = field(default_factory=list)
    pred: list[np.ndarray] = field(default_factory=list)
    ordinal: list[tuple[float | None, ...] | None] = field(default_factory=list)

    def subset(self, keys: Sequence[tuple[str, str]]) -> ItemScores:
        index = {k: i for i, k in enumerate(self.keys)}
        rows = [index[k] for k in keys]
        return ItemScores(
            list(keys),
            {m: v[rows] for m, v in self.scores.items()},
            gold=[self.gold[i] for i in rows] if self.gold else [],
            pred=[self.pred[i] for i in rows] if self.pred else [],
            ordinal=[self.ordinal[i] for i in rows] if self.ordinal else [],
        )


def _check_prediction(policy: Policy, item: NormItem, p: np.ndarray) -> np.ndarray:
    """A policy that returns an invalid distribution has a bug; say which and where."""
    p = np.asarray(p, dtype=float)
    if p.shape != (item.question.n_options,) or not np.all(np.isfinite(p)) or np.any(p < 0) or abs(p.sum() - 1) > VALID_ATOL:
        raise ValueError(
            f"policy '{policy.name}' returned an invalid distribution for {item.key}: {p.tolist()} "
            f"(expected {item.question.n_options} finite non-negative values summing to 1)"
        )
    return p


def _drop_refusals(
    gold: np.ndarray, pred: np.ndarray, item: NormItem
) -> tuple[np.ndarray, np.ndarray, tuple[float | None, ...] | None] | None:
    """Remove refusal options from both sides and renormalise; None when nothing substantive is left."""
    keep = ~np.asarray(item.question.refusal, dtype=bool)
    g, p = gold[keep], pred[keep]
    if keep.sum() < 2 or g.sum() <= 0 or p.sum() <= 0:
        return None
    ordinal = item.question.ordinal
    kept_ordinal = tuple(v for v, k in zip(ordinal, keep, strict=True) if k) if ordinal is not None else None
    return g / g.sum(), p / p.sum(), kept_ordinal


def score_policy(policy: Policy, items: Norms, *, refusals: Refusals = "keep") -> ItemScores:
    """Predict every item the policy covers and score it against the human distribution.

    ``refusals="drop"`` removes refusal options ("Refused", "DK/Refused") from both distributions and
    renormalises before scoring, as OpinionQA's representativeness does for every metric.
    """
    by_community: dict[str, list[NormItem]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for item in items:
        reason = policy.uncovered_reason(item.community, item.question)
        if reason is None:
            by_community[item.community].append(item)
        else:
            skipped[reason] += 1
    keys: list[tuple[str, str]] = []
    gold: list[np.ndarray] = []
    pred: list[np.ndarray] = []
    ordinal: list[tuple[float | None, ...] | None] = []
    for community in sorted(by_community):
        chosen = sorted(by_community[community], key=lambda i: i.question.id)
        predictions = policy.predict(community, [i.question for i in chosen])
        for item, p in zip(chosen, predictions, strict=True):
            g, q, o = item.distribution, _check_prediction(policy, item, p), item.question.ordinal
            if refusals == "drop":
                dropped = _drop_refusals(g, q, item)
                if dropped is None:
                    skipped["nothing but refusals left"] += 1
                    continue
                g, q, o = dropped
            keys.append(item.key)
            gold.append(g)
            pred.append(q)
            ordinal.append(o)
    scores = score_items(gold, pred, ordinal)
    return ItemScores(keys, scores, dict(skipped), gold, pred, ordinal)


def summarise_scores(item_scores: ItemScores, *, n_boot: int = 1000, seed: int = 0) -> dict[str, Summary]:
    communities = [k[0] for k in item_scores.keys]
    questions = [k[1] for k in item_scores.keys]
    return {
        name: summarise(values, communities, questions, higher_is_better=METRICS[name].higher_is_better, n_boot=n_boot, seed=seed)
        for name, values in item_scores.scores.items()
    }


def _describe(summaries: dict[str, Summary]) -> dict[str, Any]:
    metrics = {name: s.to_dict() for name, s in summaries.items()}
    per_community: dict[str, dict[str, float | None]] = defaultdict(dict)
    for name, s in metrics.items():
        for community, value in s.pop("per_community").items():
            per_community[community][name] = value
    return {"metrics": metrics, "per_community": dict(sorted(per_community.items()))}


@dataclass
class Evaluation:
    """The result of `evaluate`, ready for JSON (``to_dict``) or a table."""

    policy: str
    oracle: bool
    item_scores: ItemScores
    summaries: dict[str, Summary]
    skipped: dict[str, int]
    compared: dict[str, dict[str, Any]] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.item_scores.keys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "oracle": self.oracle,
            **self.context,
            "n_items": self.n_items,
            **_describe(self.summaries),
            "skipped": self.skipped,
            "compared": self.compared,
        }


def evaluate(
    policy: Policy,
    items: Norms,
    *,
    compare: Sequence[Policy] = (),
    n_boot: int = 1000,
    seed: int = 0,
    skipped: dict[str, int] | None = None,
    policy_label: str | None = None,
    refusals: Refusals = "keep",
) -> Evaluation:
    """Score ``policy`` on ``items``; score each policy in ``compare`` on the items it covers, beside
    ``policy`` on exactly those items, with a paired bootstrap of the difference.
    """
    mine = score_policy(policy, items, refusals=refusals)
    label = policy_label or policy.label
    all_skipped = dict(Counter(skipped or {}) + Counter(mine.skipped))
    compared: dict[str, dict[str, Any]] = {}
    for other in compare:
        theirs = score_policy(other, items, refusals=refusals)
        other_label = other.label
        mine_keys = set(mine.keys)
        shared = [k for k in theirs.keys if k in mine_keys]
        if not shared:
            compared[other_label] = {"n_items": 0}
            continue
        a, b = mine.subset(shared), theirs.subset(shared)
        qids = [k[1] for k in shared]
        theirs_summary, mine_summary = (
            summarise_scores(b, n_boot=n_boot, seed=seed),
            summarise_scores(a, n_boot=n_boot, seed=seed),
        )
        compared[other_label] = {
            "n_items": len(shared),
            "oracle": other.oracle,
            "metrics": {m: theirs_summary[m].to_dict() for m in HEADLINE},
            f"{label}_on_same_items": {m: mine_summary[m].to_dict() for m in HEADLINE},
            "paired_difference": {
                m: paired_bootstrap(a.scores[m], b.scores[m], qids, n_boot=n_boot, seed=seed).to_dict() for m in HEADLINE
            },
        }
        for entry in (compared[other_label]["metrics"], compared[other_label][f"{label}_on_same_items"]):
            for value in entry.values():
                value.pop("per_community", None)
    return Evaluation(label, policy.oracle, mine, summarise_scores(mine, n_boot=n_boot, seed=seed), all_skipped, compared)
