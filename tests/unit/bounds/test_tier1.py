"""The layers of tier 1 over given evidence: decisions about people, doubt, and what a guard may do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from valuemulch.bounds import Flag, Score, Verdict, apply_bounds
from valuemulch.bounds._tier1 import Evidence, decide
from valuemulch.types import Question

Q = Question("q", "The board must decide what happens to the detainees.", ("Release them", "Hold them", "Transfer them"))


def _score(option: int, p: float) -> Score:
    return Score(option, "arbitrary_detention", p, f"act {option}", False, p)


def _evidence(scores: dict[int, float], about: bool, flags: Sequence[Flag] = ()) -> Evidence:
    return Evidence(Q, list(flags), ({i: _score(i, p) for i, p in scores.items()},), about)


def test_decisions_about_people_mask_what_is_not_cleared_with_their_own_reason() -> None:
    t = decide(_evidence({0: 0.1, 1: 0.6, 2: 0.3}, about=True), cleared=0.5, doubt=[0.9])
    assert t.masked == [1] and t.flags[0].source == "uncleared" and t.flags[0].act == "act 1"
    opinion = decide(_evidence({0: 0.1, 1: 0.6, 2: 0.3}, about=False), cleared=0.5, doubt=[0.9])
    assert opinion.masked == []  # an opinion question keeps every option


def test_doubt_keeps_mass_but_is_recorded() -> None:
    t = decide(_evidence({0: 0.1, 1: 0.85, 2: 0.3}, about=False), cleared=0.5, doubt=[0.8])
    assert t.masked == [] and list(t.doubtful) == [1] and "0.850" in t.doubtful[1]


class Judge:
    """A guard answering fixed verdicts (the real one's plumbing is tested against a real server)."""

    id = "fixed"

    def __init__(self, verdicts: dict[int, bool | None]) -> None:
        self.verdicts = verdicts

    def judge(self, question: str, acts: Sequence[tuple[int, str]]) -> list[Verdict]:
        return [Verdict(o, self.verdicts.get(o, False), "killing" if self.verdicts.get(o) else None, "fixed") for o, _ in acts]


def test_a_guard_only_adds_masks_and_its_silence_is_doubt() -> None:
    masked_already = Flag(0, "killing", "rule", act="x")
    e = _evidence({0: 0.99, 1: 0.1, 2: 0.1}, about=False, flags=[masked_already])
    t = decide(e, Judge({0: False, 1: True, 2: None}), cleared=0.5, doubt=[0.9])
    assert t.masked == [0, 1]  # "no" on option 0 does not unmask it; "yes" on option 1 masks it
    assert list(t.doubtful) == [2] and "no verdict" in t.doubtful[2]


def test_the_service_never_chooses_a_doubtful_option_and_refuses_when_none_is_clear() -> None:
    class Silent(Judge):
        def __init__(self) -> None:
            super().__init__({0: None})

    q = Question("q", "Which colour should the new bus shelters be painted?", ("Green", "Blue"))
    answer = apply_bounds(q, np.array([0.9, 0.1]), "c", guard=Silent())
    assert answer.doubtful == [0] and answer.distribution is not None and answer.distribution[0] > 0.5
    p = answer.choosable
    assert p is not None and p[0] == 0 and int(np.argmax(p)) == 1
    nothing_clear = apply_bounds(q, np.array([0.9, 0.1]), "c", guard=Judge({0: None, 1: None}))
    assert nothing_clear.refused and nothing_clear.reasons[-1].code == "no_clear_option"
