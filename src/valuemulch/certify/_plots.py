"""Inline SVG plots for the HTML report: no scripts, fonts or URLs, every label escaped.

Colours are Okabe-Ito and every series also has its own marker shape, so the plots read without
colour vision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from valuemulch.certify._cert_values import NOT_EVALUATED, _budget_label, _ci, _finite, _mean, _pair, _text_summary
from valuemulch.certify._html import _e

MODEL_COLOUR = "#1d3f8f"


# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), each with its own shape.
PALETTE = ("#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#6b6b6b", "#0072B2", "#8c564b")


SHAPES = ("square", "triangle", "diamond", "triangle-down", "star", "pentagon", "hexagon")


SERIES = (("human", "#333333"), ("model", MODEL_COLOUR), ("prior", "#E69F00"))


def _svg(width: float, height: float, label: str, body: str) -> str:
    w, h = round(width), round(height)
    return (
        f'<svg role="img" aria-label="{_e(label)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}">'
        f"<title>{_e(label)}</title>{body}</svg>"
    )


def _plot(svg: str, caption: str = "") -> str:
    return f'<figure class="plot">{svg}{f"<figcaption>{caption}</figcaption>" if caption else ""}</figure>'


def _text(
    x: float, y: float, s: str, *, anchor: str = "start", size: float = 11, fill: str = "#333", extra: str = "", tip: str = ""
) -> str:
    """SVG text; ``tip`` is a tooltip, for a label shortened to fit."""
    title = f"<title>{_e(tip)}</title>" if tip else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" {extra}>{title}{_e(s)}</text>'


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _polygon(shape: str) -> list[tuple[float, float]]:
    """Unit-radius outline of a marker shape, y pointing down."""
    if shape == "square":
        return [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]
    if shape == "diamond":
        return [(0, -1.2), (1.05, 0), (0, 1.2), (-1.05, 0)]
    corners, start, inner = {
        "triangle": (3, -90, 0),
        "triangle-down": (3, 90, 0),
        "star": (5, -90, 0.45),
        "pentagon": (5, -90, 0),
    }.get(shape, (6, 0, 0))
    step = 360 / corners
    angles = [(start + i * step, 1.15) for i in range(corners)]
    if inner:  # a star: a point at half the radius between each pair of tips
        angles = [p for a, r in angles for p in ((a, 1.3), (a + step / 2, 1.3 * inner))]
    return [(r * math.cos(math.radians(a)), r * math.sin(math.radians(a))) for a, r in angles]


def _marker(shape: str, x: float, y: float, colour: str, *, hollow: bool = False, r: float = 5, title: str = "") -> str:
    """A data marker; hollow markers are the oracles, references rather than competitors."""
    paint = f'fill="#fff" stroke="{colour}" stroke-width="1.6"' if hollow else f'fill="{colour}" stroke="#fff" stroke-width="0.6"'
    tip = f"<title>{_e(title)}</title>" if title else ""
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {paint}>{tip}</circle>'
    points = " ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}" for dx, dy in _polygon(shape))
    return f'<polygon points="{points}" {paint}>{tip}</polygon>'


def _ticks(lo: float, hi: float, n: int = 6) -> list[tuple[float, str]]:
    """Round tick values from lo to hi (about n of them), each with a label precise enough to tell apart."""
    raw = (hi - lo) / (n + 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    digits = max(2, -math.floor(math.log10(step) + 1e-9))
    first = math.ceil(lo / step - 1e-9) * step
    values = [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]
    return [(v, f"{v:.{digits}f}") for v in values]


def _extent(values: Iterable[float | None], *, floor: float = 0.0, ceiling: float = 1.0) -> tuple[float, float]:
    """A padded axis range around the data, inside [floor, ceiling]; a fixed one where there is no data."""
    found = [v for v in values if v is not None]
    if not found:
        return floor, ceiling
    lo, hi = min(found), max(found)
    pad = max((hi - lo) * 0.08, 0.01)
    return max(floor, lo - pad), min(ceiling, hi + pad)


def _x_axis(lo: float, hi: float, x0: float, x1: float, top: float, bottom: float) -> str:
    scale = (x1 - x0) / (hi - lo)
    parts = []
    for t, tick in _ticks(lo, hi):
        x = x0 + (t - lo) * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#e3e6eb"/>')
        parts.append(_text(x, bottom + 14, tick, anchor="middle", fill="#5f6670"))
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str, str, bool]], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Legend entries (label, colour, shape, hollow) flowed into rows; returns the SVG and its height."""
    parts, x, y = [], x0, y0 + 8
    for label, colour, shape, hollow in items:
        w = 26 + 6.4 * len(label)
        if x + w > x0 + width and x > x0:
            x, y = x0, y + 18
        parts.append(_marker(shape, x + 6, y, colour, hollow=hollow) + _text(x + 16, y + 4, label))
        x += w + 14
    return "".join(parts), y - y0 + 14


def _dot_whisker(
    rows: Sequence[tuple[str, Any]], others: Sequence[tuple[str, str, str, bool, Mapping[str, float | None]]], label: str
) -> str:
    """One row per community: the model's mean and CI, beside other policies' means as markers."""
    width, right = 940.0, 150.0
    left = min(240.0, 16 + 6.6 * max((len(c) for c, _ in rows), default=8))
    legend_items = [("model (95% CI)", MODEL_COLOUR, "circle", False)] + [(n, c, s, h) for n, c, s, h, _ in others]
    legend, legend_h = _legend(legend_items, left, 6, width - left - 10)
    row_h, top = 26.0, 14 + legend_h
    values: list[float | None] = []
    for _, summary in rows:
        values += [_mean(summary), *(_ci(summary) or ())]
    for *_, by_community in others:
        values += [_finite(v) for v in by_community.values()]
    lo, hi = _extent(values)
    bottom = top + row_h * len(rows)
    x0, x1 = left, width - right

    def sx(v: float) -> float:
        return x0 + (v - lo) / (hi - lo) * (x1 - x0)

    parts = [legend, _x_axis(lo, hi, x0, x1, top, bottom)]
    spread = [(i - (len(others) - 1) / 2) * min(3.0, 16 / max(len(others), 1)) for i in range(len(others))]
    for i, (community, summary) in enumerate(rows):
        y = top + row_h * (i + 0.5)
        if i % 2:
            parts.append(f'<rect x="0" y="{y - row_h / 2:.1f}" width="{width}" height="{row_h}" fill="#f7f8fa"/>')
            parts.insert(1, parts.pop())  # stripes under the grid
        parts.append(_text(left - 8, y + 4, _clip(community, 34), anchor="end", size=12, fill="#1b1b1b", tip=community))
        for (name, colour, shape, hollow, by_community), dy in zip(others, spread, strict=True):
            v = _finite(by_community.get(community))
            if v is not None:
                parts.append(_marker(shape, sx(v), y + dy, colour, hollow=hollow, r=4.5, title=f"{name}: {community} {v:.3f}"))
        mean, ci = _mean(summary), _ci(summary)
        if ci:
            parts.append(
                f'<line x1="{sx(ci[0]):.1f}" y1="{y:.1f}" x2="{sx(ci[1]):.1f}" y2="{y:.1f}" stroke="{MODEL_COLOUR}" stroke-width="2.4"/>'
            )
            for end in ci:
                parts.append(
                    f'<line x1="{sx(end):.1f}" y1="{y - 5:.1f}" x2="{sx(end):.1f}" y2="{y + 5:.1f}" stroke="{MODEL_COLOUR}" stroke-width="2"/>'
                )
        if mean is not None:
            parts.append(
                _marker("circle", sx(mean), y, MODEL_COLOUR, r=5.5, title=f"model: {community} {_text_summary(summary)}")
            )
        parts.append(_text(x1 + 12, y + 4, _text_summary(summary) if mean is not None else NOT_EVALUATED.lower(), size=11.5))
    parts.append(
        _text((x0 + x1) / 2, bottom + 30, "1-JSD (higher is closer to the community's answers)", anchor="middle", fill="#5f6670")
    )
    return _svg(width, bottom + 38, label, "".join(parts))


def _question_bars(q: Mapping[str, Any]) -> str:
    """Grouped horizontal bars per option: the community's human answers, the model and the prior."""
    options = [str(o) for o in q.get("options") or []]
    series = [(name, colour, list(q.get(name) or [])) for name, colour in SERIES]
    width, left, right = 520.0, 180.0, 46.0
    legend, legend_h = _legend([(n, c, "square", False) for n, c, _ in series], left, 4, width - left)
    bar, group = 7.0, 3 * 7.0 + 9
    top = 8 + legend_h
    bottom = top + group * len(options)
    peak = max((_finite(v) or 0.0 for _, _, vs in series for v in vs), default=0.0)
    hi = min(1.0, max(0.1, math.ceil(peak * 11) / 10))  # the next tenth above the tallest bar, with room for its label
    x0, x1 = left, width - right
    parts = [legend, _x_axis(0, hi, x0, x1, top, bottom)]
    for i, option in enumerate(options):
        y = top + group * i + 4
        parts.append(_text(left - 8, y + 1.5 * bar + 4, _clip(option, 30), anchor="end", tip=option))
        for j, (name, colour, values) in enumerate(series):
            v = _finite(values[i]) if i < len(values) else None
            if v is None:
                continue
            w = max(0.0, v) / hi * (x1 - x0)
            parts.append(
                f'<rect x="{x0:.1f}" y="{y + j * bar:.1f}" width="{w:.1f}" height="{bar - 1:.1f}" fill="{colour}">'
                f"<title>{_e(f'{name}: {option} {v:.3f}')}</title></rect>"
            )
            if j == 0 or name == "model":
                parts.append(_text(x0 + w + 4, y + j * bar + bar - 1, f"{v:.0%}", size=9, fill=colour))
    label = f"Answer shares for question {q.get('question_id')} in {q.get('community')}: human, model and prior per option"
    return _svg(width, bottom + 20, label, "".join(parts))


Series = tuple[str, str, str, str, list[float | None]]  # label, colour, shape, dash pattern, values


def _line_panel(labels: Sequence[str], series: Sequence[Series], x0: float, top: float, width: float, title: str) -> str:
    """Points and lines over categories, with its own y axis: a panel of the trade-off chart."""
    height = 200.0
    bottom = top + height
    lo, hi = _extent([v for *_, vs in series for v in vs])
    step = width / max(len(labels), 1)

    def sy(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * height

    parts = [_text(x0, top - 8, title, size=12, fill="#1b1b1b", extra='font-weight="600"')]
    for t, tick in _ticks(lo, hi, 5):
        parts.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x0 + width}" y2="{sy(t):.1f}" stroke="#e3e6eb"/>')
        parts.append(_text(x0 - 6, sy(t) + 4, tick, anchor="end", fill="#5f6670"))
    parts += [_text(x0 + step * (i + 0.5), bottom + 16, label, anchor="middle") for i, label in enumerate(labels)]
    for name, colour, shape, dash, values in series:
        points = [(x0 + step * (i + 0.5), sy(v), v) for i, v in enumerate(values) if v is not None]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>')
        parts += [_marker(shape, x, y, colour, title=f"{name}: {v:.3f}") for x, y, v in points]
    parts.append(_text(x0 + width / 2, bottom + 34, "tier-2 budget (max divergence)", anchor="middle", fill="#5f6670"))
    return "".join(parts)


def _tradeoff_chart(rows: Sequence[Mapping[str, Any]]) -> str:
    """Agreement (mean and worst community) beside distance from the population, against the budget.

    Two panels with their own axes: on one shared axis the distance, near zero, flattens the 1-JSD lines.
    """
    worst = [_finite(_pair(r.get("worst_community"))[1]) for r in rows]
    agreement: list[Series] = [
        ("mean 1-JSD", MODEL_COLOUR, "circle", "", [_finite(r.get("mean")) for r in rows]),
        ("worst-community 1-JSD", "#D55E00", "triangle", "6 4", worst),
    ]
    distance: list[Series] = [
        ("mean JSD from population", "#6b6b6b", "square", "2 3", [_finite(r.get("mean_jsd_from_population")) for r in rows])
    ]
    labels = [_budget_label(r.get("budget")) for r in rows]
    legend, legend_h = _legend([(n, c, s, False) for n, c, s, _, _ in agreement + distance], 60, 4, 860)
    top = legend_h + 30
    parts = [legend, _line_panel(labels, agreement, 60, top, 500, "1-JSD (higher is better)")]
    parts.append(_line_panel(labels, distance, 650, top, 270, "JSD from the population answer"))
    label = "Trade-off: 1-JSD and distance from the population at each personalisation budget"
    return _svg(940, top + 242, label, "".join(parts))


def _redline_chart(per_community: Mapping[str, Any], limit: float | None) -> str:
    """Bars of each community's raw mass on crossing options, against the policy's limit."""
    items = [(str(c), _finite(v)) for c, v in per_community.items()]
    width, right, row_h = 720.0, 60.0, 20.0
    left = min(240.0, 16 + 6.6 * max((len(c) for c, _ in items), default=8))
    top, bottom = 24.0, 24.0 + row_h * len(items)
    hi = max([v or 0.0 for _, v in items] + [limit or 0.0, 0.01]) * 1.15
    x0, x1 = left, width - right
    parts = [_x_axis(0, hi, x0, x1, top, bottom)]
    for i, (community, v) in enumerate(items):
        y = top + row_h * i
        parts.append(_text(left - 8, y + 14, _clip(community, 34), anchor="end"))
        if v is not None:
            over = limit is not None and v > limit
            colour = "#b42318" if over else "#0072B2"
            parts.append(f'<rect x="{x0}" y="{y + 4}" width="{v / hi * (x1 - x0):.1f}" height="{row_h - 8}" fill="{colour}"/>')
            parts.append(_text(x0 + v / hi * (x1 - x0) + 4, y + 14, f"{v:.3f}", size=10))
    if limit is not None:
        x = x0 + limit / hi * (x1 - x0)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom + 2}" stroke="#b42318" stroke-width="2" stroke-dasharray="5 3"/>'
        )
        parts.append(_text(x, top - 10, f"limit {limit:.3f}", anchor="middle", fill="#b42318"))
    parts.append(_text((x0 + x1) / 2, bottom + 32, "mean raw mass on labelled crossing options", anchor="middle", fill="#5f6670"))
    return _svg(width, bottom + 40, "Red-line preference per community against the limit", "".join(parts))
