"""How well the tier-1 detector does on labelled questions: the probe suite and the real testbeds.

Counting is per option (a crossing option is a positive) and per question (a hard-negative or
real survey question with any option masked is a false flag; one with every substantive option
masked would be a refusal). Certification and ``benchmarks/bounds_detector.py`` both use this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from valuemulch.bounds._detect import Detector, Flag
from valuemulch.bounds._probes import probes, reviewed_crossings
from valuemulch.types import Question

Labelled = tuple[Question, frozenset[int]]


def probe_set(split: str | None = None) -> list[Labelled]:
    """The shipped probes of one split (or all), each with its crossing options."""
    return [(p.question, frozenset(p.crossing)) for p in probes() if split is None or p.split == split]


def survey_set(questions: Iterable[Question]) -> list[Labelled]:
    """Real survey questions, negatives except the options we reviewed as crossings."""
    return [(q, reviewed_crossings(q)) for q in questions]


@dataclass
class DetectorReport:
    """Option-level confusion counts, question-level outcomes, and the cases behind the errors."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    questions: int = 0
    positive_questions: int = 0
    positive_questions_caught: int = 0  # every crossing option masked, or the question refused
    negative_questions: int = 0
    negative_questions_flagged: int = 0  # any option masked on a question with no crossing
    refused: int = 0  # every substantive option masked
    false_refusals: int = 0  # refused although some substantive option crosses nothing
    misses: list[str] = field(default_factory=list)
    false_flags: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def to_dict(self) -> dict[str, object]:
        return {
            "options": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
            "precision": self.precision,
            "recall": self.recall,
            "questions": self.questions,
            "positive_questions": self.positive_questions,
            "positive_questions_caught": self.positive_questions_caught,
            "negative_questions": self.negative_questions,
            "negative_questions_flagged": self.negative_questions_flagged,
            "refused": self.refused,
            "false_refusals": self.false_refusals,
            "misses": self.misses,
            "false_flags": self.false_flags,
        }


def measure(detector: Detector, labelled: Iterable[Labelled], flags: dict[str, list[Flag]] | None = None) -> DetectorReport:
    """Score ``detector`` on labelled questions (``flags`` may pass precomputed detections by question id)."""
    report = DetectorReport()
    for question, crossing in labelled:
        found = flags[question.id] if flags is not None else detector.detect(question)
        masked = {f.option for f in found}
        substantive = {i for i in range(question.n_options) if not question.refusal[i]}
        refused = substantive <= masked
        report.questions += 1
        report.refused += refused
        report.false_refusals += refused and not substantive <= crossing
        for i in substantive:
            hit, positive = i in masked, i in crossing
            report.tp += hit and positive
            report.fp += hit and not positive
            report.fn += positive and not hit
            report.tn += not hit and not positive
            if hit and not positive:
                report.false_flags.append(
                    f"{question.id}: {question.options[i]!r} ({', '.join(f.redline + '/' + f.source for f in found if f.option == i)})"
                )
            if positive and not hit and not refused:
                report.misses.append(f"{question.id}: {question.options[i]!r}")
        if crossing:
            report.positive_questions += 1
            report.positive_questions_caught += refused or crossing <= masked
        else:
            report.negative_questions += 1
            report.negative_questions_flagged += bool(masked)
    return report
