"""The per-item sidecar: writing `ItemRecord`s (from `ItemScores.records`), reading them back, and
re-scoring a metric from them.

The records hold each item's distributions exactly as scored, so a metric (a new one too) can be
computed again from the file alone, without the model, the data or a re-run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from valuemulch.certify._record import RECORDS_FILE, ItemRecord, MetricSummary, RecordsRef
from valuemulch.errors import ConfigError
from valuemulch.metrics import METRICS, score_items, summarise


def records_bytes(records: Sequence[ItemRecord]) -> bytes:
    """The sidecar's exact bytes: one canonical JSON object per line (sorted keys, no spaces)."""
    lines = (
        json.dumps(r.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        for r in records
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def records_ref(records: Sequence[ItemRecord]) -> tuple[RecordsRef, bytes]:
    """The reference the signed certificate carries, and the bytes it refers to."""
    data = records_bytes(records)
    return RecordsRef(file=RECORDS_FILE, sha256=hashlib.sha256(data).hexdigest(), n_records=len(records)), data


def read_records(path: Path) -> list[ItemRecord]:
    """Every record of a sidecar file, validated."""
    out = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{path}: cannot read the per-item records ({err}); keep {RECORDS_FILE} beside certificate.json."
        ) from None
    for n, line in enumerate(lines, 1):
        try:
            out.append(ItemRecord.model_validate_json(line))
        except ValidationError as err:
            raise ConfigError(f"{path}:{n}: not an item record ({err.errors()[0]['msg']}).") from None
    return out


def rescore(records: Sequence[ItemRecord], set_name: str, metric: str, *, n_boot: int, seed: int) -> MetricSummary:
    """``metric`` over the records of ``set_name``, computed from their distributions alone.

    With the certificate's ``config.n_boot`` and ``config.seed`` it reproduces the stored summary
    (``seen`` gives ``evaluation.seen.metrics[metric]``).
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {list(METRICS)}.")
    chosen = [r for r in records if r.set == set_name]
    if not chosen:
        raise ConfigError(f"no records of set {set_name!r}; sets present: {sorted({r.set for r in records})}.")
    values = score_items([r.human for r in chosen], [r.predicted for r in chosen], [r.ordinal for r in chosen])[metric]
    summary = summarise(
        values,
        [r.community for r in chosen],
        [r.question_id for r in chosen],
        higher_is_better=METRICS[metric].higher_is_better,
        n_boot=n_boot,
        seed=seed,
    )
    return MetricSummary.of(summary)
