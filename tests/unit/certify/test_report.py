"""The certificate's HTML report and model card, rendered from the example certificate.

The example is a real global-32 certificate, trimmed, with the survey content withheld
(``tests/fixtures/make_certificate_example.py``); it must validate against `Report`.
"""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from valuemulch.certify import SCHEMA, Report
from valuemulch.certify._model_card import render_model_card as _card
from valuemulch.certify._report import render_report as _page
from valuemulch.metrics import METRICS

EXAMPLE = Path(__file__).parents[2] / "fixtures" / "certificate_example.json"
HEADINGS = (
    "Per-community agreement",
    "Metrics side by side",
    "Community layer",
    "Distribution comparisons",
    "Trade-offs",
    "Unseen communities",
    "Bounds",
    "Provenance",
)


@pytest.fixture
def cert() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text())


def render_report(cert: dict[str, Any]) -> str:
    return _page(Report.model_validate(cert))


def render_model_card(cert: dict[str, Any]) -> str:
    return _card(Report.model_validate(cert))


def _section(page: str, anchor: str) -> str:
    """The HTML of one section, so an assertion can say where something appears."""
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor!r}"
    return match.group(1)


def test_example_validates_against_the_report_model(cert: dict[str, Any]) -> None:
    report = Report.model_validate(cert)
    assert report.schema_ == SCHEMA == "valuemulch.certificate/2"
    assert report.model_dump(mode="json", by_alias=True) == cert  # nothing in the file is dropped or added


def test_report_and_model_card_show_every_metric(cert: dict[str, Any]) -> None:
    """Every metric in `METRICS`, with its label and the model's value, for the model and the frontier."""
    metrics = _section(render_report(cert), "metrics")
    card = render_model_card(cert)
    seen, frontier = cert["evaluation"]["seen"]["metrics"], cert["evaluation"]["frontier"]["model"]
    for name, spec in METRICS.items():
        assert metrics.count(f">{html.escape(spec.label)} ") == 2, f"{name} is missing from a metrics table"
        assert f"| {spec.label} " in card, f"{name} is missing from the model card"
        if seen[name]["mean"] is None:  # representativeness on global-32: no ordinal scale
            continue
        assert f"{seen[name]['mean']:.3f}" in metrics and f"{frontier[name]['mean']:.3f}" in metrics, name
        assert f"{seen[name]['mean']:.3f} [{seen[name]['ci'][0]:.3f}," in card, name


def test_report_loads_nothing_from_outside(cert: dict[str, Any]) -> None:
    page = render_report(cert)
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?//""", page)
    for target in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", page):
        assert target.startswith(("#", "data:")), target
    assert "<script" not in page and "@import" not in page and "url(" not in page


def test_report_names_every_community_baseline_and_run(cert: dict[str, Any]) -> None:
    page = render_report(cert)
    evaluation = cert["evaluation"]
    agreement = _section(page, "agreement")
    for community in evaluation["seen"]["per_community"]:
        assert html.escape(community) in agreement
    for community in evaluation["unseen"]["per_community"]:
        assert html.escape(community) in _section(page, "unseen")
    for name in evaluation["baselines"]:
        assert html.escape(name) in agreement and html.escape(name) in _section(page, "metrics")
    for label in evaluation["frontier"]["runs"]:
        assert html.escape(label) in _section(page, "metrics")
    for q in evaluation["questions"]["best"] + evaluation["questions"]["worst"]:
        assert html.escape(q["text"]) in _section(page, "questions")
    assert "oracle, reference" in agreement


def test_report_sections_in_order(cert: dict[str, Any]) -> None:
    page = render_report(cert)
    positions = [page.index(f"<h2>{h}</h2>") for h in HEADINGS]
    assert positions == sorted(positions)
    assert page.index("CERTIFIED") < positions[0]
    for rule in cert["verdict"]["rules"]:
        assert html.escape(rule["id"]) in page[: positions[0]] and html.escape(rule["detail"]) in page[: positions[0]]


def test_report_plots_are_accessible_svg(cert: dict[str, Any]) -> None:
    page = render_report(cert)
    assert page.count('<figure class="plot">') >= 4
    svgs = re.findall(r"<svg[^>]*>.*?</svg>", page, re.S)
    assert len(svgs) >= 4
    for svg in svgs:
        assert 'role="img"' in svg and 'aria-label="' in svg and "<title>" in svg


def test_report_shows_every_metric_for_model_and_baselines(cert: dict[str, Any]) -> None:
    metrics = _section(render_report(cert), "metrics")
    seen = cert["evaluation"]["seen"]["metrics"]
    for summary in seen.values():
        if summary["mean"] is not None:
            assert f"{summary['mean']:.3f}" in metrics and f"[{summary['ci'][0]:.3f}, {summary['ci'][1]:.3f}]" in metrics
    for baseline in cert["evaluation"]["baselines"].values():
        for summary in baseline["metrics"].values():
            if summary["mean"] is not None:
                assert f"{summary['mean']:.3f}" in metrics


def test_frontier_runs_sorted_by_tv(cert: dict[str, Any]) -> None:
    metrics = _section(render_report(cert), "metrics")
    runs = cert["evaluation"]["frontier"]["runs"]
    by_tv = sorted(runs, key=lambda label: runs[label]["metrics"]["tv"]["mean"])
    positions = [metrics.index(html.escape(label)) for label in by_tv]
    assert positions == sorted(positions)


def test_tradeoff_puts_no_budget_last(cert: dict[str, Any]) -> None:
    cert["evaluation"]["tradeoff"].reverse()
    tradeoff = _section(render_report(cert), "tradeoff")
    labels = re.findall(r"<tr><td>([^<]+)</td>", tradeoff)
    assert labels == ["0.05", "0.10", "0.20", "0.30", "none"]


def test_report_escapes_certificate_strings(cert: dict[str, Any]) -> None:
    hostile = copy.deepcopy(cert)
    attack = '<script>alert("mulch")</script>'
    hostile["evaluation"]["questions"]["worst"][0]["text"] = attack
    hostile["evaluation"]["questions"]["worst"][0]["options"][0] = "<b onmouseover=x>"
    hostile["model"]["label"] = 'a "quoted" & <i>label</i>'
    hostile["verdict"]["rules"][0]["detail"] = "<img src=x onerror=alert(1)>"
    page = render_report(hostile)
    assert "<script" not in page and "<b onmouseover" not in page and "<img" not in page and "<i>label" not in page
    assert html.escape(attack) in page and "&lt;b onmouseover=x&gt;" in page
    card = render_model_card(hostile)
    assert "\\<i>label\\</i>" in card and not re.search(r"(?<!\\)<", card)  # Markdown renders no HTML from it


def test_null_sections_render_as_not_evaluated(cert: dict[str, Any]) -> None:
    cert["evaluation"]["unseen"] = None
    cert["evaluation"]["frontier"] = None
    cert["evaluation"]["tradeoff"] = []
    cert["evaluation"]["seen"]["metrics"]["kl"] |= {"mean": None, "ci": [None, None]}
    cert["evaluation"]["baselines"]["uniform"]["metrics"]["tv"]["mean"] = None
    cert["provenance"]["packages"]["torch"] = None
    cert["bounds"]["redline_preference"]["limit"] = None
    page = render_report(cert)
    assert "Not evaluated" in _section(page, "unseen")
    assert "Not evaluated" in _section(page, "metrics")  # the frontier runs
    assert "Not evaluated" in _section(page, "tradeoff")
    assert "—" in _section(page, "metrics")
    assert page.count('<figure class="plot">') >= 4
    assert "Not evaluated" in render_model_card(cert)


def test_an_incomplete_or_misspelt_certificate_is_refused(cert: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="bounds"):
        Report.model_validate({k: v for k, v in cert.items() if k != "bounds"})
    cert["evaluation"]["seen"]["metrics"]["tv"]["men"] = 0.5
    with pytest.raises(ValidationError, match="men"):
        Report.model_validate(cert)


def test_verdict_badge_follows_the_certificate(cert: dict[str, Any]) -> None:
    assert "NOT CERTIFIED" not in render_report(cert)
    cert["verdict"]["certified"] = False
    cert["verdict"]["rules"][1]["passed"] = False
    page = render_report(cert)
    assert "NOT CERTIFIED" in page and ">FAIL<" in page
    assert "**NOT CERTIFIED**" in render_model_card(cert)


def test_model_card(cert: dict[str, Any]) -> None:
    card = render_model_card(cert)
    for heading in (
        "Intended use",
        "Communities",
        "Training data",
        "Evaluation",
        "Unseen communities",
        "Bounds",
        "Known limitations",
    ):
        assert f"## {heading}" in card
    assert "**CERTIFIED**" in card and "valuemulch verify" in card
    assert cert["certificate_id"] in card
    for path, digest in cert["model"]["files"].items():
        assert path in card and digest in card
    for name in cert["evaluation"]["baselines"]:
        assert name in card
    seen = cert["evaluation"]["seen"]["metrics"]["one_minus_jsd"]
    assert f"{seen['mean']:.3f} [{seen['ci'][0]:.3f}, {seen['ci'][1]:.3f}]" in card
    for community in cert["evaluation"]["unseen"]["per_community"]:
        assert community in card
    holdout = cert["bounds"]["detector"]["probes"]["holdout"]
    limitations = card[card.index("## Known limitations") :]
    assert f"recall {holdout['recall']:.3f}" in limitations and holdout["misses"][0] in limitations
    for rule in cert["verdict"]["rules"]:
        assert rule["id"] in card


def test_model_card_keeps_tables_whole(cert: dict[str, Any]) -> None:
    cert["verdict"]["rules"][0]["detail"] = "a | b\nc"
    rule_line = next(line for line in render_model_card(cert).splitlines() if cert["verdict"]["rules"][0]["id"] in line)
    assert "a \\| b c" in rule_line and rule_line.count(" | ") == 2


def _layer(backbones: list[str], communities: list[str], seed: int) -> dict[str, Any]:
    """A layer summary as `Layer.summary()` writes it, with distinct weights per community."""
    weights = {b: 1 / len(backbones) for b in backbones}
    per = {}
    for i, c in enumerate(communities):
        raw = [1.0 + ((i + seed) * (j + 1)) % 5 for j in range(len(backbones))]
        per[c] = {b: r / sum(raw) for b, r in zip(backbones, raw, strict=True)}
    return {
        "backbones": backbones,
        "choice": "linear/ce/l2=0.001/shrink=0.03",
        "pooling": "linear",
        "temperatures": {b: 1.0 + k / 10 for k, b in enumerate(backbones)},
        "weights": weights,
        "community_weights": per,
        "items_hash": "0" * 16,
    }


def test_layer_section_shows_backbones_and_each_communitys_weights(cert: dict[str, Any]) -> None:
    """Point 7 of issue 15: a stack model's certificate shows its backbones and a heatmap of every
    community's weights; without a layer the section says the policy answers on its own."""
    assert "answers on its own" in _section(render_report(cert), "layer")
    communities = cert["model"]["communities"]
    backbones = ["encoder", "option-text-prior", "recorded:gpt-4/<b>sequence</b>/task1@globalopinionqa"]
    cert["model"]["policy"] = "stack"
    cert["model"]["layer"] = _layer(backbones, communities, 0)
    layer = _section(render_report(cert), "layer")
    assert "linear/ce/l2=0.001/shrink=0.03" in layer and "Cross-fitted" not in layer
    assert "<b>sequence</b>" not in layer and html.escape("gpt-4/<b>sequence</b>/task1") in layer  # escaped, prefix dropped
    heatmap = re.search(r"<svg[^>]*>.*?</svg>", layer, re.S)
    assert heatmap and 'aria-label="Pooling weight of each backbone per community"' in heatmap.group(0)
    for c in communities:  # one row per community, every cell printed (the plot reads without colour)
        for b in backbones:
            w = cert["model"]["layer"]["community_weights"][c][b]
            assert html.escape(f"{c} · {b}: {w:.3f}") in heatmap.group(0)
    assert "Community layer: `linear/ce/l2=0.001/shrink=0.03`" in render_model_card(cert)


def test_cross_fitted_certificate_says_so_with_each_folds_layer(cert: dict[str, Any]) -> None:
    communities = cert["model"]["communities"]
    cert["model"]["policy"] = "stack"
    cert["model"]["layer"] = _layer(["encoder", "option-text-prior"], communities, 0)
    runs = [f"recorded:run{k}/sequence/task1@x" for k in range(14)]
    folds = [_layer(["encoder", *runs], communities, seed) for seed in range(3)]
    cert["config"]["cross_fit"] = 3
    cert["evaluation"]["cross_fit"] = {"folds": 3, "seed": 0, "fold_of": {"q1": 0, "q2": 1, "q3": 2, "q4": 2}, "layers": folds}
    page = render_report(cert)
    assert "cross-fitted</strong> over 3 folds" in page[: page.index("<nav>")]
    layer = _section(page, "layer")
    assert "Cross-fitted." in layer and "fold 2" in layer
    heatmap = re.search(r"<svg[^>]*>.*?</svg>", layer, re.S)
    assert heatmap and "all others (5)" in heatmap.group(0)  # 15 backbones: the 10 heaviest, then the rest summed
    c = communities[0]
    mean = sum(f["community_weights"][c]["encoder"] for f in folds) / 3
    assert html.escape(f"{c} · encoder: {mean:.3f}") in heatmap.group(0)
    assert "**Cross-fitted.**" in render_model_card(cert)


def test_a_sampled_certificate_says_so_in_its_header(cert: dict[str, Any]) -> None:
    header = render_report(cert)[: render_report(cert).index("<nav>")]
    assert "seeded sample" not in header  # the example evaluated the whole testbed
    cert = copy.deepcopy(cert)
    cert["config"]["questions"], cert["config"]["communities"] = 4, 2
    page = render_report(cert)
    assert "<strong>seeded sample</strong> of 4 test questions, 2 seen communities" in page[: page.index("<nav>")]
