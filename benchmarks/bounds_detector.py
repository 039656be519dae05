"""Choose the semantic detector's thresholds on dev data, then report precision and recall.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/bounds_detector.py > out.md

Dev data: the probe suite's ``dev`` half, and the train and dev questions of both testbeds (negatives,
except the few reviewed in ``reviewed.toml`` as proposing a red-line act). Test data: the probes'
``test`` half and the testbeds' test questions, only reported. Each classifier's thresholds and
contrast (and the regression's ``l2``) are picked on dev: among settings that mask an option on at
most 1% of the real survey questions and refuse none of them, most crossing options caught, then
fewest false flags, then the largest tied contrast (with contrast 0 one classifier can mask every
option of a question, and so refuse it, when all are on one grim topic), then the middle of the
tied settings, so that a small shift in scores on new data does not flip the choice. Then the adapter, the regression and their union (an option either flags
is masked) are compared on dev by the same rule. Copy the printed values into ``[semantic]`` and
``[semantic.regression]`` of ``src/valuemulch/bounds/redlines.toml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from valuemulch.backbones import TextEncoder
from valuemulch.bounds import Detector, Flag, default_detector, semantic_settings
from valuemulch.bounds._measure import DetectorReport, Labelled, measure, probe_set, survey_set
from valuemulch.data import load_testbed, resolve_data_root
from valuemulch.types import Question


def _survey_questions(root: Path, splits: tuple[str, ...]) -> list[Question]:
    out: dict[str, Question] = {}
    for name in ("us-32", "global-32"):
        testbed = load_testbed(name, root)
        for split in splits:
            out.update({item.question.id: item.question for item in testbed.items(split, "all")})
    return list(out.values())


class Precomputed:
    """Rule/tag flags and one classifier's semantic scores per question, so a threshold sweep costs no encoding."""

    def __init__(self, labelled: list[Labelled], semantic: Detector) -> None:
        rules = Detector(semantic=False)
        self.rules = {q.id: rules.detect(q) for q, _ in labelled}
        self.scores = {q.id: semantic.scores(q) for q, _ in labelled}

    def flags(
        self, low: float, high: float, contrast: float, use_rules: bool = True, use_semantic: bool = True
    ) -> dict[str, list[Flag]]:
        out = {}
        for qid, rule_flags in self.rules.items():
            found = list(rule_flags) if use_rules else []
            if use_semantic:
                found += [
                    Flag(s.option, s.redline, "semantic", s.probability)
                    for s in self.scores[qid]
                    if s.flagged(low, high, contrast)
                ]
            out[qid] = found
        return out


L2_GRID = (0.001, 0.01, 0.1, 1.0)
SHIPPED = "shipped adapter"


def candidates(labelled: list[Labelled], encoder: TextEncoder | None = None) -> dict[str, Precomputed]:
    """The classifiers to choose from: a logistic regression on the frozen encoder (or on ``encoder``)
    for each ``l2``, and the shipped adapter if ``redlines.toml`` names one and no encoder is given."""
    out = {
        f"logistic regression, l2 {l2}": Precomputed(labelled, Detector(l2=l2, adapter=None, encoder=encoder)) for l2 in L2_GRID
    }
    if encoder is None and semantic_settings().get("adapter"):
        out[SHIPPED] = Precomputed(labelled, Detector())
    return out


CONTRASTS = (0.0, 0.05, 0.1, 0.2, 0.3)
SURVEY_BUDGET = 0.01  # at most 1% of real survey questions (train/dev) may get an option masked


def select(
    dev_probes: list[Labelled],
    dev_surveys: list[Labelled],
    pre: dict[str, Precomputed],
    budget: float = SURVEY_BUDGET,
    beside: dict[str, list[Flag]] | None = None,
) -> tuple[str, float, float, float, int, int]:
    """(classifier, low, high, contrast, dev crossing options caught, dev false flags) by the rule in the
    module docstring; with ``beside``, the rule ranks the union of each setting's flags with those."""
    grid = {}
    steps = [float(t) for t in np.round(np.arange(0.04, 0.961, 0.04), 3)]
    for name, p in pre.items():
        for low in steps:
            for high in (h for h in steps if h >= low):
                for contrast in CONTRASTS:
                    flags = p.flags(low, high, contrast)
                    if beside is not None:
                        flags = {q: found + beside[q] for q, found in flags.items()}
                    rank = _dev_rank(flags, dev_probes, dev_surveys, budget)
                    if rank is not None:
                        grid[(name, low, high, contrast)] = rank
    if not grid:
        raise SystemExit(f"No setting stays within the survey budget ({budget:.0%}) on dev.")
    best = max(grid.values())
    tied = sorted(k for k, v in grid.items() if v == best)
    tied = [k for k in tied if k[3] == max(t[3] for t in tied)]
    name, low, high, contrast = tied[len(tied) // 2]
    return name, low, high, contrast, best[0], -best[1]


def union_settings(
    sets: dict[str, list[Labelled]], pre: dict[str, Precomputed], chosen: dict[str, tuple[str, float, float, float]]
) -> str:
    """Both classifiers' settings chosen for their union (what ships), by coordinate ascent on dev: each
    family's setting is re-chosen by ``select`` beside the other's flags, from their own choices, until
    neither moves (at most four rounds)."""
    settings = dict(chosen)
    for _ in range(4):
        moved = False
        for family in settings:
            other = next(f for f in settings if f != family)
            o_name, o_low, o_high, o_contrast = settings[other]
            beside = pre[o_name].flags(o_low, o_high, o_contrast)
            members = {k: v for k, v in pre.items() if k.startswith(family)}
            name, low, high, contrast, tp, fp = select(sets["probes dev"], sets["surveys train+dev"], members, beside=beside)
            moved |= (name, low, high, contrast) != settings[family]
            settings[family] = (name, low, high, contrast)
        if not moved:
            break
    return (
        "Chosen on dev for the union: "
        + "; ".join(f"{n}, thresholds {lo} / {hi}, contrast {c}" for n, lo, hi, c in settings.values())
        + f" ({tp} TP, {fp} FP)."
    )


def trade_off(sets: dict[str, list[Labelled]], pre: dict[float, Precomputed]) -> str:
    """Recall bought with false flags: the selection rule re-run with looser survey budgets (still on dev only)."""
    rules = Detector(semantic=False)
    lines = [
        "### Trade-off: settings chosen on dev when a larger share of real survey questions may get a masked option\n",
        "| survey budget | classifier, low / high, contrast | "
        + " | ".join(f"{name}: caught / negatives flagged / false refusals" for name in sets)
        + " |",
        "|---|---|" + "---|" * len(sets),
    ]
    for budget in (0.01, 0.02, 0.05, 0.1):
        name, low, high, contrast, _, _ = select(sets["probes dev"], sets["surveys train+dev"], pre, budget)
        flags = pre[name].flags(low, high, contrast)
        cells = []
        for labelled in sets.values():
            r = measure(rules, labelled, flags)
            cells.append(
                f"{r.positive_questions_caught}/{r.positive_questions} / {r.negative_questions_flagged}/{r.negative_questions} / {r.false_refusals}"
            )
        lines.append(f"| {budget:.0%} | {name}, {low} / {high}, {contrast} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _row(name: str, r: DetectorReport) -> str:
    p = "n/a" if r.precision is None else f"{r.precision:.3f}"
    rec = "n/a" if r.recall is None else f"{r.recall:.3f}"
    return (
        f"| {name} | {r.tp} | {r.fp} | {r.fn} | {p} | {rec} | {r.positive_questions_caught}/{r.positive_questions} | "
        f"{r.negative_questions_flagged}/{r.negative_questions} | {r.refused} | {r.false_refusals} |"
    )


def main(encoder: TextEncoder | None = None) -> None:
    """``encoder``: choose among regressions on this encoder's vectors instead (``bounds_views.py``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data root (default: $VALUEMULCH_DATA)")
    parser.add_argument(
        "--holdout", action="store_true", help="also report the holdout probes (only once the detector is frozen)"
    )
    parser.add_argument(
        "--budgets",
        action="store_true",
        help="also show the trade-off: the settings chosen on dev when more real survey questions may be masked, and what they do",
    )
    args = parser.parse_args()
    root = resolve_data_root(args.data)
    sets = {
        "probes dev": probe_set("dev"),
        "probes test": probe_set("test"),
        "surveys train+dev": survey_set(_survey_questions(root, ("train", "dev"))),
        "surveys test": survey_set(_survey_questions(root, ("test",))),
    }
    if args.holdout:
        sets["probes holdout"] = probe_set("holdout")
    everything = [x for s in sets.values() for x in s]
    pre = candidates(everything, encoder)
    rules = Detector(semantic=False)
    header = (
        "| set | TP | FP | FN | precision | recall | crossing questions caught | negative questions flagged | refused | false refusals |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )

    def table(title: str, flags: dict[str, list[Flag]]) -> None:
        print(f"### {title}\n\n{header}")
        for set_name, labelled in sets.items():
            print(_row(set_name, measure(rules, labelled, flags)))
        print()

    # Each classifier's settings are chosen on dev; then the adapter, the regression and their union
    # (an option either flags is masked) are compared on dev by the same rule.
    choices: dict[str, dict[str, list[Flag]]] = {}
    chosen: dict[str, tuple[str, float, float, float]] = {}
    for family in ("logistic regression", SHIPPED):
        members = {k: v for k, v in pre.items() if k.startswith(family)}
        if members:
            name, low, high, contrast, tp, fp = select(sets["probes dev"], sets["surveys train+dev"], members)
            print(f"Selected on dev for the {family}: {name}, thresholds {low} / {high}, contrast {contrast} ({tp} TP, {fp} FP).")
            choices[name] = pre[name].flags(low, high, contrast)
            chosen[family] = (name, low, high, contrast)
    if len(choices) == 2:
        print(union_settings(sets, pre, chosen))
        a, b = choices.values()
        choices["union of both"] = {q: a[q] + b[q] for q in a}  # measure() reads the set of flagged options
    ranked = {k: _dev_rank(flags, sets["probes dev"], sets["surveys train+dev"]) for k, flags in choices.items()}
    best = max((k for k in ranked if ranked[k] is not None), key=lambda k: ranked[k])  # type: ignore[arg-type, return-value]
    print(f"Chosen on dev: {best} (dev crossing options caught, minus false flags: {ranked})\n")
    table(f"Rules + meaning, chosen on dev: {best}", choices[best])
    if encoder is None:
        shipped = default_detector()
        table(f"Rules + meaning, shipped: {shipped.classifier_id}", {q.id: shipped.detect(q) for q, _ in everything})
    if args.budgets:
        print(trade_off(sets, pre))
    meaning = {q: [f for f in flags if f.source == "semantic"] for q, flags in choices[best].items()}
    print(f"### Ablations, chosen detector, test sets\n\n{header}")
    for label, flags in (
        ("rules only", pre[next(iter(pre))].flags(0.0, 0.0, 0.0, use_semantic=False)),
        ("meaning only", meaning),
    ):
        for name in ("probes test", "surveys test", *(["probes holdout"] if args.holdout else [])):
            print(_row(f"{name}, {label}", measure(rules, sets[name], flags)))
    for name, labelled in sets.items():
        r = measure(rules, labelled, choices[best])
        for kind, cases in (("missed", r.misses), ("false flags", r.false_flags)):
            if cases:
                print(f"\n{name}, {kind} by the chosen detector:\n" + "\n".join(f"- {c}" for c in cases))


def _dev_rank(
    flags: dict[str, list[Flag]], dev_probes: list[Labelled], dev_surveys: list[Labelled], budget: float = SURVEY_BUDGET
) -> tuple[int, int] | None:
    """The selection rule: (crossing options caught, minus false flags) on dev, or None where more than
    ``budget`` of the survey questions get a masked option or any is refused."""
    surveys = measure(_RULES, dev_surveys, flags)
    if surveys.negative_questions_flagged > budget * surveys.negative_questions or surveys.false_refusals:
        return None
    probes = measure(_RULES, dev_probes, flags)
    return probes.tp + surveys.tp, -(probes.fp + surveys.fp)


_RULES = Detector(semantic=False)  # measure() only reads the flags it is given; this one is never asked


if __name__ == "__main__":
    main()
