"""Render a certificate as one self-contained HTML page and as a Markdown model card.

Both are pure functions of the certificate dict, so a report can be rebuilt from ``certificate.json``
alone. The page needs nothing outside itself (inline CSS, plots as inline SVG, no scripts, fonts or
URLs) so it reads the same offline and in an archive years later. Every string taken from the
certificate is escaped: question texts and labels come from data we do not control. Missing or
``null`` sections render as "not evaluated" rather than failing, because a certificate for a testbed
without frontier runs or held-out communities is still a certificate.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["render_model_card", "render_report"]

METRICS = ("one_minus_jsd", "tv", "representativeness", "wasserstein", "kl", "top1_agreement")
LABELS = {
    "one_minus_jsd": "1-JSD",
    "tv": "TV",
    "representativeness": "representativeness",
    "wasserstein": "Wasserstein",
    "kl": "KL",
    "top1_agreement": "top-1 agreement",
}
LOWER_IS_BETTER = frozenset({"tv", "wasserstein", "kl"})
MODEL_COLOUR = "#1d3f8f"
# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies), each with its own shape.
PALETTE = ("#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#6b6b6b", "#0072B2", "#8c564b")
SHAPES = ("square", "triangle", "diamond", "triangle-down", "star", "pentagon", "hexagon")
SERIES = (("human", "#333333"), ("model", MODEL_COLOUR), ("prior", "#E69F00"))
NOT_EVALUATED = "Not evaluated"

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b1b1b;
background:#f6f7f9;margin:0}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:36px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e6eb}
h3{font-size:16px;margin:20px 0 6px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}
th,td{border-bottom:1px solid #e3e6eb;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f1f3f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ci{display:block;color:#5f6670;font-size:11.5px}
.better{color:#0a6b3d}.worse{color:#a11d1d}.tie{color:#5f6670}
.badge{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:700;letter-spacing:.04em;color:#fff}
.pass{background:#137a47}.fail{background:#b42318}.tag{display:inline-block;font-size:11px;padding:0 6px;
border-radius:3px;background:#eef0f4;color:#444;margin-left:6px}
.note{background:#fff6d6;border:1px solid #ecd98b;padding:8px 12px;border-radius:4px}
.muted{color:#5f6670}.verdict{font-size:18px;margin:10px 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}dl.meta dt{color:#5f6670}
dl.meta dd{margin:0;overflow-wrap:anywhere}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f6f7f9;padding:8px;overflow:auto;max-height:320px}
.wide{overflow-x:auto}figure.plot{margin:10px 0 18px}figure.plot svg{max-width:100%;height:auto;display:block}
figcaption{font-size:13px;color:#333;margin-top:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(500px,1fr));gap:4px 24px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif}
"""


# ---------------------------------------------------------------------------------------------- values


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


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


def _cell(summary: Any, *, signed: bool = False, cls: str = "", extra: str = "") -> str:
    ci = _ci(summary)
    ci_html = f'<span class="ci">[{_num(ci[0], signed=signed)}, {_num(ci[1], signed=signed)}]</span>' if ci else ""
    return f'<td class="num {cls}">{_num(_mean(summary), signed=signed)}{ci_html}{extra}</td>'


def _direction(diff: Any, metric: str) -> str:
    """Whether a model-minus-other difference favours the model, with its CI clear of zero."""
    ci = _ci(diff)
    if ci is None or ci[0] <= 0 <= ci[1]:
        return "tie"
    return "better" if (ci[0] > 0) != (metric in LOWER_IS_BETTER) else "worse"


def _metric_head(metric: str) -> str:
    arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
    return f'<th title="{"lower" if metric in LOWER_IS_BETTER else "higher"} is better">{_e(LABELS.get(metric, metric))} {arrow}</th>'


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


# ---------------------------------------------------------------------------------------------- SVG


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


# ---------------------------------------------------------------------------------------------- sections


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table from already-escaped cells; a cell starting with ``<td`` or ``<th`` is used as is."""
    body = "".join(
        "<tr>" + "".join(c if c.startswith(("<td", "<th")) else f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        '<div class="wide"><table><thead><tr>'
        + "".join(h if h.startswith("<th") else f"<th>{h}</th>" for h in head)
        + f"</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _dl(pairs: Iterable[tuple[str, Any]]) -> str:
    return '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _json_block(value: Any) -> str:
    return f"<pre>{_e(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def _badge(passed: Any, yes: str = "PASS", no: str = "FAIL") -> str:
    return f'<span class="badge {"pass" if passed is True else "fail"}">{yes if passed is True else no}</span>'


def _header(cert: Mapping[str, Any]) -> str:
    verdict = _get(cert, "verdict") or {}
    rules = [r for r in verdict.get("rules") or [] if isinstance(r, Mapping)]
    note = cert.get("_note")
    parts = [
        f'<p class="note">{_e(note)}</p>' if note else "",
        f"<h1>ValueMulch certificate: {_e(_get(cert, 'model', 'label') or 'unnamed model')}</h1>",
        f'<p class="verdict">{_badge(verdict.get("certified"), "CERTIFIED", "NOT CERTIFIED")} '
        f'<span class="muted">under {_e(verdict.get("policy_file") or "—")}</span></p>',
        _dl(
            [
                (
                    "model",
                    f"{_e(_get(cert, 'model', 'label') or '—')} <span class='muted'>(policy {_e(_get(cert, 'model', 'policy') or '—')})</span>",
                ),
                ("testbed", _e(_get(cert, "testbed", "name") or "—")),
                ("certificate id", f"<code>{_e(cert.get('certificate_id') or '—')}</code>"),
                ("created", _e(cert.get("created") or "—")),
                ("schema", _e(cert.get("schema") or "—")),
                ("policy hash", f"<code>{_e(verdict.get('policy_hash') or '—')}</code>"),
            ]
        ),
        "<h3>Rules</h3>",
        _table(
            ["rule", "result", "detail"],
            ([f"<code>{_e(r.get('id'))}</code>", _badge(r.get("passed")), _e(r.get("detail") or "")] for r in rules),
        )
        if rules
        else f"<p>{NOT_EVALUATED}: the certificate lists no rules.</p>",
    ]
    return "<header>" + "".join(parts) + "</header>"


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _agreement(cert: Mapping[str, Any]) -> str:
    per_community = _get(cert, "evaluation", "seen", "per_community") or {}
    if not per_community:
        return f"<p>{NOT_EVALUATED}: no per-community results.</p>"
    rows = [(str(c), _get(v, "one_minus_jsd")) for c, v in per_community.items()]
    others = []
    for i, (name, baseline) in enumerate(_baselines(cert)):
        oracle = bool(baseline.get("oracle"))
        by_community = {str(c): _mean(_get(v, "one_minus_jsd")) for c, v in (baseline.get("per_community") or {}).items()}
        label = f"{name} (oracle, reference)" if oracle else name
        others.append((label, PALETTE[i % len(PALETTE)], SHAPES[i % len(SHAPES)], oracle, by_community))
    chart = _dot_whisker(rows, others, "Per-community 1-JSD: the model with 95% CIs beside every baseline")
    caption = (
        "Dot and whisker: the model's 1-JSD per community with its 95% bootstrap CI. Filled markers are deployable "
        "baselines; hollow markers are oracles, which read the evaluated questions' human data and serve only as references."
    )
    table = _table(
        ["community", "model 1-JSD", *(_e(n) for n, _ in _baselines(cert))],
        ([_e(c), _cell(s), *(_cell(_get(b, "per_community", c, "one_minus_jsd")) for _, b in _baselines(cert))] for c, s in rows),
    )
    return _plot(chart, caption) + f"<details><summary>Numbers</summary>{table}</details>"


def _metrics(cert: Mapping[str, Any]) -> str:
    seen = _get(cert, "evaluation", "seen") or {}
    metrics = [m for m in METRICS if m in (seen.get("metrics") or {})] or list(METRICS)
    head = ["policy", "n items", *(_metric_head(m) for m in metrics), "Δ 1-JSD, model − baseline"]
    rows = [
        [
            "<strong>model</strong>",
            f'<td class="num">{_e(seen.get("n_items", "—"))}</td>',
            *(_cell(_get(seen, "metrics", m)) for m in metrics),
            "<td></td>",
        ]
    ]
    for name, b in _baselines(cert):
        diff = _get(b, "difference", "one_minus_jsd")
        tag = '<span class="tag">oracle · reference</span>' if b.get("oracle") else ""
        rows.append(
            [
                _e(name) + tag,
                f'<td class="num">{_e(b.get("n_items", "—"))}</td>',
                *(_cell(_get(b, "metrics", m)) for m in metrics),
                _cell(diff, signed=True, cls=_direction(diff, "one_minus_jsd")),
            ]
        )
    parts = [
        "<p>Every metric with its 95% CI, on the same seen test items; no single score stands for the rest. "
        "Differences are paired by question; green means the CI favours the model, red the other way.</p>",
        _table(head, rows),
        "<h3>Frontier LLM runs</h3>",
        _frontier(cert),
    ]
    return "".join(parts)


def _frontier(cert: Mapping[str, Any]) -> str:
    frontier = _get(cert, "evaluation", "frontier")
    if not isinstance(frontier, Mapping):
        return f"<p>{NOT_EVALUATED}: the testbed has no recorded frontier-LLM outputs.</p>"
    runs = [(str(k), v) for k, v in (frontier.get("runs") or {}).items() if isinstance(v, Mapping)]
    runs.sort(key=lambda kv: (_mean(_get(kv[1], "metrics", "tv")) is None, _mean(_get(kv[1], "metrics", "tv")) or 0.0, kv[0]))
    metrics = [m for m in METRICS if m in (frontier.get("model") or {})] or list(METRICS)
    rows = [
        [
            "<strong>model</strong>",
            f'<td class="num">{_e(frontier.get("n_items", "—"))}</td>',
            *(_cell(_get(frontier, "model", m)) for m in metrics),
        ]
    ]
    for label, run in runs:
        cells = []
        for m in metrics:
            value, diff = _get(run, "metrics", m), _get(run, "difference", m)
            ci, cls = _ci(diff), f"ci {_direction(diff, m)}"
            delta = f'<span class="{cls}">Δ {_num(_mean(diff), signed=True)}</span>'
            delta += f'<span class="{cls}">[{_num(ci[0], signed=True)}, {_num(ci[1], signed=True)}]</span>' if ci else ""
            cells.append(_cell(value, extra=delta))
        rows.append([_e(label), f'<td class="num">{_e(run.get("n_items", "—"))}</td>', *cells])
    return (
        f"<p>Recorded runs on the same {_e(frontier.get('n_items', '—'))} items, sorted by TV (best first). "
        "Under each run's value: Δ, the model minus the run, paired by question, with its CI.</p>"
        + _table(["run", "n items", *(_metric_head(m) for m in metrics)], rows)
    )


def _questions(cert: Mapping[str, Any]) -> str:
    found = _get(cert, "evaluation", "questions") or {}
    parts = []
    for key, title in (("best", "Best-aligned questions"), ("worst", "Worst-aligned questions")):
        qs = [q for q in found.get(key) or [] if isinstance(q, Mapping)]
        parts.append(f"<h3>{title}</h3>")
        if not qs:
            parts.append(f"<p>{NOT_EVALUATED}.</p>")
            continue
        figures = [
            _plot(
                _question_bars(q),
                f"<strong>{_e(q.get('text') or '')}</strong><br>{_e(q.get('community'))} · <code>{_e(q.get('question_id'))}</code> · "
                f"1-JSD {_num(q.get('one_minus_jsd'))}",
            )
            for q in qs
        ]
        parts.append('<div class="grid">' + "".join(figures) + "</div>")
    return "<p>The community's human answers, the model's and the option-text prior's, option by option.</p>" + "".join(parts)


def _tradeoff(cert: Mapping[str, Any]) -> str:
    rows = _tradeoff_rows(cert)
    if not rows:
        return f"<p>{NOT_EVALUATED}: no trade-off points.</p>"
    table = _table(
        ["budget", "mean 1-JSD", "worst community", "worst 1-JSD", "mean JSD from population"],
        (
            [
                _e(_budget_label(r.get("budget"))),
                f'<td class="num">{_num(r.get("mean"))}</td>',
                _e(_pair(r.get("worst_community"))[0]),
                f'<td class="num">{_num(_pair(r.get("worst_community"))[1])}</td>',
                f'<td class="num">{_num(r.get("mean_jsd_from_population"))}</td>',
            ]
            for r in rows
        ),
    )
    caption = "The bounded answers at each tier-2 max-divergence budget on the seen test items; a tighter budget pulls every community towards the population."
    return _plot(_tradeoff_chart(rows), caption) + table


def _unseen(cert: Mapping[str, Any]) -> str:
    unseen = _get(cert, "evaluation", "unseen")
    if not isinstance(unseen, Mapping):
        return f"<p>{NOT_EVALUATED}: no held-out communities were onboarded for this certificate.</p>"
    k = unseen.get("k", "—")
    per_community = unseen.get("per_community") or {}
    rows = [(str(c), _get(v, "one_minus_jsd")) for c, v in per_community.items()]
    parts = [
        f"<p>The testbed's held-out communities, each onboarded from k = {_e(k)} answers; {_e(unseen.get('n_items', '—'))} items, "
        f"overall 1-JSD {_e(_text_summary(_get(unseen, 'metrics', 'one_minus_jsd')))}.</p>",
        f'<p class="muted">{_e(unseen.get("note") or "")}</p>',
    ]
    if rows:
        parts.append(
            _plot(_dot_whisker(rows, [], f"Unseen communities: 1-JSD with 95% CIs after onboarding from k = {k} answers"))
        )
        parts.append(
            _table(
                ["community", "k", "1-JSD", "TV"],
                ([_e(c), f'<td class="num">{_e(k)}</td>', _cell(s), _cell(_get(per_community, c, "tv"))] for c, s in rows),
            )
        )
    return "".join(parts)


def _detector_rows(detector: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The detector's reports, named: each probe split, then the real survey questions."""
    probes = detector.get("probes") or {}
    rows = [(f"{split} probes", r) for split, r in probes.items() if isinstance(r, Mapping)]
    if isinstance(detector.get("surveys_test"), Mapping):
        rows.append(("test survey questions", detector["surveys_test"]))
    return rows


def _bounds(cert: Mapping[str, Any]) -> str:
    bounds = _get(cert, "bounds")
    if not isinstance(bounds, Mapping):
        return f"<p>{NOT_EVALUATED}: the certificate has no bounds results.</p>"
    parts = ["<h3>Tier-1 detector</h3>"]
    detector = _get(bounds, "detector") or {}
    rows = _detector_rows(detector)
    if rows:
        parts.append(
            _table(
                [
                    "set",
                    "precision",
                    "recall",
                    "crossing questions caught",
                    "clean questions flagged",
                    "refused",
                    "false refusals",
                ],
                (
                    [
                        _e(name),
                        f'<td class="num">{_num(r.get("precision"))}</td>',
                        f'<td class="num">{_num(r.get("recall"))}</td>',
                        f'<td class="num">{_e(r.get("positive_questions_caught", "—"))} / {_e(r.get("positive_questions", "—"))}</td>',
                        f'<td class="num">{_e(r.get("negative_questions_flagged", "—"))} / {_e(r.get("negative_questions", "—"))}</td>',
                        f'<td class="num">{_e(r.get("refused", "—"))}</td>',
                        f'<td class="num">{_e(r.get("false_refusals", "—"))}</td>',
                    ]
                    for name, r in rows
                ),
            )
        )
        for name, r in rows:
            for key, what in (("misses", "missed crossing options"), ("false_flags", "false flags")):
                items = r.get(key) or []
                if items:
                    lis = "".join(f"<li><code>{_e(s)}</code></li>" for s in items)
                    parts.append(f"<details><summary>{_e(name)}: {what} ({len(items)})</summary><ul>{lis}</ul></details>")
        if detector.get("settings"):
            parts.append(f"<details><summary>Detector settings</summary>{_json_block(detector['settings'])}</details>")
    else:
        parts.append(f"<p>{NOT_EVALUATED}.</p>")
    violations = _get(bounds, "violations") or {}
    parts.append("<h3>Violations</h3>")
    if violations:
        parts.append(
            f"<p>{_e(violations.get('n_violations', '—'))} of {_e(violations.get('n_probe_answers', '—'))} bounded probe answers "
            "put mass on a crossing option.</p>"
        )
        examples = violations.get("examples") or []
        if examples:
            parts.append("<ul>" + "".join(f"<li><code>{_e(s)}</code></li>" for s in examples) + "</ul>")
    else:
        parts.append(f"<p>{NOT_EVALUATED}.</p>")
    parts.append("<h3>Red-line preference</h3>")
    redline = _get(bounds, "redline_preference") or {}
    per_community = redline.get("per_community") or {}
    limit = _finite(redline.get("limit"))
    if per_community:
        worst = _pair(redline.get("max"))
        parts.append(
            f"<p>The mean raw (unbounded) mass each community's answers put on crossing options. Highest: "
            f"{_e(worst[0])} {_num(worst[1])}; limit {_num(limit)}.</p>"
        )
        parts.append(_plot(_redline_chart(per_community, limit)))
    else:
        parts.append(f"<p>{NOT_EVALUATED}.</p>")
    refused = _get(bounds, "surveys_refused") or {}
    parts.append("<h3>Survey questions refused</h3>")
    if refused:
        rate = _finite(refused.get("rate"))
        parts.append(
            f"<p>{_e(refused.get('n_refused', '—'))} of {_e(refused.get('n_items', '—'))} bounded answers on the seen test items "
            f"were refusals ({'—' if rate is None else f'{rate:.2%}'}).</p>"
        )
    else:
        parts.append(f"<p>{NOT_EVALUATED}.</p>")
    return "".join(parts)


def _provenance(cert: Mapping[str, Any]) -> str:
    model = _get(cert, "model") or {}
    testbed = _get(cert, "testbed") or {}
    prov = _get(cert, "provenance") or {}
    signature = _get(cert, "signature") or {}
    git = prov.get("git") or {}
    files = model.get("files") or {}
    hashes = [("data", testbed.get("data_hash"))] + [(f"items: {k}", v) for k, v in (testbed.get("items_hash") or {}).items()]
    return "".join(
        [
            "<h3>Model</h3>",
            _dl(
                [
                    ("directory", f"<code>{_e(model.get('dir') or '—')}</code>"),
                    ("policy", _e(model.get("policy") or "—")),
                    ("seed", _e(model.get("seed", "—"))),
                    ("communities", _e(", ".join(map(str, model.get("communities") or [])) or "—")),
                ]
            ),
            _table(["file", "sha256"], ([f"<code>{_e(p)}</code>", f"<code>{_e(h)}</code>"] for p, h in files.items()))
            if files
            else "<p>No file hashes.</p>",
            f"<details><summary>Parameters and training provenance</summary>{_json_block({'params': model.get('params'), 'trained_on': model.get('trained_on')})}</details>",
            "<h3>Testbed</h3>",
            _dl([("name", _e(testbed.get("name") or "—")), ("seen", _e(", ".join(map(str, testbed.get("seen") or [])) or "—"))]),
            _table(["content", "hash"], ([_e(k), f"<code>{_e(v if v is not None else '—')}</code>"] for k, v in hashes)),
            "<h3>Configuration</h3>",
            _dl((str(k), f"<code>{_e(json.dumps(v, sort_keys=True))}</code>") for k, v in (_get(cert, "config") or {}).items()),
            "<h3>Code and environment</h3>",
            _dl(
                [
                    ("valuemulch", _e(prov.get("valuemulch") or "—")),
                    (
                        "git commit",
                        f"<code>{_e(git.get('commit') or 'unknown')}</code>" + (" (dirty)" if git.get("dirty") else ""),
                    ),
                    ("python", _e(prov.get("python") or "—")),
                    ("platform", _e(prov.get("platform") or "—")),
                    ("started", _e(prov.get("started") or "—")),
                    ("finished", _e(prov.get("finished") or "—")),
                    ("seconds", _num(prov.get("seconds"), 1)),
                    (
                        "signature",
                        f"{_e(signature.get('algorithm') or '—')}, key id <code>{_e(signature.get('key_id') or '—')}</code>",
                    ),
                ]
            ),
            _table(["package", "version"], ([_e(k), _e(v or "—")] for k, v in sorted((prov.get("packages") or {}).items()))),
        ]
    )


#: Section ids and titles, in page order.
SECTIONS = (
    ("agreement", "Per-community agreement", _agreement),
    ("metrics", "Metrics side by side", _metrics),
    ("questions", "Distribution comparisons", _questions),
    ("tradeoff", "Trade-offs", _tradeoff),
    ("unseen", "Unseen communities", _unseen),
    ("bounds", "Bounds", _bounds),
    ("provenance", "Provenance", _provenance),
)


def render_report(cert: Mapping[str, Any]) -> str:
    """One self-contained HTML5 page for a ``valuemulch.certificate/1`` dict: no network needed to read it."""
    label = _get(cert, "model", "label") or "unnamed model"
    testbed = _get(cert, "testbed", "name") or "unknown testbed"
    nav = " · ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t, _ in SECTIONS)
    body = _header(cert) + f"<nav>{nav}</nav>" + "".join(_section(a, t, render(cert)) for a, t, render in SECTIONS)
    footer = (
        f"<footer><p class='muted'>Rendered from certificate <code>{_e(cert.get('certificate_id') or '—')}</code>. "
        "Check it with <code>valuemulch verify certificate.json</code>: the signature, every hash, and a re-run of every number.</p></footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request, so the page loads nothing at all
        f"<title>ValueMulch certificate: {_e(label)} on {_e(testbed)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}{footer}</main></body></html>\n"
    )


# ---------------------------------------------------------------------------------------------- model card


def _md(value: object) -> str:
    """Certificate text made inert in Markdown: no tables broken, no HTML, no emphasis or links."""
    text = " ".join(str(value).split())
    for ch in "\\`*_[<|":
        text = text.replace(ch, "\\" + ch)
    return text


def _code(value: object) -> str:
    return "`" + " ".join(str(value).replace("`", "'").split()) + "`"


def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _limitations(cert: Mapping[str, Any]) -> list[str]:
    """What the numbers say the model and its bounds do not do; quoted from the certificate."""
    out = []
    detector = _get(cert, "bounds", "detector") or {}
    flagged = []
    for name, r in _detector_rows(detector):
        misses = r.get("misses") or []
        if misses:
            shown = "; ".join(_code(m) for m in misses[:3]) + (f" and {len(misses) - 3} more" if len(misses) > 3 else "")
            out.append(
                f"- The tier-1 detector misses crossing options in the {_md(name)}: recall {_num(r.get('recall'))}, precision "
                f"{_num(r.get('precision'))}, {_md(r.get('positive_questions_caught', '—'))} of {_md(r.get('positive_questions', '—'))} "
                f"crossing questions caught. Missed: {shown}."
            )
        if r.get("negative_questions_flagged"):
            flagged.append(f"{_md(name)} {_md(r['negative_questions_flagged'])} of {_md(r.get('negative_questions', '—'))}")
    if out:
        out.append("- So a red-line act worded in a way the detector does not recognise can pass unmasked.")
    if flagged:
        out.append(f"- The detector also masks options of questions with no crossing option: {', '.join(flagged)}.")
    for name, b in _baselines(cert):
        diff = _get(b, "difference", "one_minus_jsd")
        ci = _ci(diff)
        if not b.get("oracle") and ci is not None and ci[0] <= 0:
            out.append(
                f"- The model does not clearly beat the {_md(name)} baseline on 1-JSD: difference {_text_summary(diff, signed=True)}."
            )
        if b.get("oracle") and ci is not None and ci[1] < 0:
            out.append(f"- The {_md(name)} reference stays ahead of the model on 1-JSD ({_text_summary(diff, signed=True)}).")
    rows = _tradeoff_rows(cert)
    if rows and _finite(rows[0].get("mean")) is not None and _finite(rows[-1].get("mean")) is not None:
        out.append(
            f"- Bounds cost agreement: at budget {_budget_label(rows[0].get('budget'))} the mean 1-JSD is {_num(rows[0].get('mean'))}, "
            f"against {_num(rows[-1].get('mean'))} at {'no budget' if rows[-1].get('budget') is None else 'budget ' + _budget_label(rows[-1].get('budget'))}."
        )
    if _get(cert, "evaluation", "unseen") is None:
        out.append("- Held-out communities were not evaluated; nothing here says how the model onboards a new community.")
    out.append(
        f"- Every number holds for the {_md(_get(cert, 'testbed', 'name') or '—')} test items only, and describes communities' "
        "distributions of answers, never an individual's answer."
    )
    return out


def render_model_card(cert: Mapping[str, Any]) -> str:
    """A Markdown model card: intended use, data, results with CIs, limitations, verdict, how to verify."""
    model = _get(cert, "model") or {}
    testbed = _get(cert, "testbed") or {}
    verdict = _get(cert, "verdict") or {}
    seen = _get(cert, "evaluation", "seen") or {}
    label = model.get("label") or "unnamed model"
    certified = "CERTIFIED" if verdict.get("certified") is True else "NOT CERTIFIED"
    headline = ("one_minus_jsd", "representativeness", "tv")
    lines = [
        f"# Model card: {_md(label)}",
        "",
        f"**{certified}** under {_code(verdict.get('policy_file') or '—')} (policy hash {_code(verdict.get('policy_hash') or '—')}); "
        f"certificate {_code(cert.get('certificate_id') or '—')}, created {_md(cert.get('created') or '—')}.",
        "",
        "## Intended use",
        "",
        f"This {_md(model.get('policy') or '—')} model predicts, for each community below, the distribution of answers its members "
        "give to a multiple-choice survey question, inside the bounds checked below. It is not for predicting any individual's "
        "answer, nor for communities or question kinds it was not certified on, and no single number here stands for "
        '"alignment": read the metrics together.',
        "",
        "## Communities",
        "",
        f"- Seen (trained on and certified): {_md(', '.join(map(str, testbed.get('seen') or model.get('communities') or [])) or '—')}",
        f"- Unseen (held out, onboarded at certification): {_md(', '.join(map(str, testbed.get('unseen') or [])) or 'none')}",
        "",
        "## Training data",
        "",
        f"Testbed {_code(testbed.get('name') or '—')}, data hash {_code(testbed.get('data_hash') or '—')}.",
        "Trained on: " + (", ".join(f"{_md(k)} {_code(v)}" for k, v in (model.get("trained_on") or {}).items()) or "—") + ".",
        "",
        *_md_table(["file", "sha256"], ([_code(p), _code(h)] for p, h in (model.get("files") or {}).items())),
        "",
        "## Evaluation",
        "",
        f"Seen test items: {_md(seen.get('n_items', '—'))}. Means with 95% question-bootstrap CIs; Δ is the model minus the "
        "baseline, paired by question. Oracles read the evaluated questions' human data and are references, not competitors.",
        "",
    ]
    head = ["policy", *(f"{LABELS[m]} {'↓' if m in LOWER_IS_BETTER else '↑'}" for m in headline), "Δ 1-JSD"]
    rows = [["**model**", *(_text_summary(_get(seen, "metrics", m)) for m in headline), ""]]
    for n, b in _baselines(cert):
        name = _md(n) + (" (oracle)" if b.get("oracle") else "")
        diff = _text_summary(_get(b, "difference", "one_minus_jsd"), signed=True)
        rows.append([name, *(_text_summary(_get(b, "metrics", m)) for m in headline), diff])
    lines += _md_table(head, rows)
    per_community = seen.get("per_community") or {}
    scored = [(str(c), v) for c, s in per_community.items() if (v := _mean(_get(s, "one_minus_jsd"))) is not None]
    if scored:
        worst, best = min(scored, key=lambda cv: cv[1]), max(scored, key=lambda cv: cv[1])
        lines += ["", f"Per community, 1-JSD runs from {_md(worst[0])} {worst[1]:.3f} to {_md(best[0])} {best[1]:.3f}."]
    frontier = _get(cert, "evaluation", "frontier")
    if isinstance(frontier, Mapping) and frontier.get("runs"):
        runs = sorted(frontier["runs"].items(), key=lambda kv: _mean(_get(kv[1], "metrics", "tv")) or math.inf)
        name, run = runs[0]
        lines += [
            "",
            f"Frontier LLMs: the best recorded run by TV, {_code(name)}, scores TV {_text_summary(_get(run, 'metrics', 'tv'))} on "
            f"{_md(frontier.get('n_items', '—'))} items; the model minus it: {_text_summary(_get(run, 'difference', 'tv'), signed=True)}.",
        ]
    lines += ["", "## Unseen communities", ""]
    unseen = _get(cert, "evaluation", "unseen")
    if isinstance(unseen, Mapping):
        lines += [
            f"Held-out communities, onboarded from k = {_md(unseen.get('k', '—'))} answers each. {_md(unseen.get('note') or '')}",
            "",
        ]
        lines += _md_table(
            ["community", "k", "1-JSD"],
            (
                [_md(c), _md(unseen.get("k", "—")), _text_summary(_get(v, "one_minus_jsd"))]
                for c, v in (unseen.get("per_community") or {}).items()
            ),
        )
    else:
        lines.append(f"{NOT_EVALUATED}.")
    lines += ["", "## Bounds", ""]
    detector_rows = _detector_rows(_get(cert, "bounds", "detector") or {})
    if detector_rows:
        lines += _md_table(
            ["set", "precision", "recall", "crossing questions caught", "clean questions flagged"],
            (
                [
                    _md(n),
                    _num(r.get("precision")),
                    _num(r.get("recall")),
                    f"{_md(r.get('positive_questions_caught', '—'))} / {_md(r.get('positive_questions', '—'))}",
                    f"{_md(r.get('negative_questions_flagged', '—'))} / {_md(r.get('negative_questions', '—'))}",
                ]
                for n, r in detector_rows
            ),
        )
        lines.append("")
    violations = _get(cert, "bounds", "violations") or {}
    redline = _get(cert, "bounds", "redline_preference") or {}
    refused = _get(cert, "bounds", "surveys_refused") or {}
    worst_redline = _pair(redline.get("max"))
    lines += [
        f"- Violations: {_md(violations.get('n_violations', '—'))} of {_md(violations.get('n_probe_answers', '—'))} bounded probe answers.",
        f"- Red-line preference: highest {_md(worst_redline[0])} {_num(worst_redline[1])}, limit {_num(redline.get('limit'))}.",
        f"- Survey questions refused: {_md(refused.get('n_refused', '—'))} of {_md(refused.get('n_items', '—'))}.",
        "",
        "## Known limitations",
        "",
        *_limitations(cert),
        "",
        "## Verdict and rules",
        "",
        f"**{certified}**.",
        "",
        *_md_table(
            ["rule", "result", "detail"],
            (
                [_code(r.get("id")), "pass" if r.get("passed") is True else "**fail**", _md(r.get("detail") or "")]
                for r in verdict.get("rules") or []
            ),
        ),
        "",
        "## How to verify",
        "",
        "```bash",
        "valuemulch verify path/to/certificate.json",
        "```",
        "",
        "This checks the Ed25519 signature and every hash, re-runs the evaluation with the recorded configuration and compares every number.",
        "",
    ]
    return "\n".join(lines)
