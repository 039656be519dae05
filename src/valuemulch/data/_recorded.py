"""Recorded frontier-LLM outputs, loaded into ValueMulch's types so they can be scored like any policy.

Two sources under the data root:

- Meister et al. (2024), ``distributional_alignment/results``: GPT-3.5/4, Claude Haiku/Opus and
  Llama-3-70B distributions (log-prob, rescaled log-prob, verbalised, sequence) on OpinionQA
  (``recorded:<model>/<method>/<task>``) and GlobalOpinionQA (the same name plus ``@globalopinionqa``);
- DeepSeek-R1-Distill-Qwen-32B letter log-probs on OpinionQA
  (``recorded:deepseek-r1-distill-qwen-32b/model_logprobs/<trial>``).

Every prediction is a distribution over the question's options in survey order: the letter
conventions of the sources (see `_recorded_meister` and `_recorded_deepseek`) are undone here, once,
so a comparison with human targets is option by option. Items that cannot be placed (all-zero
output, no human target, unknown letter order) are skipped and counted by reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from valuemulch.data._recorded_deepseek import deepseek_runs, load_deepseek
from valuemulch.data._recorded_meister import (
    LETTER_ORDER,
    LETTERS,
    TOLERANCE,
    UNSTEERED_TASKS,
    RunParts,
    community_id,
    goqa_data,
    iter_goqa,
    iter_oqa_targets,
    load_goqa,
    load_oqa,
    meister_runs,
    oqa_human,
    read_results,
    to_options,
)
from valuemulch.errors import DataError
from valuemulch.types import SUM_TOLERANCE, NormItem, Norms, Question

__all__ = [
    "LETTER_ORDER",
    "PREFIX",
    "UNSTEERED",
    "LetterOrderEvidence",
    "RecordedRun",
    "frontier_targets",
    "infer_letter_order",
    "list_recorded",
    "load_recorded",
]

PREFIX = "recorded:"
#: Candidate letter orders `infer_letter_order` tests: over the options the group answered, or over all.
ORDERS = ("alphabetical", "survey", "alphabetical_all", "survey_all")
#: The community under which an unsteered output is stored: it answers for every community.
UNSTEERED = "*"


@dataclass(frozen=True)
class RecordedRun:
    """One recorded run: predictions (and the authors' targets) over options in survey order."""

    name: str
    testbed_family: str  # "opinionqa" or "globalopinionqa"
    questions: dict[str, Question]
    predictions: dict[tuple[str, str], np.ndarray]  # (community or "*", question_id) -> distribution
    targets: dict[tuple[str, str], np.ndarray]  # (community, question_id) -> the human target scored against
    unsteered: bool  # True: one output per question, stored under "*", stands for every community
    n_renormalised: int  # predictions that did not sum to one and were rescaled
    n_skipped: int
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count; sums to n_skipped

    def predict(self, community: str, question_id: str) -> np.ndarray | None:
        """The run's distribution for this item, or None when the run did not answer it."""
        key = (UNSTEERED if self.unsteered else community, question_id)
        found = self.predictions.get(key)
        return None if found is None else found.copy()

    def covers(self, community: str, question_id: str) -> bool:
        return (UNSTEERED if self.unsteered else community, question_id) in self.predictions

    @property
    def communities(self) -> list[str]:
        """Communities with a target (for unsteered runs, those the authors scored the output against)."""
        return sorted({c for c, _ in self.targets})


def _catalogue(data_root: Path) -> dict[str, tuple[str, str, Path | str]]:
    """name -> (source, family, where): a directory scan plus the DeepSeek id column."""
    out: dict[str, tuple[str, str, Path | str]] = {}
    for name, (family, run_dir) in meister_runs(data_root).items():
        out[name] = ("meister", family, run_dir)
    for name, trial in deepseek_runs(data_root).items():
        out[name] = ("deepseek", "opinionqa", trial)
    return dict(sorted(out.items()))


def list_recorded(data_root: Path) -> list[str]:
    """All recorded run names under ``data_root``, sorted; empty when there are none."""
    return list(_catalogue(Path(data_root)))


def load_recorded(data_root: Path, name: str) -> RecordedRun:
    """Load one run by name (with or without the ``recorded:`` prefix)."""
    root = Path(data_root)
    full = name if name.startswith(PREFIX) else PREFIX + name
    catalogue = _catalogue(root)
    if full not in catalogue:
        raise DataError(
            f"recorded run '{name}' under {root}",
            expected=f"one of {list(catalogue) or '(none: no distributional_alignment/results or opinionqa_deepseek_eval)'}",
            got=name,
            fix="pick a name from `valuemulch policies` (list_recorded)",
        )
    source, family, where = catalogue[full]
    if source == "deepseek":
        parts: RunParts = load_deepseek(root, str(where))
    elif family == "opinionqa":
        parts = load_oqa(root, Path(where), unsteered=Path(where).parent.name in UNSTEERED_TASKS)
    else:
        parts = load_goqa(root, Path(where))
    return RecordedRun(
        name=full,
        testbed_family=family,
        questions=parts.questions,
        predictions=parts.predictions,
        targets=parts.targets,
        unsteered=parts.unsteered,
        n_renormalised=parts.n_renormalised,
        n_skipped=sum(parts.skipped.values()),
        skipped=dict(sorted(parts.skipped.items())),
    )


def frontier_targets(data_root: Path) -> Norms:
    """Every human target any Meister run was scored against, as `NormItem`s (n unknown).

    A target appears in many files (every method and model); all copies must agree within 1e-6,
    since a disagreement would mean the letters were mapped wrongly somewhere. Question sources are
    "opinionqa" and "globalopinionqa" (as the importers'); the Norms source names Meister.
    """
    root = Path(data_root)
    found: dict[tuple[str, str], tuple[np.ndarray, Question, str]] = {}
    renormalised: set[tuple[str, str]] = set()

    def add(community: str, question: Question, target: np.ndarray, where: str) -> None:
        key = (community, question.id)
        if key in found:
            first, _, first_where = found[key]
            if float(np.max(np.abs(first - target))) > TOLERANCE:
                raise DataError(
                    where,
                    field="expected_results",
                    expected=f"the same target as {first_where} ({np.round(first, 4).tolist()})",
                    got=np.round(target, 4).tolist(),
                    fix="re-establish the letter order (infer_letter_order) or re-copy the results",
                )
            return
        found[key] = (target, question, where)

    for family, run_dir in meister_runs(root).values():
        if family == "opinionqa":
            human = oqa_human(root)
            for _, key, community, target, _ in iter_oqa_targets(root, run_dir):
                if target is not None:
                    add(community, human.question(key), target, str(run_dir))
        else:
            for country, question, _, target, _ in iter_goqa(root, run_dir):
                if target is not None:
                    add(country, question, target, str(run_dir))
    if any(family == "globalopinionqa" for family, _ in meister_runs(root).values()):
        data = goqa_data(root)
        raw = {(c, q.id): shares[c] for q, countries, shares in data.values() for c in countries}
        renormalised = {k for k in found if k in raw and abs(sum(raw[k]) - 1.0) > SUM_TOLERANCE}
    items = [NormItem(c, q, t, None) for (c, _), (t, q, _) in sorted(found.items(), key=lambda kv: kv[0])]
    norms = Norms(items, source="meister-opinionqa + meister-globalvalues")
    norms.renormalised = len(renormalised)
    return norms


# --------------------------------------------------------------------------------------------------
# Establishing the letter order


@dataclass(frozen=True)
class LetterOrderEvidence:
    """Which candidate letter orders reproduce each (community, question) target from the raw counts."""

    matches: dict[tuple[str, str], frozenset[str]]
    distinguishing: frozenset[tuple[str, str]]  # items where "alphabetical" and "survey" give different targets

    def items_matching(self, order: str) -> int:
        return sum(order in m for m in self.matches.values())

    def questions_matching(self, order: str) -> int:
        """Questions where the order reproduces the target of every group with counts."""
        by_question: dict[str, bool] = {}
        for (_, key), m in self.matches.items():
            by_question[key] = by_question.get(key, True) and order in m
        return sum(by_question.values())


def infer_letter_order(root: Path) -> LetterOrderEvidence:
    """Compare every ``expected_results`` with the distribution the group counts give under each order.

    Uses the groups with counts next to the results (POLPARTY, RACE, SEX of the disagreement_100 set).
    """
    human = oqa_human(Path(root))
    expected: dict[tuple[str, str, str], dict[str, float]] = {}
    for _, run_dir in (v for v in meister_runs(Path(root)).values() if v[0] == "opinionqa"):
        for path in sorted(run_dir.glob("*/*.json")):
            for key, (_, labelled) in read_results(str(path)).items():
                for label, masses in labelled.items():
                    attribute, group = label.split("_", 1) if label else (path.parent.name, path.stem)
                    expected.setdefault((attribute, group, key), masses)
    matches: dict[tuple[str, str], frozenset[str]] = {}
    distinguishing = set()
    for (attribute, group, key), masses in sorted(expected.items()):
        if attribute not in ("POLPARTY", "RACE", "SEX") or key not in human.sets.get(attribute, {}):
            continue
        reference = human.counts_distribution(attribute, group, key)
        if reference is None:
            continue
        question = human.question(key)
        found = set()
        for order in ORDERS:
            letters = human.letter_options(attribute, group, key, len(masses), order) or ()
            fits = all(LETTERS.index(letter) < len(letters) for letter in masses)
            values, _ = to_options(masses, letters, question.n_options, key) if fits else (None, False)
            if values is not None and float(np.max(np.abs(values - reference))) < TOLERANCE:
                found.add(order)
        item = (community_id(attribute, group), key)
        alpha = human.letter_options(attribute, group, key, len(masses), "alphabetical")
        survey = human.letter_options(attribute, group, key, len(masses), "survey")
        if (
            alpha is not None
            and survey is not None
            and float(np.max(np.abs(reference[list(alpha)] - reference[list(survey)]))) > TOLERANCE
        ):
            distinguishing.add(item)
        matches[item] = frozenset(found)
    return LetterOrderEvidence(matches, frozenset(distinguishing))
