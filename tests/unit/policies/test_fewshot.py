"""Few-shot steering: the community's own answers on the most similar training questions, never the
asked question (by id or by text), and the same prompt after a save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from valuemulch.policies import LMPolicy, Policy
from valuemulch.policies._lm._fewshot import ShotBank
from valuemulch.policies._lm._prompts import build_prompt
from valuemulch.types import NormItem, Norms, Question

TEXTS = {
    "guns": "Would stricter gun laws reduce the number of mass shootings?",
    "guns2": "Should it be harder to buy a handgun legally?",
    "tax": "Should taxes on the wealthiest households go up?",
    "moon": "Is the moon landing something you remember well?",
}


def _q(qid: str, text: str | None = None) -> Question:
    return Question(qid, text or TEXTS[qid], ("Yes", "No", "Refused"), (1.0, 2.0, None), (False, False, True), "test")


def _norms() -> Norms:
    items = [NormItem("POLPARTY:Democrat", _q(q), np.array([0.7, 0.2, 0.1])) for q in TEXTS]
    items.append(NormItem("POLPARTY:Republican", _q("tax"), np.array([0.2, 0.75, 0.05])))
    return Norms(items)


def test_shots_are_the_communitys_own_answers_to_the_nearest_questions() -> None:
    bank = ShotBank.from_norms(_norms(), k=2)
    asked = _q("new", "Do you think gun laws should be stricter?")
    shots = bank.shots("POLPARTY:Democrat", asked)
    assert [s.question.id for s in shots][-1] in ("guns", "guns2") and len(shots) == 2  # nearest comes last
    assert {s.question.id for s in shots} == {"guns", "guns2"}
    only_tax = bank.shots("POLPARTY:Republican", asked)
    assert [s.question.id for s in only_tax] == ["tax"]  # only questions this community answered
    np.testing.assert_allclose(only_tax[0].distribution, [0.2, 0.75, 0.05])
    assert bank.shots("POLPARTY:Independent", asked) == []


def test_the_asked_question_is_never_a_shot_by_id_or_by_text() -> None:
    bank = ShotBank.from_norms(_norms(), k=3)
    assert "guns" not in {s.question.id for s in bank.shots("POLPARTY:Democrat", _q("guns"))}
    reworded_id = _q("other-id", "  would STRICTER gun laws reduce the number of mass shootings? ")
    assert "guns" not in {s.question.id for s in bank.shots("POLPARTY:Democrat", reworded_id)}


def test_the_prompt_shows_the_shots_percentages_and_asks_the_question_once() -> None:
    bank = ShotBank.from_norms(_norms(), k=2)
    asked = _q("guns")
    shots = bank.shots("POLPARTY:Democrat", asked)
    text = build_prompt("POLPARTY:Democrat", asked, (0, 1, 2), method="verbalized", steering="few-shot", shots=shots).messages[0][
        1
    ]
    assert "as if in politics today, you considered yourself a Democrat" in text
    assert text.count(TEXTS["guns"]) == 1 and '"A": 70, "B": 20, "C": 10' in text
    assert text.index(TEXTS[shots[-1].question.id]) < text.index(TEXTS["guns"])


def test_a_fitted_few_shot_policy_keeps_its_prompts_through_save_and_load(tmp_path: Path) -> None:
    policy = LMPolicy(steering="few-shot", shots=2, method="verbalized").fit(_norms())
    asked = _q("new", "Should gun laws be stricter?")
    before = policy.prompt("POLPARTY:Democrat", asked)
    assert TEXTS["guns"] in before.messages[0][1]
    policy.save(tmp_path / "m")
    loaded = Policy.load(tmp_path / "m")
    assert isinstance(loaded, LMPolicy) and loaded.prompt("POLPARTY:Democrat", asked) == before
    for item in _norms():  # a training question is never its own example
        assert loaded.prompt(item.community, item.question).messages[0][1].count(item.question.text) == 1
