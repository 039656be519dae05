"""Evaluate a policy on items: per-item scores, aggregates with CIs, and like-for-like comparisons.

Every number here is computed from a policy's predictions against human distributions on the same
items; items a policy does not answer are skipped and counted, never scored as zero.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from valuemulch.certify._record import ItemRecord
from valuemulch.errors import DataError
from valuemulch.metrics import METRICS, Summary, paired_bootstrap, score_items, summarise
from valuemulch.policies import Policy
from valuemulch.types import Distribution, NormItem, Norms

#: The metrics every report leads with; the rest are computed and stored too.
HEADLINE = ("one_minus_jsd", "representativeness", "tv")
Refusals = Literal["keep", "drop"]


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

    def records(self, name: str, *, adapt_seed: int | None = None) -> list[ItemRecord]:
        """One `ItemRecord` per scored item, in scoring order, under the set name ``name``."""
        return [
            ItemRecord(
                set=name,
                community=community,
                question_id=qid,
                adapt_seed=adapt_seed,
                human=self.gold[i].tolist(),
                predicted=self.pred[i].tolist(),
                ordinal=None if self.ordinal[i] is None else list(self.ordinal[i]),  # type: ignore[arg-type]
                scores={m: float(v[i]) if math.isfinite(v[i]) else None for m, v in self.scores.items()},
            )
            for i, (community, qid) in enumerate(self.keys)
        ]


def _check_prediction(policy: Policy, item: NormItem, p: np.ndarray) -> np.ndarray:
    """A policy that returns an invalid distribution has a bug; say which and where."""
    try:
        return Distribution(p, item.question).probs
    except DataError:
        raise ValueError(
            f"policy '{policy.name}' returned an invalid distribution for {item.key}: {np.asarray(p).tolist()} "
            f"(expected {item.question.n_options} finite non-negative values summing to 1)"
        ) from None


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


class SummaryRecord(BaseModel):
    """A metric's `Summary` as JSON, without its per-community means (they sit in ``per_community``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    mean: float | None
    """Mean over items with a finite score; null when none has one."""
    n: int
    """Items used."""
    n_excluded: int
    """Items whose score was NaN (the metric does not apply to them)."""
    n_questions: int
    """Distinct questions among the items used."""
    ci: tuple[float | None, float | None]
    """Percentile bootstrap interval that resamples questions."""
    worst_community: tuple[str, float | None] | None
    """The community at the bad end and its mean."""
    best_community: tuple[str, float | None] | None
    """The community at the good end and its mean."""
    spread: float | None
    """|best - worst|."""
    higher_is_better: bool
    """The orientation used to pick worst and best."""
    n_boot: int
    """Bootstrap resamples."""
    alpha: float
    """Two-sided miss rate of ``ci``."""

    @classmethod
    def of(cls, summary: Summary) -> SummaryRecord:
        return cls.model_validate({k: v for k, v in summary.to_dict().items() if k != "per_community"})


class PairedRecord(BaseModel):
    """A `PairedResult` as JSON: this policy minus another on the items both answer."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    mean_diff: float | None
    """Mean of a - b."""
    ci: tuple[float | None, float | None]
    """Percentile bootstrap interval of the mean difference."""
    p_value: float | None
    """Two-sided bootstrap p-value for no difference."""
    n: int
    """Items used."""
    n_excluded: int
    """Items where either score was NaN."""
    n_questions: int
    """Distinct questions among the items used."""
    n_boot: int
    """Bootstrap resamples."""
    alpha: float
    """Two-sided miss rate of ``ci``."""


class Comparison(BaseModel):
    """Another policy beside this one on exactly the items both answer; only ``n_items`` when none."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    n_items: int
    """Items both answer."""
    oracle: bool | None = None
    """Whether the other policy is an oracle (reads the evaluated questions' human data)."""
    metrics: dict[str, SummaryRecord] | None = None
    """The other policy's headline metrics on the shared items."""
    on_same_items: dict[str, SummaryRecord] | None = None
    """This policy's headline metrics on the same items (``<label>_on_same_items`` in `to_dict`)."""
    paired_difference: dict[str, PairedRecord] | None = None
    """This policy minus the other, per headline metric, paired by question."""

    def to_dict(self, label: str) -> dict[str, Any]:
        if self.metrics is None or self.on_same_items is None or self.paired_difference is None:
            return {"n_items": self.n_items}
        return {
            "n_items": self.n_items,
            "oracle": self.oracle,
            "metrics": {m: s.model_dump(mode="json") for m, s in self.metrics.items()},
            f"{label}_on_same_items": {m: s.model_dump(mode="json") for m, s in self.on_same_items.items()},
            "paired_difference": {m: d.model_dump(mode="json") for m, d in self.paired_difference.items()},
        }


class Evaluation(BaseModel):
    """What `evaluate` returns: every metric with CIs, per community, the comparisons, and per-item records.

    ``to_dict`` is the JSON ``valuemulch evaluate --json`` prints (the records left out);
    ``summaries`` keeps the full `Summary` objects for callers that want NaN rather than null.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    policy: str
    """The evaluated policy's label."""
    oracle: bool
    """Whether it is an oracle."""
    context: dict[str, Any] = Field(default_factory=dict)
    """What was evaluated: testbed or norms, split, items, communities, refusals, data hash, n_boot, seed."""
    n_items: int
    """Items scored."""
    metrics: dict[str, SummaryRecord]
    """Every metric of `valuemulch.metrics.METRICS` over all items."""
    per_community: dict[str, dict[str, float | None]]
    """Community to metric to its mean."""
    skipped: dict[str, int]
    """Items not scored, by reason."""
    compared: dict[str, Comparison] = Field(default_factory=dict)
    """Other policies (recorded frontier runs) on the items they share with this one."""
    items: list[ItemRecord] = Field(default_factory=list)
    """The per-item predictions and scores (set ``evaluated``), so any metric can be re-scored."""
    _summaries: dict[str, Summary] = PrivateAttr(default_factory=dict)
    _item_scores: ItemScores | None = PrivateAttr(default=None)

    @property
    def summaries(self) -> dict[str, Summary]:
        return self._summaries

    @property
    def item_scores(self) -> ItemScores:
        assert self._item_scores is not None
        return self._item_scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "oracle": self.oracle,
            **self.context,
            "n_items": self.n_items,
            "metrics": {m: s.model_dump(mode="json") for m, s in self.metrics.items()},
            "per_community": self.per_community,
            "skipped": self.skipped,
            "compared": {label: c.to_dict(self.policy) for label, c in self.compared.items()},
        }


def _evaluation(
    label: str, policy: Policy, scores: ItemScores, summaries: dict[str, Summary], skipped: dict[str, int]
) -> Evaluation:
    per_community: dict[str, dict[str, float | None]] = defaultdict(dict)
    for name, s in summaries.items():
        for community, value in s.to_dict()["per_community"].items():
            per_community[community][name] = value
    result = Evaluation(
        policy=label,
        oracle=policy.oracle,
        n_items=len(scores.keys),
        metrics={m: SummaryRecord.of(s) for m, s in summaries.items()},
        per_community=dict(sorted(per_community.items())),
        skipped=skipped,
        items=scores.records("evaluated"),
    )
    result._summaries, result._item_scores = summaries, scores
    return result


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
    compared: dict[str, Comparison] = {}
    for other in compare:
        theirs = score_policy(other, items, refusals=refusals)
        mine_keys = set(mine.keys)
        shared = [k for k in theirs.keys if k in mine_keys]
        if not shared:
            compared[other.label] = Comparison(n_items=0)
            continue
        a, b = mine.subset(shared), theirs.subset(shared)
        qids = [k[1] for k in shared]
        theirs_summary, mine_summary = (
            summarise_scores(b, n_boot=n_boot, seed=seed),
            summarise_scores(a, n_boot=n_boot, seed=seed),
        )
        compared[other.label] = Comparison(
            n_items=len(shared),
            oracle=other.oracle,
            metrics={m: SummaryRecord.of(theirs_summary[m]) for m in HEADLINE},
            on_same_items={m: SummaryRecord.of(mine_summary[m]) for m in HEADLINE},
            paired_difference={
                m: PairedRecord.model_validate(
                    paired_bootstrap(a.scores[m], b.scores[m], qids, n_boot=n_boot, seed=seed).to_dict()
                )
                for m in HEADLINE
            },
        )
    result = _evaluation(label, policy, mine, summarise_scores(mine, n_boot=n_boot, seed=seed), all_skipped)
    result.compared = compared
    return result
