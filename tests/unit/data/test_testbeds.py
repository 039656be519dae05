"""Testbeds on the real data: the communities DESIGN.md defines, and splits that never move."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuemulch.data import load_testbed, split_of_text
from valuemulch.data._testbeds import DEV_SHARE, TEST_SHARE, US_EXCLUDED
from valuemulch.errors import DataError
from valuemulch.types import normalise_text


def test_split_is_a_function_of_normalised_text() -> None:
    text = "How safe, if at all, would you say your local community is from crime?"
    assert split_of_text(text) == split_of_text("  " + text.upper().replace(" ", "  ") + " ")
    assert split_of_text(text, frozenset({normalise_text(text)})) == "test"


def test_split_shares_are_close_to_the_stated_ones() -> None:
    splits = [split_of_text(f"synthetic question {i}") for i in range(20_000)]
    assert splits.count("test") / len(splits) == pytest.approx(TEST_SHARE, abs=0.01)
    assert splits.count("dev") / len(splits) == pytest.approx(DEV_SHARE, abs=0.01)


def test_unknown_testbed_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="valuemulch testbeds"):
        load_testbed("us-33", tmp_path)


def test_us32_communities(us32) -> None:  # type: ignore[no-untyped-def]
    assert len(us32.communities) == 32
    assert not set(us32.communities) & US_EXCLUDED
    assert "POLPARTY:Democrat" in us32.communities and "AGE:65+" in us32.communities
    assert len(us32.unseen) == 8 and set(us32.unseen) <= set(us32.communities)
    # the frontier comparison stays on seen communities
    assert not {i.community for i in us32.frontier_items} & set(us32.unseen)


def test_global32_communities_are_national_samples(global32) -> None:  # type: ignore[no-untyped-def]
    assert len(global32.communities) == 32
    assert all("non-national" not in c.lower() for c in global32.communities)
    assert {"Britain", "Japan", "United States"} <= set(global32.communities)
    assert len(global32.unseen) == 8


@pytest.mark.parametrize("name", ["us-32", "global-32"])
def test_every_frontier_question_is_a_test_question(name: str, request: pytest.FixtureRequest) -> None:
    tb = request.getfixturevalue(name.replace("-", ""))
    assert len(tb.frontier_items) > 0
    assert {tb.split[i.question.id] for i in tb.frontier_items} == {"test"}
    # and no question text straddles two splits
    by_text: dict[str, set[str]] = {}
    for qid, q in tb.norms.questions.items():
        by_text.setdefault(normalise_text(q.text), set()).add(tb.split[qid])
    assert all(len(s) == 1 for s in by_text.values())


@pytest.mark.parametrize("name", ["us-32", "global-32"])
def test_splits_never_change_when_data_is_reread(name: str, data_root: Path, request: pytest.FixtureRequest) -> None:
    first = request.getfixturevalue(name.replace("-", ""))
    again = load_testbed(name, data_root)
    assert again.split == first.split
    assert again.unseen == first.unseen
    assert again.norms.content_hash() == first.norms.content_hash()
    # every split is recomputable from the question text alone: no dependence on file order or other items
    assert all(
        split_of_text(q.text, frozenset(normalise_text(x.text) for x in first.frontier_items.questions.values()))
        == first.split[qid]
        for qid, q in first.norms.questions.items()
    )


def test_a_sample_is_seeded_and_shrinks_only_what_is_evaluated(global32) -> None:  # type: ignore[no-untyped-def]
    small = global32.sample("test", questions=6, communities=4, seed=0)
    again = global32.sample("test", questions=6, communities=4, seed=0)
    assert again.question_ids("test") == small.question_ids("test") and again.communities == small.communities  # seeded: the same draw
    other = global32.sample("test", questions=6, communities=4, seed=1)
    assert other.question_ids("test") != small.question_ids("test")
    assert len(small.question_ids("test")) == 6 and set(small.question_ids("test")) <= set(global32.question_ids("test"))
    assert set(small.items("test", "seen").questions) == set(small.question_ids("test"))  # each one answered by a kept community
    assert len(small.seen) == 4 and set(small.seen) <= set(global32.seen)
    assert len(small.unseen) == max(1, round(len(global32.unseen) * 4 / len(global32.seen)))
    assert small.question_ids("train") == global32.question_ids("train")  # training saw these; never sampled
    assert small.items("train", "seen").content_hash() == global32.items("train", "seen").filter(communities=small.seen).content_hash()
    assert set(small.frontier_items.questions) <= set(small.question_ids("test"))
    assert {i.community for i in small.frontier_items} <= set(small.communities)
    whole = global32.sample("test", questions=10_000, communities=None, seed=0)
    assert whole.question_ids("test") == global32.question_ids("test") and whole.communities == global32.communities
    assert whole.items("test", "all").content_hash() == global32.items("test", "all").content_hash()
