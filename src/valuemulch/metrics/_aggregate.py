"""Aggregates over per-item scores: means, per-community breakdowns and question-level bootstrap CIs.

Items are (community, question) pairs. The items of one question are not independent (every
community answered the same wording, and a policy errs on a hard question for all of them), so
confidence intervals resample whole questions (a cluster bootstrap), never single items. Resampling
items would treat one question's 40 communities as 40 independent draws and give intervals too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Upper bound on the entries of one block of the (n_boot, n_questions) count matrix, so that memory
#: stays near 100 MB however many questions there are.
_BLOCK_ENTRIES = 1 << 22


def _json_float(x: float) -> float | None:
    """A float for JSON: NaN and infinities become None, which JSON can carry."""
    return float(x) if math.isfinite(x) else None


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def _cluster_bootstrap_means(values: np.ndarray, clusters: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``values`` over ``n_boot`` resamples of whole clusters, drawn with replacement.

    Each resample draws n_questions cluster indices uniformly with replacement; a cluster drawn c
    times contributes all its items c times. Vectorised: per-cluster sums and counts come from
    bincount once, and each resample's mean is (counts @ sums) / (counts @ sizes), where ``counts``
    is the (n_boot, n_questions) matrix of how often each cluster was drawn.

    The random stream is ``np.random.default_rng(seed).integers(0, n_questions, size=(rows,
    n_questions))`` called once per block of rows, in order (one block unless n_boot * n_questions
    exceeds `_BLOCK_ENTRIES`), so results are reproducible for a seed.

    Args:
        values: Finite per-item scores, (n,).
        clusters: Each item's cluster index in [0, n_questions), (n,), every index present.
        n_boot: Number of resamples.
        seed: Seed for `np.random.default_rng`.
    """
    n_clusters = int(clusters.max()) + 1
    sums = np.bincount(clusters, weights=values, minlength=n_clusters)
    sizes = np.bincount(clusters, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ENTRIES // n_clusters)
    means = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, block):
        rows = min(block, n_boot - start)
        draws = rng.integers(0, n_clusters, size=(rows, n_clusters))
        flat = (np.arange(rows)[:, None] * n_clusters + draws).ravel()
        counts = np.bincount(flat, minlength=rows * n_clusters).reshape(rows, n_clusters).astype(np.float64)
        means[start : start + rows] = (counts @ sums) / (counts @ sizes)
    return means


def _percentile_ci(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.quantile(boot, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


@dataclass(frozen=True)
class Summary:
    """One metric aggregated over items, with a question-level bootstrap CI and a per-community breakdown.

    Attributes:
        mean: Mean over items with a finite score.
        n: Items used.
        n_excluded: Items dropped because their score was NaN (e.g. representativeness without a scale).
        n_questions: Distinct questions among the items used (the bootstrap's resampling units).
        ci: Percentile bootstrap interval (low, high) at level 1 - alpha, resampling questions.
        per_community: Mean per community; NaN for a community whose items are all excluded.
        worst_community: (community, mean) at the bad end, per ``higher_is_better``; None without data.
        best_community: (community, mean) at the good end; None without data.
        spread: |best - worst|, the gap between the best- and worst-served communities (never negative).
        higher_is_better: Orientation used to pick worst and best.
        n_boot: Number of bootstrap resamples.
        alpha: Two-sided miss rate of ``ci``.
    """

    mean: float
    n: int
    n_excluded: int
    n_questions: int
    ci: tuple[float, float]
    per_community: dict[str, float] = field(default_factory=dict)
    worst_community: tuple[str, float] | None = None
    best_community: tuple[str, float] | None = None
    spread: float = math.nan
    higher_is_better: bool = True
    n_boot: int = 0
    alpha: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; NaN becomes None."""
        return {
            "mean": _json_float(self.mean),
            "n": self.n,
            "n_excluded": self.n_excluded,
            "n_questions": self.n_questions,
            "ci": [_json_float(self.ci[0]), _json_float(self.ci[1])],
            "per_community": {c: _json_float(v) for c, v in self.per_community.items()},
            "worst_community": None
            if self.worst_community is None
            else [self.worst_community[0], _json_float(self.worst_community[1])],
            "best_community": None
            if self.best_community is None
            else [self.best_community[0], _json_float(self.best_community[1])],
            "spread": _json_float(self.spread),
            "higher_is_better": self.higher_is_better,
            "n_boot": self.n_boot,
            "alpha": self.alpha,
        }


def summarise(
    scores: np.ndarray | Sequence[float],
    communities: Sequence[str],
    question_ids: Sequence[str],
    *,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Summary:
    """Mean, cluster-bootstrap CI and per-community breakdown of one metric's per-item scores.

    NaN scores are excluded (and counted), not treated as zero, because a NaN means the metric does not
    apply to the item. The CI resamples questions with replacement (see the module docstring).
    Worst/best ties go to the first community in sorted order, so the result does not depend on item order.

    Args:
        scores: Per-item scores, (n,).
        communities: Each item's community id.
        question_ids: Each item's question id; the bootstrap's resampling unit.
        higher_is_better: Whether a high score is good; decides which community is worst.
        n_boot: Number of bootstrap resamples.
        seed: Seed for `np.random.default_rng`; equal seeds give equal CIs.
        alpha: The CI covers 1 - alpha.
    """
    _check(n_boot, alpha)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not (len(values) == len(communities) == len(question_ids)):
        raise ValueError(f"got {len(values)} scores, {len(communities)} communities and {len(question_ids)} question ids")
    keep = np.isfinite(values)
    kept = values[keep]
    comm = np.asarray(communities, dtype=object)
    qids = np.asarray(question_ids, dtype=object)

    names, comm_idx = np.unique(comm.astype(str), return_inverse=True)
    comm_sums = np.bincount(comm_idx[keep], weights=kept, minlength=len(names))
    comm_counts = np.bincount(comm_idx[keep], minlength=len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        comm_means = np.where(comm_counts > 0, comm_sums / comm_counts, np.nan)
    per_community = {str(name): float(m) for name, m in zip(names, comm_means, strict=True)}

    worst: tuple[str, float] | None = None
    best: tuple[str, float] | None = None
    spread = math.nan
    if np.any(comm_counts > 0):
        valid_means = np.where(comm_counts > 0, comm_means, np.nan)
        lo, hi = int(np.nanargmin(valid_means)), int(np.nanargmax(valid_means))
        low_end, high_end = (str(names[lo]), float(comm_means[lo])), (str(names[hi]), float(comm_means[hi]))
        worst, best = (low_end, high_end) if higher_is_better else (high_end, low_end)
        spread = abs(best[1] - worst[1])

    if kept.size == 0:
        empty = (math.nan, 0, int(values.size), 0, (math.nan, math.nan), per_community)  # no mean, CI, worst or best
        return Summary(*empty, higher_is_better=higher_is_better, n_boot=n_boot, alpha=alpha)
    _, q_idx = np.unique(qids[keep].astype(str), return_inverse=True)
    boot = _cluster_bootstrap_means(kept, q_idx, n_boot, seed)
    return Summary(
        mean=float(kept.mean()),
        n=int(kept.size),
        n_excluded=int(values.size - kept.size),
        n_questions=int(q_idx.max()) + 1,
        ci=_percentile_ci(boot, alpha),
        per_community=per_community,
        worst_community=worst,
        best_community=best,
        spread=spread,
        higher_is_better=higher_is_better,
        n_boot=n_boot,
        alpha=alpha,
    )


@dataclass(frozen=True)
class PairedResult:
    """Difference a - b between two policies scored on the same items.

    Attributes:
        mean_diff: Mean of a - b over items where both scores are finite.
        ci: Percentile bootstrap interval of the mean difference, resampling questions.
        p_value: Two-sided bootstrap p-value for "no difference" (formula in `paired_bootstrap`).
        n: Items used.
        n_excluded: Items dropped because either score was NaN.
        n_questions: Distinct questions among the items used.
        n_boot: Number of bootstrap resamples.
        alpha: Two-sided miss rate of ``ci``.
    """

    mean_diff: float
    ci: tuple[float, float]
    p_value: float
    n: int
    n_excluded: int
    n_questions: int
    n_boot: int
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values; NaN becomes None."""
        return {
            "mean_diff": _json_float(self.mean_diff),
            "ci": [_json_float(self.ci[0]), _json_float(self.ci[1])],
            "p_value": _json_float(self.p_value),
            "n": self.n,
            "n_excluded": self.n_excluded,
            "n_questions": self.n_questions,
            "n_boot": self.n_boot,
            "alpha": self.alpha,
        }


def paired_bootstrap(
    scores_a: np.ndarray | Sequence[float],
    scores_b: np.ndarray | Sequence[float],
    question_ids: Sequence[str],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> PairedResult:
    """Compare two policies on the same items by a question-level bootstrap of their mean difference.

    Pairing removes the between-question variance both policies share, so the CI of a - b is far
    tighter than comparing two separate CIs. Items where either score is NaN are excluded pairwise.

    The p-value is the two-sided bootstrap share, with add-one smoothing so it is never exactly 0::

        p = min(1, 2 * min((1 + #{d_b <= 0}) / (B + 1), (1 + #{d_b >= 0}) / (B + 1)))

    where d_b are the B bootstrap mean differences. Its smallest value is 2 / (B + 1).

    Args:
        scores_a: Per-item scores of policy a, (n,).
        scores_b: Per-item scores of policy b on the same items, (n,).
        question_ids: Each item's question id; the bootstrap's resampling unit.
        n_boot: Number of bootstrap resamples (B).
        seed: Seed for `np.random.default_rng`.
        alpha: The CI covers 1 - alpha.
    """
    _check(n_boot, alpha)
    a = np.asarray(scores_a, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_b, dtype=np.float64).reshape(-1)
    if not (len(a) == len(b) == len(question_ids)):
        raise ValueError(f"got {len(a)} scores for a, {len(b)} for b and {len(question_ids)} question ids")
    keep = np.isfinite(a) & np.isfinite(b)
    diff = (a - b)[keep]
    if diff.size == 0:
        return PairedResult(math.nan, (math.nan, math.nan), math.nan, 0, int(a.size), 0, n_boot, alpha)
    _, q_idx = np.unique(np.asarray(question_ids, dtype=object)[keep].astype(str), return_inverse=True)
    boot = _cluster_bootstrap_means(diff, q_idx, n_boot, seed)
    below = (1 + np.count_nonzero(boot <= 0)) / (n_boot + 1)
    above = (1 + np.count_nonzero(boot >= 0)) / (n_boot + 1)
    return PairedResult(
        mean_diff=float(diff.mean()),
        ci=_percentile_ci(boot, alpha),
        p_value=float(min(1.0, 2.0 * min(below, above))),
        n=int(diff.size),
        n_excluded=int(a.size - diff.size),
        n_questions=int(q_idx.max()) + 1,
        n_boot=n_boot,
        alpha=alpha,
    )
