"""Per-item scores between a community's answer distribution (gold) and a model's (pred).

Every function takes a batch padded to a common width: ``gold`` and ``pred`` of shape (N, K), one
distribution per row, with padding columns holding 0 in both. A single item may be given as a 1-D
(K,) array, and then the result is 0-d. Everything is vectorised numpy, so scoring tens of
thousands of items costs milliseconds and needs no loop over items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Mass added to every real option of ``pred`` before KL(gold || pred), then renormalised, so that a
#: prediction with a hard zero where the community has mass gives a large finite KL, not infinity.
#: Small enough (1e-6) to leave KL of any reasonable prediction unchanged to ~5 decimals.
KL_EPSILON = 1e-6

#: Gold shares within this absolute distance of the gold maximum count as tied for `top1`, so that
#: float rounding from renormalisation cannot break a real tie.
TIE_ATOL = 1e-12

ArrayLike = np.ndarray | Sequence[float]


def pad(rows: Sequence[ArrayLike | Sequence[float | None]], fill: float = 0.0) -> np.ndarray:
    """Stack ragged rows into an (N, K) float array, K the longest row, filling the rest with ``fill``.

    Use ``fill=0.0`` for distributions (padding carries no mass) and ``fill=np.nan`` for ordinal
    positions (padding is off the scale). ``None`` inside a row becomes NaN, so a question's
    ``ordinal`` tuple can be passed as is.
    """
    arrays = [np.asarray(row, dtype=np.float64).reshape(-1) for row in rows]
    width = max((a.shape[0] for a in arrays), default=0)
    out = np.full((len(arrays), width), fill, dtype=np.float64)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0]] = a
    return out


def _batch(gold: ArrayLike, pred: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both inputs as (N, K) float arrays, and whether the caller gave a single 1-D item."""
    g = np.asarray(gold, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    if g.shape != p.shape:
        raise ValueError(f"gold and pred must have the same shape, got {g.shape} and {p.shape}")
    if g.ndim not in (1, 2):
        raise ValueError(f"expected a (K,) or (N, K) array, got shape {g.shape}")
    single = g.ndim == 1
    return np.atleast_2d(g), np.atleast_2d(p), single


def _out(values: np.ndarray, single: bool) -> np.ndarray:
    """Per-row results, or the single 0-d result for a 1-D input."""
    return values[0] if single else values


def _sum_plogq(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row sums of p * ln(p / q), with 0 * ln(0 / q) = 0 (and no warnings for the zeros)."""
    positive = p > 0
    safe_p = np.where(positive, p, 1.0)
    safe_q = np.where(positive, q, 1.0)
    with np.errstate(divide="ignore"):  # q == 0 where p > 0 is a true infinity; keep it
        terms = np.where(positive, p * (np.log(safe_p) - np.log(safe_q)), 0.0)
    return terms.sum(axis=-1)


def _entropy_bits(p: np.ndarray) -> np.ndarray:
    """Row Shannon entropies in bits, with 0 log 0 = 0."""
    return -_sum_plogq(p, np.ones_like(p)) / np.log(2.0)


def jsd(gold: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """Jensen-Shannon distance (the square root of the divergence, base-2 logs), in [0, 1].

    The distance, not the divergence, because it is a metric and is what GlobalOpinionQA reports.
    Tiny negative divergences from rounding are clipped to 0 before the square root.
    """
    g, p, single = _batch(gold, pred)
    m = 0.5 * (g + p)
    divergence = 0.5 * (_sum_plogq(g, m) + _sum_plogq(p, m)) / np.log(2.0)
    return _out(np.sqrt(np.clip(divergence, 0.0, 1.0)), single)


def one_minus_jsd(gold: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """Similarity 1 - JS distance (Durmus et al., GlobalOpinionQA): 1 is a perfect match."""
    return 1.0 - jsd(gold, pred)


def tv(gold: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """Total variation distance 0.5 * sum |gold - pred|: the largest share any answer set is misjudged by."""
    g, p, single = _batch(gold, pred)
    return _out(0.5 * np.abs(g - p).sum(axis=-1), single)


def kl(gold: ArrayLike, pred: ArrayLike, eps: float = KL_EPSILON, mask: np.ndarray | None = None) -> np.ndarray:
    """KL(gold || pred) in nats, with pred smoothed over the real options only.

    ``pred`` becomes ``(pred + eps) / sum(pred + eps)`` over the options where ``mask`` is True, and
    0 on padding, so that padding width never changes an item's score. Without ``mask`` every column
    is treated as real; pass the mask when scoring a padded batch. Gold mass on a masked-out option
    gives infinity (the prediction cannot represent it).

    Args:
        gold: Community distributions, (K,) or (N, K).
        pred: Predicted distributions, same shape.
        eps: Smoothing mass per real option; see `KL_EPSILON`.
        mask: Bool array, same shape, True on real (non-padding) options.
    """
    g, p, single = _batch(gold, pred)
    real = np.ones(g.shape, dtype=bool) if mask is None else np.atleast_2d(np.asarray(mask, dtype=bool))
    if real.shape != g.shape:
        raise ValueError(f"mask must have the shape of gold, got {real.shape} and {g.shape}")
    q = np.where(real, p + eps, 0.0)
    q = q / q.sum(axis=-1, keepdims=True)
    return _out(_sum_plogq(g, q), single)


def top1(gold: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """1.0 when the prediction's most likely option is the community's most chosen one, else 0.0.

    Ties: a hit when pred's argmax is any of gold's tied maxima (within `TIE_ATOL`), since the
    community then has no single modal answer to miss. Pred's own ties go to its first maximum
    (numpy's argmax), so a prediction cannot score by hedging across options.
    """
    g, p, single = _batch(gold, pred)
    picked = np.take_along_axis(g, p.argmax(axis=-1)[:, None], axis=-1)[:, 0]
    return _out((picked >= g.max(axis=-1) - TIE_ATOL).astype(np.float64), single)


def entropy_gap(gold: ArrayLike, pred: ArrayLike) -> np.ndarray:
    """H(pred) - H(gold) in bits, signed.

    Negative means the prediction is more peaked than the community (mode collapse, the usual failure
    of aligned models); positive means it is flatter. Zero is ideal.
    """
    g, p, single = _batch(gold, pred)
    return _out(_entropy_bits(p) - _entropy_bits(g), single)


def representativeness(gold: ArrayLike, pred: ArrayLike, ordinal: ArrayLike) -> np.ndarray:
    """OpinionQA's representativeness R = 1 - W1(gold, pred) / (max position - min position).

    Santurkar et al. (2023) compare answer distributions on the survey's ordinal scale, so that
    predicting "somewhat agree" for "strongly agree" costs less than predicting "strongly disagree".
    Options whose position is NaN (refusals, "not sure", padding) are removed from both distributions,
    and each is renormalised over the remaining options. W1 is the 1-D Wasserstein distance between the
    two distributions over positions: the integral of |CDF_gold - CDF_pred|. Positions may be unsorted
    (a neutral middle option at 1.5) and may repeat.

    Returns NaN for an item without a scale (fewer than 2 distinct positions, e.g. a nominal question
    coded [1, 1, 1, 1], or all NaN), and NaN when gold or pred has no mass on the scale options, since
    neither distribution can then be placed on the scale.

    Args:
        gold: Community distributions, (K,) or (N, K).
        pred: Predicted distributions, same shape.
        ordinal: Each option's position on the scale, same shape; NaN off the scale.
    """
    g, p, single = _batch(gold, pred)
    pos = np.atleast_2d(np.asarray(ordinal, dtype=np.float64))
    if pos.shape != g.shape:
        raise ValueError(f"ordinal must have the shape of gold, got {pos.shape} and {g.shape}")
    on = np.isfinite(pos)
    g = np.where(on, g, 0.0)
    p = np.where(on, p, 0.0)
    g_mass = g.sum(axis=-1, keepdims=True)
    p_mass = p.sum(axis=-1, keepdims=True)
    g = g / np.where(g_mass > 0, g_mass, 1.0)
    p = p / np.where(p_mass > 0, p_mass, 1.0)

    # Sort options by position; argsort puts NaN (off-scale, zero mass after removal) last.
    order = np.argsort(pos, axis=-1, kind="stable")
    pos_s = np.take_along_axis(pos, order, axis=-1)
    cdf_gap = np.cumsum(np.take_along_axis(g - p, order, axis=-1), axis=-1)[:, :-1]
    steps = np.nan_to_num(np.diff(pos_s, axis=-1), nan=0.0)  # 0 across NaN positions and repeats
    w1 = np.abs(cdf_gap * steps).sum(axis=-1)

    span = np.where(on, pos, -np.inf).max(axis=-1, initial=-np.inf) - np.where(on, pos, np.inf).min(axis=-1, initial=np.inf)
    valid = np.isfinite(span) & (span > 0) & (g_mass[:, 0] > 0) & (p_mass[:, 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(valid, 1.0 - w1 / span, np.nan)
    return _out(r, single)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A named per-item metric and how to read it.

    ``ideal_zero`` marks signed diagnostics (entropy_gap) that are best at 0; for them
    ``higher_is_better`` only orients rankings ("worst community") toward the failure we watch for.
    ``label`` is how reports and model cards name the metric, so every display reads it from here.
    """

    name: str
    function: Callable[..., np.ndarray]
    higher_is_better: bool
    description: str
    label: str
    uses_ordinal: bool = False
    uses_mask: bool = False
    ideal_zero: bool = False

    def compute(
        self, gold: ArrayLike, pred: ArrayLike, *, ordinal: ArrayLike | None = None, mask: np.ndarray | None = None
    ) -> np.ndarray:
        """Call the metric with the extra inputs it needs, so callers can loop over `METRICS` uniformly."""
        if self.uses_ordinal:
            if ordinal is None:
                raise ValueError(f"metric '{self.name}' needs ordinal positions")
            return self.function(gold, pred, ordinal)
        if self.uses_mask:
            return self.function(gold, pred, mask=mask)
        return self.function(gold, pred)

    @property
    def orientation(self) -> str:
        """How to read a value: ``higher``, ``lower`` or ``zero`` (best at 0) is better."""
        return "zero" if self.ideal_zero else "higher" if self.higher_is_better else "lower"


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("one_minus_jsd", one_minus_jsd, True, "1 - Jensen-Shannon distance (base 2), as in GlobalOpinionQA.", "1-JSD"),
        MetricSpec(
            "representativeness",
            representativeness,
            True,
            "OpinionQA's 1 - W1 / scale range on ordinal options; NaN without a scale.",
            "representativeness",
            uses_ordinal=True,
        ),
        MetricSpec("tv", tv, False, "Total variation distance, 0.5 * sum |gold - pred|.", "TV"),
        MetricSpec(
            "kl",
            kl,
            False,
            f"KL(gold || pred) in nats, pred smoothed by {KL_EPSILON:g} per real option.",
            "KL",
            uses_mask=True,
        ),
        MetricSpec(
            "top1", top1, True, "1 when the predicted modal option is a modal option of the community.", "top-1 agreement"
        ),
        MetricSpec(
            "entropy_gap",
            entropy_gap,
            True,
            "H(pred) - H(gold) in bits; negative means mode collapse, 0 is ideal.",
            "entropy gap",
            ideal_zero=True,
        ),
    )
}


def score_items(
    gold_rows: Sequence[ArrayLike],
    pred_rows: Sequence[ArrayLike],
    ordinal_rows: Sequence[ArrayLike | Sequence[float | None] | None] | None = None,
) -> dict[str, np.ndarray]:
    """Pad ragged items and compute every metric in `METRICS`, one value per item.

    Args:
        gold_rows: One community distribution per item; items may have different option counts.
        pred_rows: The matching predicted distributions, each as long as its gold row.
        ordinal_rows: Each item's option positions (None or NaN off the scale), or None for an item,
            or for all items, without a scale; representativeness is then NaN.

    Returns:
        Metric name to an (N,) float array.
    """
    if len(gold_rows) != len(pred_rows):
        raise ValueError(f"got {len(gold_rows)} gold rows and {len(pred_rows)} pred rows")
    widths = [np.asarray(row).reshape(-1).shape[0] for row in gold_rows]
    for i, (row, width) in enumerate(zip(pred_rows, widths, strict=True)):
        if np.asarray(row).reshape(-1).shape[0] != width:
            raise ValueError(f"item {i}: pred has {np.asarray(row).size} options, gold has {width}")
    if ordinal_rows is not None and len(ordinal_rows) != len(gold_rows):
        raise ValueError(f"got {len(ordinal_rows)} ordinal rows for {len(gold_rows)} items")
    if not widths:
        return {name: np.empty(0) for name in METRICS}
    ordinals: list[np.ndarray] = []
    for i, width in enumerate(widths):
        given = None if ordinal_rows is None else ordinal_rows[i]
        positions = np.full(width, np.nan) if given is None else np.asarray(given, dtype=np.float64).reshape(-1)
        if positions.shape[0] != width:
            raise ValueError(f"item {i}: ordinal has {positions.shape[0]} positions, gold has {width}")
        ordinals.append(positions)

    gold = pad(gold_rows)
    pred = pad(pred_rows)
    ordinal = pad(ordinals, fill=np.nan)
    mask = np.arange(gold.shape[1])[None, :] < np.asarray(widths)[:, None]
    return {name: spec.compute(gold, pred, ordinal=ordinal, mask=mask) for name, spec in METRICS.items()}
