"""Render a certificate as a Markdown model card: intended use, data, results with CIs, limitations,
verdict and how to verify. Certificate text is made inert in Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from valuemulch.certify._cert_values import (
    NOT_EVALUATED,
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
from valuemulch.certify._record import Report
from valuemulch.metrics import METRICS

__all__ = ["render_model_card"]


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


def _results(cert: Mapping[str, Any]) -> list[str]:
    """Every metric of the model beside every baseline, the per-community range and the best frontier run."""
    seen = _get(cert, "evaluation", "seen") or {}
    lines = [
        "## Evaluation",
        "",
        f"Seen test items: {_md(seen.get('n_items', '—'))}. Means with 95% question-bootstrap CIs; Δ is the model minus the "
        "baseline, paired by question. Oracles read the evaluated questions' human data and are references, not competitors.",
        "",
    ]
    folds = _get(cert, "evaluation", "cross_fit", "folds")
    if folds is not None:
        lines += [
            f"**Cross-fitted.** These answers come from {_md(folds)} community layers, each fitted on the other folds of the "
            "test questions (folds by a hash of the question text); the saved layer answers only the bounds probes.",
            "",
        ]
    layer = _get(cert, "model", "layer")
    if isinstance(layer, Mapping):
        weights = ", ".join(f"{_code(b)} {_num(w)}" for b, w in (layer.get("weights") or {}).items())
        lines += [f"Community layer: {_code(layer.get('choice'))}; shared weights {weights}.", ""]
    head = ["policy", *(metric_label(m) for m in METRICS), "Δ 1-JSD"]
    rows = [["**model**", *(_text_summary(_get(seen, "metrics", m)) for m in METRICS), ""]]
    for n, b in _baselines(cert):
        name = _md(n) + (" (oracle)" if b.get("oracle") else "")
        diff = _text_summary(_get(b, "difference", "one_minus_jsd"), signed=True)
        rows.append([name, *(_text_summary(_get(b, "metrics", m)) for m in METRICS), diff])
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
    return lines


def _unseen(cert: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Unseen communities", ""]
    unseen = _get(cert, "evaluation", "unseen")
    if not isinstance(unseen, Mapping):
        return [*lines, f"{NOT_EVALUATED}."]
    lines += [
        f"Held-out communities, onboarded from k = {_md(unseen.get('k', '—'))} answers each. {_md(unseen.get('note') or '')}",
        "",
    ]
    return lines + _md_table(
        ["community", "k", "1-JSD"],
        (
            [_md(c), _md(unseen.get("k", "—")), _text_summary(_get(v, "one_minus_jsd"))]
            for c, v in (unseen.get("per_community") or {}).items()
        ),
    )


def _bounds(cert: Mapping[str, Any]) -> list[str]:
    lines = ["", "## Bounds", ""]
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
    return [
        *lines,
        f"- Violations: {_md(violations.get('n_violations', '—'))} of {_md(violations.get('n_probe_answers', '—'))} bounded probe answers.",
        f"- Red-line preference: highest {_md(worst_redline[0])} {_num(worst_redline[1])}, limit {_num(redline.get('limit'))}.",
        f"- Survey questions refused: {_md(refused.get('n_refused', '—'))} of {_md(refused.get('n_items', '—'))}.",
    ]


def render_model_card(report: Report) -> str:
    """A Markdown model card: intended use, data, results with CIs, limitations, verdict, how to verify."""
    cert = report.model_dump(mode="json", by_alias=True)
    model = _get(cert, "model") or {}
    testbed = _get(cert, "testbed") or {}
    verdict = _get(cert, "verdict") or {}
    label = model.get("label") or "unnamed model"
    certified = "CERTIFIED" if verdict.get("certified") is True else "NOT CERTIFIED"
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
        *_results(cert),
        *_unseen(cert),
        *_bounds(cert),
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
