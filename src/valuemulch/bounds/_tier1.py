"""Tier 1 as one judgement per question, so that it does not rest on one score being right.

Four layers read the acts of ``read_acts``, and each can only take options away:

1. **Masks** (``Detector.detect``): tags, the catalogue's rules, and the meaning classifiers.
2. **Decisions about people** (``decides_about_people``): when a question decides what is done to
   particular people or a group, an option must be *cleared* (its tier-1 score at most ``cleared``)
   before it may carry mass; otherwise it is masked with its own reason (``decision_not_cleared``).
3. **A guard model**, when the deployment has one (``Guard``): its verdict "crosses" masks; it cannot
   unmask anything, and a timeout or an unreadable verdict counts as doubt.
4. **Doubt**: an unmasked option that a meaning classifier scores at least its ``doubt`` threshold
   (one per classifier: the adapter, then the regression) keeps its mass but is never
   the service's choice; a question whose substantive options are all masked or doubtful is refused.

``cleared`` and ``doubt`` live in ``[tier1]`` of ``redlines.toml`` and are chosen on dev by
``benchmarks/bounds_layers.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from valuemulch.bounds._acts import decides_about_people, read_acts
from valuemulch.bounds._catalogue import tier1_settings
from valuemulch.bounds._detect import Detector, Flag, Score
from valuemulch.errors import ConfigError
from valuemulch.types import Question


class GuardVerdict(Protocol):
    @property
    def option(self) -> int: ...
    @property
    def crosses(self) -> bool | None: ...
    @property
    def redline(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


class GuardJudge(Protocol):
    """What tier 1 needs of a guard model (``valuemulch.bounds.Guard`` is one)."""

    id: str

    def judge(self, question: str, acts: Sequence[tuple[int, str]]) -> Sequence[GuardVerdict]: ...


@dataclass(frozen=True)
class Tier1:
    """One question's tier-1 outcome: the flags that mask options, and the unmasked options in doubt
    (option -> why, with the score or the guard's failure)."""

    flags: list[Flag]
    doubtful: dict[int, str] = field(default_factory=dict)
    about_people: bool = False

    @property
    def masked(self) -> list[int]:
        return sorted({f.option for f in self.flags})


@cache
def _thresholds() -> tuple[float, tuple[float, ...]]:
    settings = tier1_settings()
    return float(settings["cleared"]), tuple(float(d) for d in settings["doubt"])


@dataclass(frozen=True)
class Evidence:
    """What the layers read, computed once per question (thresholds can then be swept for free)."""

    question: Question
    flags: list[Flag]
    scores: tuple[dict[int, Score], ...]  # per meaning classifier, each option's most suspect act
    about_people: bool

    @property
    def best(self) -> dict[int, Score]:
        """Each option's highest score over the classifiers: what clears a decision about people."""
        out: dict[int, Score] = {}
        for scores in self.scores:
            for i, s in scores.items():
                if i not in out or s.probability > out[i].probability:
                    out[i] = s
        return out


def evidence(question: Question, detector: Detector, option_tags: tuple[tuple[str, ...], ...] | None = None) -> Evidence:
    scores = tuple(detector.classifier_scores(question)) if detector.semantic else ()
    return Evidence(question, list(detector.detect(question, option_tags)), scores, decides_about_people(question))


def judge(
    question: Question,
    detector: Detector,
    option_tags: tuple[tuple[str, ...], ...] | None = None,
    guard: GuardJudge | None = None,
    *,
    cleared: float | None = None,
    doubt: Sequence[float] | None = None,
) -> Tier1:
    """Every layer over ``question``; ``cleared`` and ``doubt`` (one threshold per meaning classifier)
    default to ``[tier1]``'s."""
    return decide(evidence(question, detector, option_tags), guard, cleared=cleared, doubt=doubt)


def decide(
    e: Evidence, guard: GuardJudge | None = None, *, cleared: float | None = None, doubt: Sequence[float] | None = None
) -> Tier1:
    """The layers' outcome from the evidence: masks, uncleared decisions, the guard, and doubt."""
    default_cleared, default_doubt = _thresholds()
    cleared = default_cleared if cleared is None else cleared
    doubt = default_doubt if doubt is None else doubt
    flags = list(e.flags)
    masked = {f.option for f in flags}
    if e.about_people:
        for i, score in sorted(e.best.items()):
            if i not in masked and score.probability > cleared:
                flags.append(Flag(i, score.redline, "uncleared", round(score.probability, 4), score.act))
                masked.add(i)
    if len(doubt) < len(e.scores):
        raise ConfigError(f"[tier1] doubt needs one threshold per meaning classifier ({len(e.scores)}), got {list(doubt)}.")
    doubtful: dict[int, str] = {}
    for scores, threshold in zip(e.scores, doubt, strict=False):
        for i, s in sorted(scores.items()):
            if i not in masked and i not in doubtful and s.probability >= threshold:
                doubtful[i] = f"tier-1 score {s.probability:.3f} >= doubt {threshold:g}: {s.act}"
    doubtful = dict(sorted(doubtful.items()))
    if guard is not None:
        acts = [(a.option, a.text) for a in read_acts(e.question) if a.option not in masked]
        for verdict in guard.judge(e.question.text, acts):
            text = next(t for o, t in acts if o == verdict.option)
            if verdict.crosses:
                flags.append(Flag(verdict.option, verdict.redline or "unknown", "guard", None, text))
                masked.add(verdict.option)
                doubtful.pop(verdict.option, None)
            elif verdict.crosses is None and verdict.option not in masked:
                doubtful.setdefault(verdict.option, f"guard gave no verdict ({verdict.reason}): {text}")
    flags.sort(key=lambda f: f.option)
    return Tier1(flags, doubtful, e.about_people)
