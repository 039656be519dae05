"""``verify --requery N``: ask the live model again on a seeded sample of the certified items.

Replaying the evaluation log proves the certificate's numbers follow from the answers it logged; it
cannot say whether the model still gives those answers. A hosted model changes behind its name, so
this asks it again, past every cache, for N (community, question) items of the seen test split, with
everything else (a cross-fitted layer's training answers, say) replayed from the log. The drift of
each metric is the live mean minus the logged mean over those items.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._crossfit import answerer
from valuemulch.certify._evaluate import score_policy
from valuemulch.certify._record import ItemRecord
from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.metrics import METRICS
from valuemulch.policies import EvaluationLog, Policy, logging_to
from valuemulch.types import Norms

#: A metric's mean over the re-asked items may move this much (absolute) before verify fails: about the
#: width of a per-community CI on 30 items, far above float noise, well below a changed model's drift.
DRIFT_TOLERANCE = 0.02
WORST_SHOWN = 5


@dataclass(frozen=True)
class Drift:
    metric: str
    logged: float
    live: float

    @property
    def change(self) -> float:
        return self.live - self.logged


@dataclass
class Requery:
    """What asking the live model again found."""

    items: list[tuple[str, str]]
    drifts: list[Drift]
    worst: list[tuple[str, str, float, float]]  # (community, question, logged tv, live tv), largest change first
    asked: int  # prompts sent to the live model
    tolerance: float

    @property
    def beyond(self) -> list[Drift]:
        return [d for d in self.drifts if abs(d.change) > self.tolerance]

    def table(self) -> str:
        rows = [f"{'metric':<16}{'logged':>10}{'live':>10}{'drift':>10}"]
        rows += [f"{d.metric:<16}{d.logged:>10.4f}{d.live:>10.4f}{d.change:>+10.4f}" for d in self.drifts]
        if any(abs(a - b) > 0 for *_, a, b in self.worst):
            rows.append("largest changes (tv): " + "; ".join(f"{c} / {q}: {a:.3f} -> {b:.3f}" for c, q, a, b in self.worst))
        return "\n  ".join(rows)


def sample_items(records: Sequence[ItemRecord], n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` distinct (community, question id) pairs of the seen test records, drawn with ``seed``."""
    pairs = sorted({(r.community, r.question_id) for r in records if r.set == "seen"})
    if n < 1:
        raise ConfigError(f"--requery needs a number of items >= 1; got {n}.")
    chosen = np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [pairs[i] for i in sorted(chosen)]


def requery(
    model_dir: Path,
    testbed: Testbed,
    config: CertifyConfig,
    log_path: Path,
    records: Sequence[ItemRecord],
    n: int,
    *,
    tolerance: float = DRIFT_TOLERANCE,
    say: Callable[[str], None] = lambda _m: None,
) -> Requery:
    """Score the sampled items with live answers and compare with the records the certificate signed."""
    items = sample_items(records, n, config.seed)
    saved = Policy.load(model_dir)
    saved.use_data_root(testbed.data_root)
    seen_test = testbed.items(config.split, "seen")
    log = EvaluationLog.read(log_path, live=items)
    say(f"asking the live model again on {len(items)} items")
    with logging_to(log):
        policy, _ = answerer(saved, testbed, seen_test, config, say)
        chosen = Norms([item for c, q in items if (item := seen_test.get(c, q)) is not None])
        live = score_policy(policy, chosen, refusals=config.refusals)
    logged = {(r.community, r.question_id): r.scores for r in records if r.set == "seen"}
    keys = [k for k in live.keys if k in logged]
    drifts = []
    for metric in METRICS:
        pairs = [(logged[k].get(metric), float(v)) for k, v in zip(live.keys, live.scores[metric], strict=True) if k in logged]
        pairs = [(a, b) for a, b in pairs if a is not None and np.isfinite(b)]
        if pairs:
            drifts.append(Drift(metric, float(np.mean([a for a, _ in pairs])), float(np.mean([b for _, b in pairs]))))
    tv_live = dict(zip(live.keys, live.scores["tv"], strict=True)) if "tv" in live.scores else {}
    worst = sorted(
        ((c, q, float(logged[(c, q)].get("tv") or 0.0), float(tv_live.get((c, q), np.nan))) for c, q in keys),
        key=lambda row: -abs(row[3] - row[2]),
    )[:WORST_SHOWN]
    return Requery(items, drifts, worst, log.asked_live, tolerance)
