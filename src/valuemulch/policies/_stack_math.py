"""The community layer's numerical core: calibrate backbones, pool them, shrink per-community weights.

No Policy plumbing and no I/O, so it is tested on synthetic arrays. A *backbone* gives, per item
(community, question), a distribution over the question's options or None (silent). The layer:

1. calibrates each backbone: ``softmax(log(max(p, FLOOR)) / T + bias[position])``, fitted by
   cross-entropy. Cross-entropy, not TV, because it is a proper score, smooth and convex in
   (1/T, bias), so the optimum is unique and the fit deterministic; TV is flat in whole directions.
   The position bias is kept per backbone only where it lowers inner-CV TV;
2. pools the calibrated backbones linearly (``sum w_b q_b``) or log-linearly
   (``softmax(tau * sum w_b log q_b)``), weights on the simplex and renormalised, per item, over the
   backbones that answer it, so a silent backbone changes nothing but the normalisation;
3. lets each community's weights move from the shared ones, ``theta_c = theta + delta_c``, at a cost
   ``strength * |delta_c|^2``: as the strength grows they become the shared weights;
4. chooses pooling kind, objective (cross-entropy or smoothed TV), regularisation and shrinkage by
   inner cross-validation on TV, folds by a hash of the question text; the best single calibrated
   backbone (falling back down a ranking where it is silent) is a candidate too.

Everything is deterministic: folds come from sha256, optimisers start from fixed points, and items
are put in a canonical order before fitting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.optimize import minimize

Pooling = Literal["linear", "loglinear", "single"]
Objective = Literal["ce", "tv"]
Predictions = Mapping[str, Sequence[np.ndarray | None]]

FLOOR = 1e-3  # raw probabilities are floored before the log: recorded runs put exact zeros on options
TV_SMOOTH = 5e-3  # |x| ~ sqrt(x^2 + s^2) - s, so L-BFGS can minimise TV itself
EPS = 1e-12
MAX_INV_T = 20.0  # 1/T bounds: from near-uniform to 20x sharper
MIN_INV_T = 0.02


@dataclass(frozen=True)
class Item:
    """One (community, question) to predict; ``fold_key`` (the question text) decides its fold."""

    community: str
    question: str
    n_options: int
    fold_key: str = ""

    @property
    def group(self) -> str:
        return self.fold_key or self.question


def fold_of(key: str, n_folds: int, salt: str = "outer") -> int:
    """A stable fold for a question: sha256, so no seed and no dependence on item order."""
    digest = hashlib.sha256(f"valuemulch-stack-{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n_folds


def outer_fold(text: str, n_folds: int, seed: int = 0) -> int:
    """The cross-fitting fold of a question, from its text and the seed (inner CV uses other salts)."""
    return fold_of(text, n_folds, f"outer:{seed}")


def items_hash(items: Sequence[Item], targets: Sequence[np.ndarray]) -> str:
    """sha256 of the fitted items and their targets in canonical order (what the artifact records)."""
    rows = sorted((i.community, i.question, [round(float(v), 9) for v in t]) for i, t in zip(items, targets, strict=True))
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


@dataclass
class _Batch:
    """Padded arrays: ``raw`` (B, N, K) backbone outputs, ``answers`` (B, N), ``mask`` (N, K) options."""

    mask: np.ndarray
    raw: np.ndarray
    answers: np.ndarray
    target: np.ndarray | None


def _batch(items: Sequence[Item], names: Sequence[str], predictions: Predictions, targets: Sequence[np.ndarray] | None) -> _Batch:
    n, k = len(items), max((i.n_options for i in items), default=1)
    mask = np.arange(k)[None, :] < np.array([i.n_options for i in items], dtype=int).reshape(-1, 1)
    raw, answers = np.zeros((len(names), n, k)), np.zeros((len(names), n), dtype=bool)
    for b, name in enumerate(names):
        rows = predictions[name]
        if len(rows) != n:
            raise ValueError(f"backbone '{name}' has {len(rows)} predictions for {n} items; give one (or None) per item")
        for j, (item, p) in enumerate(zip(items, rows, strict=True)):
            if p is None:
                continue
            p = np.asarray(p, dtype=np.float64)
            if p.shape != (item.n_options,) or not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
                raise ValueError(
                    f"backbone '{name}' on {item.community}/{item.question}: expected {item.n_options} finite "
                    f"non-negative values with positive sum, got {np.round(p, 4).tolist()}; pass None for a silent item"
                )
            raw[b, j, : item.n_options], answers[b, j] = p / p.sum(), True
    if n and not answers.any(axis=0).all():
        missing = items[int(np.argmin(answers.any(axis=0)))]
        raise ValueError(f"no backbone answers {missing.community}/{missing.question}; add one that answers every item (a prior)")
    target = None
    if targets is not None:
        target = np.zeros((n, k))
        for j, t in enumerate(targets):
            target[j, : len(t)] = np.asarray(t, dtype=np.float64) / np.sum(t)
    return _Batch(mask, raw, answers, target)


def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, logits, -np.inf)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.where(mask, np.exp(z), 0.0)
    return e / e.sum(axis=-1, keepdims=True)


def _loss(
    pred: np.ndarray, target: np.ndarray, mask: np.ndarray, weight: np.ndarray, objective: Objective
) -> tuple[float, np.ndarray]:
    """Weighted loss over items and its gradient with respect to ``pred`` (``weight`` sums to one)."""
    if objective == "ce":
        loss = -(weight[..., None] * target * np.log(pred + EPS)).sum()
        return float(loss), -weight[..., None] * target / (pred + EPS)
    diff = np.where(mask, pred - target, 0.0)
    root = np.sqrt(diff**2 + TV_SMOOTH**2)
    loss = 0.5 * (weight[..., None] * np.where(mask, root - TV_SMOOTH, 0.0)).sum()
    return float(loss), 0.5 * weight[..., None] * diff / root


def mean_tv(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean total variation over rows of padded (N, K) arrays (zeros in padding)."""
    return float(0.5 * np.abs(pred - target).sum(axis=-1).mean()) if len(pred) else float("nan")


# --------------------------------------------------------------------------------------------------
# Calibration


@dataclass(frozen=True)
class Calibration:
    """Temperature and optional per-position bias for one backbone: ``softmax(log p / T + bias)``."""

    temperature: float = 1.0
    bias: tuple[float, ...] = ()

    def logits(self, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        bias = np.zeros(raw.shape[-1])
        m = min(len(self.bias), len(bias))
        bias[:m] = self.bias[:m]
        return np.log(np.maximum(raw, FLOOR)) / self.temperature + bias

    def apply(self, raw: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return _softmax(self.logits(raw, mask), mask)


def fit_calibrations(
    batch: _Batch, use_bias: Sequence[bool], bias_l2: float, objective: Sequence[Objective] | None = None
) -> list[Calibration]:
    """All backbones' calibrations in one L-BFGS-B run (the losses are separable).

    ``objective`` per backbone, cross-entropy by default: convex, so its optimum is unique; smoothed
    TV is offered because cross-entropy flattens a backbone that TV would rather keep sharp.
    """
    assert batch.target is not None
    target: np.ndarray = batch.target
    n_b, _, k = batch.raw.shape
    logp = np.where(batch.mask, np.log(np.maximum(batch.raw, FLOOR)), 0.0)
    counts = np.maximum(batch.answers.sum(axis=1, keepdims=True), 1)
    weight = batch.answers / counts
    has_bias = np.asarray(use_bias, dtype=bool)
    by_tv = np.array([o == "tv" for o in objective or ["ce"] * n_b], dtype=bool)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return x[:n_b], x[n_b:].reshape(n_b, k) * has_bias[:, None]

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        inv_t, bias = unpack(x)
        pred = _softmax(inv_t[:, None, None] * logp + bias[:, None, :], batch.mask[None])
        loss_ce, _ = _loss(pred[~by_tv], target[None], batch.mask[None], weight[~by_tv], "ce")
        loss_tv, g_tv = _loss(pred[by_tv], target[None], batch.mask[None], weight[by_tv], "tv")
        g_logit = (pred - target[None]) * weight[..., None]  # cross-entropy through the softmax
        g_logit[by_tv] = pred[by_tv] * (g_tv - (g_tv * pred[by_tv]).sum(axis=-1, keepdims=True))
        g_logit = np.where(batch.mask[None], g_logit, 0.0)
        loss = loss_ce + loss_tv + bias_l2 * (bias**2).sum()
        g_bias = (g_logit.sum(axis=1) + 2 * bias_l2 * bias) * has_bias[:, None]
        return float(loss), np.concatenate([(g_logit * logp).sum(axis=(1, 2)), g_bias.ravel()])

    x0 = np.concatenate([np.ones(n_b), np.zeros(n_b * k)])
    bounds = [(MIN_INV_T, MAX_INV_T)] * n_b + [(None, None)] * (n_b * k)
    res = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 500})
    inv_t, bias = unpack(res.x)
    return [Calibration(float(1.0 / inv_t[b]), tuple(float(v) for v in bias[b]) if has_bias[b] else ()) for b in range(n_b)]


def _calibrated(batch: _Batch, calibrations: Sequence[Calibration]) -> np.ndarray:
    return np.stack([c.apply(batch.raw[b], batch.mask) for b, c in enumerate(calibrations)])


# --------------------------------------------------------------------------------------------------
# Pooling


def _pool(
    kind: Pooling, theta: np.ndarray, tau: float, q: np.ndarray, answers: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pool calibrated ``q`` (B, N, K) with per-item log-weights ``theta`` (N, B), renormalised over answerers."""
    z = np.where(answers.T, theta, -np.inf)
    w = np.exp(z - z.max(axis=1, keepdims=True))
    w = w / w.sum(axis=1, keepdims=True)
    if kind == "linear":
        return np.einsum("nb,bnk->nk", w, q), {"w": w}
    logq = np.where(mask[None], np.log(np.maximum(q, EPS)), 0.0)
    mean_log = np.einsum("nb,bnk->nk", w, logq)
    return _softmax(tau * mean_log, mask), {"w": w, "logq": logq, "mean_log": mean_log}


def _pool_grad(
    kind: Pooling, g_pred: np.ndarray, pred: np.ndarray, tau: float, q: np.ndarray, c: dict[str, np.ndarray], mask: np.ndarray
) -> tuple[np.ndarray, float]:
    """Gradients of the loss with respect to per-item log-weights (N, B) and to log(tau)."""
    w = c["w"]
    if kind == "linear":
        s = np.einsum("nk,bnk->nb", g_pred, q)
        return w * (s - (g_pred * pred).sum(axis=1, keepdims=True)), 0.0
    g_logit = np.where(mask, pred * (g_pred - (g_pred * pred).sum(axis=1, keepdims=True)), 0.0)
    s = np.einsum("nk,bnk->nb", g_logit, c["logq"])
    g_theta = tau * w * (s - (g_logit * c["mean_log"]).sum(axis=1, keepdims=True))
    return g_theta, float((g_logit * tau * c["mean_log"]).sum())


def _fit_pool(
    kind: Pooling,
    objective: Objective,
    q: np.ndarray,
    batch: _Batch,
    groups: np.ndarray,
    n_groups: int,
    penalty: np.ndarray,
    base: np.ndarray,
    tau: float | None,
) -> tuple[np.ndarray, float]:
    """Log-weights ``base + delta_g`` per group (N items in ``groups``), penalty_g * |delta_g|^2 each.

    ``tau`` None fits log(tau) too (the shared stage of log-linear pooling); otherwise it is fixed.
    """
    assert batch.target is not None
    target: np.ndarray = batch.target
    n_b, n = q.shape[0], q.shape[1]
    weight = np.full(n, 1.0 / n)
    fit_tau = kind == "loglinear" and tau is None

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        delta = x[: n_groups * n_b].reshape(n_groups, n_b)
        t = float(np.exp(x[-1])) if fit_tau else (tau or 1.0)
        pred, cache = _pool(kind, base[None] + delta[groups], t, q, batch.answers, batch.mask)
        loss, g_pred = _loss(pred, target, batch.mask, weight, objective)
        g_theta, g_rho = _pool_grad(kind, g_pred, pred, t, q, cache, batch.mask)
        g_delta = np.zeros((n_groups, n_b))
        np.add.at(g_delta, groups, g_theta)
        loss += float((penalty[:, None] * delta**2).sum())
        g_delta += 2 * penalty[:, None] * delta
        grad = g_delta.ravel()
        return loss, np.append(grad, g_rho) if fit_tau else grad

    x0 = np.zeros(n_groups * n_b + (1 if fit_tau else 0))
    res = minimize(f, x0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    delta = res.x[: n_groups * n_b].reshape(n_groups, n_b)
    return base[None] + delta, float(np.exp(res.x[-1])) if fit_tau else (tau or 1.0)


def _normalised(theta: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in theta - np.logaddexp.reduce(theta))


# --------------------------------------------------------------------------------------------------
# The layer


@dataclass(frozen=True)
class LayerConfig:
    """One point of the search: how to pool, what to minimise, how hard to regularise and shrink."""

    pooling: Pooling = "linear"
    objective: Objective = "ce"
    weight_l2: float = 1e-2  # on the shared log-weights: pulls towards equal weights
    shrink: float | None = None  # strength towards the shared weights; None: shared weights only
    position_bias: tuple[str, ...] = ()  # backbones whose calibration has a per-position bias
    calibrate_by_tv: tuple[str, ...] = ()  # backbones calibrated by smoothed TV, not cross-entropy
    bias_l2: float = 1e-2
    ranking: tuple[str, ...] = ()  # "single": backbones by preference, the first that answers predicts

    def label(self) -> str:
        if self.pooling == "single":
            return f"single:{self.ranking[0] if self.ranking else '?'}"
        shrink = "shared" if self.shrink is None else f"shrink={self.shrink:g}"
        return f"{self.pooling}/{self.objective}/l2={self.weight_l2:g}/{shrink}"


@dataclass(frozen=True)
class Layer:
    """A fitted layer: serialisable, deterministic, and it records what it was fitted on."""

    backbones: tuple[str, ...]
    config: LayerConfig
    calibrations: tuple[Calibration, ...]
    log_weights: tuple[float, ...]  # shared, normalised (logsumexp 0)
    community_log_weights: Mapping[str, tuple[float, ...]]
    tau: float
    items_hash: str
    cv_tv: Mapping[str, float] = field(default_factory=dict)  # inner-CV TV per candidate, when chosen so

    @property
    def weights(self) -> dict[str, float]:
        return {b: float(np.exp(v)) for b, v in zip(self.backbones, self.log_weights, strict=True)}

    def predict(self, items: Sequence[Item], predictions: Predictions) -> list[np.ndarray]:
        """Distributions for ``items``; ``predictions`` holds every backbone the layer was fitted with."""
        missing = [b for b in self.backbones if b not in predictions]
        if missing:
            raise ValueError(f"the layer pools {list(self.backbones)}; predictions lack {missing}")
        batch = _batch(items, self.backbones, predictions, None)
        q = _calibrated(batch, self.calibrations)
        pred = _predict_pooled(self, items, q, batch) if self.config.pooling != "single" else _predict_single(self, q, batch)
        return [pred[j, : i.n_options].copy() for j, i in enumerate(items)]

    def summary(self) -> dict[str, Any]:
        """What a reader needs to see of the layer: its backbones, what inner CV chose, each backbone's
        temperature, and the weights (shared and per community) each answer gets in the pool. A single
        backbone gets all the weight."""
        if self.config.pooling == "single":
            head = self.config.ranking[0] if self.config.ranking else self.backbones[0]
            shared = {b: float(b == head) for b in self.backbones}
        else:
            shared = self.weights
        return {
            "backbones": list(self.backbones),
            "choice": self.config.label(),
            "pooling": self.config.pooling,
            "temperatures": {b: c.temperature for b, c in zip(self.backbones, self.calibrations, strict=True)},
            "weights": shared,
            "community_weights": {
                c: {b: float(np.exp(v)) for b, v in zip(self.backbones, w, strict=True)}
                for c, w in sorted(self.community_log_weights.items())
            },
            "items_hash": self.items_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Layer:
        config = dict(data["config"])
        for key in ("position_bias", "calibrate_by_tv", "ranking"):
            config[key] = tuple(config[key])
        return cls(
            backbones=tuple(data["backbones"]),
            config=LayerConfig(**config),
            calibrations=tuple(Calibration(c["temperature"], tuple(c["bias"])) for c in data["calibrations"]),
            log_weights=tuple(data["log_weights"]),
            community_log_weights={c: tuple(v) for c, v in data["community_log_weights"].items()},
            tau=float(data["tau"]),
            items_hash=data["items_hash"],
            cv_tv=dict(data.get("cv_tv", {})),
        )


def _predict_pooled(layer: Layer, items: Sequence[Item], q: np.ndarray, batch: _Batch) -> np.ndarray:
    shared = np.array(layer.log_weights)
    theta = (
        np.stack([np.array(layer.community_log_weights.get(i.community, shared)) for i in items])
        if items
        else np.zeros((0, len(shared)))
    )
    return _pool(layer.config.pooling, theta, layer.tau, q, batch.answers, batch.mask)[0]


def _predict_single(layer: Layer, q: np.ndarray, batch: _Batch) -> np.ndarray:
    return _chain([layer.backbones.index(b) for b in layer.config.ranking], q, batch.answers)


def _chain(order: Sequence[int], q: np.ndarray, answers: np.ndarray) -> np.ndarray:
    """Each item from the first backbone in ``order`` (then any other) that answers it."""
    pred = np.zeros(q.shape[1:])
    done = np.zeros(q.shape[1], dtype=bool)
    for b in [*order, *range(q.shape[0])]:
        take = answers[b] & ~done
        pred[take], done = q[b, take], done | take
    return pred


def fit_layer(items: Sequence[Item], predictions: Predictions, targets: Sequence[np.ndarray], config: LayerConfig) -> Layer:
    """Fit calibrations, then shared weights, then (with ``config.shrink``) per-community weights."""
    order = sorted(range(len(items)), key=lambda j: (items[j].community, items[j].question))
    items = [items[j] for j in order]
    targets = [targets[j] for j in order]
    names = tuple(sorted(predictions))
    batch = _batch(items, names, {b: [predictions[b][j] for j in order] for b in names}, targets)
    objective: list[Objective] = ["tv" if b in config.calibrate_by_tv else "ce" for b in names]
    calibrations = fit_calibrations(batch, [b in config.position_bias for b in names], config.bias_l2, objective)
    layer = _fit_weights(items, batch, names, _calibrated(batch, calibrations), config)
    return Layer(names, config, tuple(calibrations), *layer, items_hash=items_hash(items, targets))


def _subset(batch: _Batch, keep: np.ndarray) -> _Batch:
    target = None if batch.target is None else batch.target[keep]
    return _Batch(batch.mask[keep], batch.raw[:, keep], batch.answers[:, keep], target)


def _fit_shared(batch: _Batch, q: np.ndarray, config: LayerConfig) -> tuple[np.ndarray, float]:
    """Shared log-weights (and tau for log-linear pooling), L2 towards equal weights."""
    n = q.shape[1]
    zeros, one = np.zeros(n, dtype=int), np.array([config.weight_l2])
    theta, tau = _fit_pool(config.pooling, config.objective, q, batch, zeros, 1, one, np.zeros(q.shape[0]), None)
    return theta[0], tau


def _fit_communities(
    communities: Sequence[str], batch: _Batch, q: np.ndarray, config: LayerConfig, shared: np.ndarray, tau: float
) -> dict[str, np.ndarray]:
    """Per-community log-weights, each ``shared + delta_c`` at a cost ``share_c * shrink * |delta_c|^2``."""
    assert config.shrink is not None
    names = sorted(set(communities))
    groups = np.array([names.index(c) for c in communities])
    share = np.bincount(groups, minlength=len(names)) / len(communities)
    per, _ = _fit_pool(config.pooling, config.objective, q, batch, groups, len(names), config.shrink * share, shared, tau)
    return {c: per[g] for g, c in enumerate(names)}


def _fit_weights(
    items: Sequence[Item], batch: _Batch, names: Sequence[str], q: np.ndarray, config: LayerConfig
) -> tuple[tuple[float, ...], dict[str, tuple[float, ...]], float]:
    if config.pooling == "single":
        return _normalised(np.zeros(len(names))), {}, 1.0
    shared, tau = _fit_shared(batch, q, config)
    if config.shrink is None:
        return _normalised(shared), {}, tau
    per = _fit_communities([i.community for i in items], batch, q, config, shared, tau)
    return _normalised(shared), {c: _normalised(v) for c, v in per.items()}, tau
