"""Reading a certificate's numbers for display, shared by the HTML report and the model card.

The renderers read a validated `Report`, dumped to plain JSON values; sections the schema allows to
be null (no frontier runs, no held-out communities, a metric without a value) become ``None`` or a
dash here instead of failing. Which metrics exist, their labels and orientation come from
`valuemulch.metrics.METRICS` alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from valuemulch.metrics import METRICS

#: The arrow beside a metric's label, by its `MetricSpec.orientation`.
ARROWS = {"higher": "↑", "lower": "↓", "zero": "→0"}
#: The tooltip beside it.
READING = {"higher": "higher is better", "lower": "lower is better", "zero": "0 is ideal"}


def metric_label(name: str) -> str:
    """``1-JSD ↑``: a metric's label and which way is better."""
    spec = METRICS[name]
    return f"{spec.label} {ARROWS[spec.orientation]}"


NOT_EVALUATED = "Not evaluated"


def _get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or None where any level is missing or null: certificates may omit sections."""
    for key in keys:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _num(value: Any, digits: int = 3, *, signed: bool = False) -> str:
    v = _finite(value)
    if v is None:
        return "—"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _mean(summary: Any) -> float | None:
    return _finite(_get(summary, "mean"))


def _ci(summary: Any) -> tuple[float, float] | None:
    ci = _get(summary, "ci")
    if not isinstance(ci, Sequence) or len(ci) != 2:
        return None
    lo, hi = _finite(ci[0]), _finite(ci[1])
    return (lo, hi) if lo is not None and hi is not None else None


def _text_summary(summary: Any, *, signed: bool = False) -> str:
    """``0.787 [0.772, 0.802]``: the plain-text form, for the model card and SVG titles."""
    ci = _ci(summary)
    tail = f" [{_num(ci[0], signed=signed)}, {_num(ci[1], signed=signed)}]" if ci else ""
    return _num(_mean(summary), signed=signed) + tail


def _pair(value: Any) -> tuple[str, float | None]:
    """A ``[name, number]`` pair (worst community, highest red-line preference), tolerating a malformed one."""
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return str(value[0]), _finite(value[1])
    return "—", None


def _budget_label(budget: Any) -> str:
    return "none" if budget is None else _num(budget, 2)


def _tradeoff_rows(cert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Trade-off points by budget, no budget last: tight to loose reads left to right."""
    rows = [r for r in _get(cert, "evaluation", "tradeoff") or [] if isinstance(r, Mapping)]
    return sorted(rows, key=lambda r: (r.get("budget") is None, _finite(r.get("budget")) or 0.0))


def _baselines(cert: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Deployable baselines first, then the oracles that only serve as references."""
    found = _get(cert, "evaluation", "baselines") or {}
    return sorted(((str(k), v) for k, v in found.items() if isinstance(v, Mapping)), key=lambda kv: bool(kv[1].get("oracle")))


def _detector_rows(detector: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The detector's reports, named: each probe split, then the real survey questions."""
    probes = detector.get("probes") or {}
    rows = [(f"{split} probes", r) for split, r in probes.items() if isinstance(r, Mapping)]
    if isinstance(detector.get("surveys_test"), Mapping):
        rows.append(("test survey questions", detector["surveys_test"]))
    return rows
