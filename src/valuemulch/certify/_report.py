"""Render a certificate as one self-contained HTML page (``_model_card`` writes the Markdown card).

Both are pure functions of the certificate dict, so a report can be rebuilt from ``certificate.json``
alone. The page needs nothing outside itself (inline CSS, plots as inline SVG, no scripts, fonts or
URLs) so it reads the same offline and in an archive years later. Every string taken from the
certificate is escaped: question texts and labels come from data we do not control. Missing or
``null`` sections render as "not evaluated" rather than failing, because a certificate for a testbed
without frontier runs or held-out communities is still a certificate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from valuemulch.certify._cert_values import (
    NOT_EVALUATED,
    READING,
    _baselines,
    _budget_label,
    _ci,
    _detector_rows,
    _finite,
    _get,
    _mean,
    _num,
    _pair,
    _text_summary,
    _tradeoff_rows,
    metric_label,
)
from valuemulch.certify._html import _e, _table
from valuemulch.certify._plots import PALETTE, SHAPES, _dot_whisker, _plot, _question_bars, _redline_chart, _tradeoff_chart
from valuemulch.certify._record import Report
from valuemulch.certify._report_layer import render_layer
from valuemulch.metrics import METRICS

__all__ = ["render_report"]


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


def _cell(summary: Any, *, signed: bool = False, cls: str = "", extra: str = "") -> str:
    ci = _ci(summary)
    ci_html = f'<span class="ci">[{_num(ci[0], signed=signed)}, {_num(ci[1], signed=signed)}]</span>' if ci else ""
    return f'<td class="num {cls}">{_num(_mean(summary), signed=signed)}{ci_html}{extra}</td>'


def _direction(diff: Any, metric: str) -> str:
    """Whether a model-minus-other difference favours the model, with its CI clear of zero."""
    ci = _ci(diff)
    orientation = METRICS[metric].orientation
    if ci is None or ci[0] <= 0 <= ci[1] or orientation == "zero":  # a signed gap has no better side
        return "tie"
    return "better" if (ci[0] > 0) != (orientation == "lower") else "worse"


def _metric_head(metric: str) -> str:
    return f'<th title="{READING[METRICS[metric].orientation]}">{_e(metric_label(metric))}</th>'


def _dl(pairs: Iterable[tuple[str, Any]]) -> str:
    return '<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _json_block(value: Any) -> str:
    return f"<pre>{_e(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


def _badge(passed: Any, yes: str = "PASS", no: str = "FAIL") -> str:
    return f'<span class="badge {"pass" if passed is True else "fail"}">{yes if passed is True else no}</span>'


def _header(cert: Mapping[str, Any]) -> str:
    verdict = _get(cert, "verdict") or {}
    rules = [r for r in verdict.get("rules") or [] if isinstance(r, Mapping)]
    parts = [
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
                ("test answers", _answered_by(cert)),
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


def _answered_by(cert: Mapping[str, Any]) -> str:
    folds = _get(cert, "evaluation", "cross_fit", "folds")
    who = (
        "the saved model"
        if folds is None
        else f'<strong>cross-fitted</strong> over {_e(folds)} folds of the test questions (<a href="#layer">community layer</a>)'
    )
    questions, communities = _get(cert, "config", "questions"), _get(cert, "config", "communities")
    if questions is None and communities is None:
        return who
    sample = ", ".join(
        f"{_e(n)} {what}" for n, what in ((questions, "test questions"), (communities, "seen communities")) if n is not None
    )
    return f"{who}, on a <strong>seeded sample</strong> of {sample}: a quick look, not the whole testbed"


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
    metrics = list(METRICS)
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
    metrics = list(METRICS)
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
    ("layer", "Community layer", render_layer),
    ("questions", "Distribution comparisons", _questions),
    ("tradeoff", "Trade-offs", _tradeoff),
    ("unseen", "Unseen communities", _unseen),
    ("bounds", "Bounds", _bounds),
    ("provenance", "Provenance", _provenance),
)


def render_report(report: Report) -> str:
    """One self-contained HTML5 page for a certificate: no network needed to read it."""
    cert = report.model_dump(mode="json", by_alias=True)
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
