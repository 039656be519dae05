"""The testbeds ``us-32`` and ``global-32``: which communities, which questions, which split.

Splits are a pure function of the normalised question text (and of which questions the recorded
frontier outputs cover), so re-reading the data, reordering files or adding communities never moves
a question. Every question a recorded frontier output answers is a test question, so the frontier
comparison is always on held-out items.

Shares: 20% test, 10% dev, 70% train by the hash, plus every frontier-covered question in test.
Of the 32 communities, 8 are *unseen* (for onboarding): never used to fit a seen-community policy.
They are drawn by a hash of the id, first among the communities no frontier output covers (so the
frontier comparison stays on seen communities where it can), round-robin over attributes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from valuemulch.data._globalopinionqa import read_goqa_csv, read_goqa_json
from valuemulch.data._goqa_download import download_global_opinions
from valuemulch.data._opinionqa import read_opinionqa
from valuemulch.data._recorded import frontier_targets
from valuemulch.errors import DataError
from valuemulch.types import Norms, normalise_text

Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
TEST_SHARE = 0.20
DEV_SHARE = 0.10
N_COMMUNITIES = 32
N_UNSEEN = 8

#: us-32 = the 36 substantive OpinionQA groups less these four (DESIGN.md): small or catch-all groups.
US_EXCLUDED = frozenset({"POLPARTY:Other", "RACE:Other", "RACE:Mixed Race", "EDUCATION:Associate's degree"})
US_ATTRIBUTES = ("AGE", "CREGION", "EDUCATION", "INCOME", "POLIDEOLOGY", "POLPARTY", "RACE", "SEX")
NON_NATIONAL_MARK = "non-national"

OPINIONQA_DIR = "opinionqa"
MEISTER_HUMAN_DIR = "distributional_alignment/opinions_qa/data/human_resp"
GOQA_JSON = "modular_pluralism/input/distributional_test_globalopinionqa_small.json"
MEISTER_GLOBAL_JSON = "distributional_alignment/Global_Values/data/data.json"
GOQA_CSV = "llm_global_opinions/global_opinions.csv"

TESTBEDS = {
    "us-32": "32 US demographic groups (OpinionQA, Pew ATP waves with group counts)",
    "global-32": "32 countries with the most questions in GlobalOpinionQA (national samples only)",
}


def _unit_hash(salt: str, text: str) -> float:
    digest = hashlib.sha256(f"{salt}\x1f{normalise_text(text)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of_text(text: str, frontier_texts: frozenset[str] = frozenset()) -> Split:
    """The split of a question, from its normalised text alone (and frontier membership)."""
    if normalise_text(text) in frontier_texts:
        return "test"
    u = _unit_hash("valuemulch-split-v1", text)
    if u < TEST_SHARE:
        return "test"
    return "dev" if u < TEST_SHARE + DEV_SHARE else "train"


@dataclass
class Testbed:
    """A testbed's norms (all 32 communities, every split) and how they are divided."""

    name: str
    description: str
    norms: Norms
    communities: list[str]
    unseen: list[str]
    split: dict[str, Split]  # question id -> split
    frontier_items: Norms  # the human targets recorded frontier outputs were scored against
    data_root: Path
    notes: dict[str, int] = field(default_factory=dict)

    @property
    def seen(self) -> list[str]:
        return [c for c in self.communities if c not in self.unseen]

    def question_ids(self, split: Split) -> list[str]:
        return sorted(q for q, s in self.split.items() if s == split)

    def items(self, split: Split | None = None, communities: Literal["seen", "unseen", "all"] = "seen") -> Norms:
        """The items of one split for the seen, unseen or all communities."""
        chosen = {"seen": self.seen, "unseen": self.unseen, "all": self.communities}[communities]
        qids = self.question_ids(split) if split else None
        return self.norms.filter(communities=chosen, question_ids=qids)

    def sample(self, split: Split, *, questions: int | None, communities: int | None, seed: int) -> Testbed:
        """A seeded sample of the communities and of ``split``'s questions that they answered, for a
        quick look at an expensive model. The other splits stay whole (training saw them); the held-out
        communities are sampled to the same share as the seen ones, at least one.
        """
        rng = np.random.default_rng([seed, 1729])

        def draw(pool: list[str], n: int) -> list[str]:
            return pool if n >= len(pool) else sorted(pool[i] for i in rng.choice(len(pool), size=n, replace=False))

        seen, unseen = self.seen, self.unseen
        kept_seen = draw(seen, communities or len(seen))
        split_q = self.question_ids(split)
        if communities:  # a question no kept community answered would score nothing
            answered = {i.question.id for i in self.norms.filter(communities=kept_seen)}
            split_q = [q for q in split_q if q in answered]
        kept_q = set(draw(split_q, questions or len(split_q)))
        kept_unseen = draw(unseen, max(1, round(len(unseen) * len(kept_seen) / len(seen)))) if unseen and communities else unseen
        kept_c = set(kept_seen) | set(kept_unseen)
        keep_q = [q for q, s in self.split.items() if s != split or q in kept_q]
        return replace(
            self,
            norms=self.norms.filter(communities=[c for c in self.communities if c in kept_c], question_ids=keep_q),
            communities=[c for c in self.communities if c in kept_c],
            unseen=[c for c in unseen if c in kept_c],
            split={q: s for q, s in self.split.items() if s != split or q in kept_q},
            frontier_items=self.frontier_items.filter(communities=kept_c, question_ids=keep_q),
        )

    def summary(self) -> dict[str, object]:
        per_split: dict[str, dict[str, int]] = {}
        for s in SPLITS:
            qids = set(self.question_ids(s))
            per_split[s] = {
                "questions": len(qids),
                "items_seen": sum(1 for i in self.norms if i.question.id in qids and i.community not in self.unseen),
                "items_unseen": sum(1 for i in self.norms if i.question.id in qids and i.community in self.unseen),
            }
        return {
            "name": self.name,
            "description": self.description,
            "communities": self.communities,
            "unseen": self.unseen,
            "n_communities": len(self.communities),
            "n_questions": len(self.split),
            "n_items": len(self.norms),
            "frontier_items": len(self.frontier_items),
            "splits": per_split,
            "shares": {"test": TEST_SHARE, "dev": DEV_SHARE, "train": round(1 - TEST_SHARE - DEV_SHARE, 10)},
            "data_hash": self.norms.content_hash(),
            "notes": self.notes,
        }


def load_testbed(name: str, data_root: Path) -> Testbed:
    """Build a testbed from the data under ``data_root``."""
    if name == "us-32":
        return _us32(data_root)
    if name == "global-32":
        return _global32(data_root)
    raise DataError("--testbed", expected=f"one of {sorted(TESTBEDS)}", got=name, fix="run `valuemulch testbeds` to list them")


def _optional_frontier(data_root: Path, family: str) -> Norms:
    if not (data_root / "distributional_alignment" / "results").is_dir():
        return Norms(source="no recorded frontier outputs")
    targets = frontier_targets(data_root)
    return targets.filter(question_ids=[q.id for q in targets.questions.values() if q.source == family])


def _us32(data_root: Path) -> Testbed:
    base = data_root / OPINIONQA_DIR
    if not base.is_dir():
        raise DataError(
            f"{base}",
            expected="the OpinionQA per-group counts (American_Trends_Panel_W*/)",
            got="no such folder",
            fix="get OpinionQA from its CodaLab worksheet (see docs/data.md) into DATA/opinionqa, or set VALUEMULCH_DATA",
        )
    norms = read_opinionqa(base)
    if (data_root / MEISTER_HUMAN_DIR).is_dir():
        norms = norms.merged(read_opinionqa(data_root / MEISTER_HUMAN_DIR))
    frontier = _optional_frontier(data_root, "opinionqa")
    communities = sorted(c for c in norms.communities if c not in US_EXCLUDED and c.split(":")[0] in US_ATTRIBUTES)
    if len(communities) != N_COMMUNITIES:
        raise DataError(
            str(base),
            expected=f"{N_COMMUNITIES} substantive groups after excluding {sorted(US_EXCLUDED)}",
            got=communities,
            fix="check that all eight attribute files (AGE ... SEX) are present",
        )
    frontier = frontier.filter(communities=communities)
    norms = norms.merged(frontier).filter(communities=communities)
    return _finish("us-32", norms, communities, frontier, data_root)


def _global32(data_root: Path) -> Testbed:
    norms: Norms
    if (data_root / GOQA_JSON).is_file():
        norms = read_goqa_json(data_root / GOQA_JSON)
        if (data_root / MEISTER_GLOBAL_JSON).is_file():
            norms = norms.merged(read_goqa_json(data_root / MEISTER_GLOBAL_JSON))
    else:
        csv_path = data_root / GOQA_CSV
        norms = read_goqa_csv(csv_path if csv_path.is_file() else download_global_opinions())
    frontier = _optional_frontier(data_root, "globalopinionqa")
    counts = Counter(i.community for i in norms if NON_NATIONAL_MARK not in i.community.lower())
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    if len(ranked) < N_COMMUNITIES:
        raise DataError(
            str(data_root),
            expected=f"at least {N_COMMUNITIES} national samples",
            got=len(ranked),
            fix="use the full GlobalOpinionQA",
        )
    communities = sorted(ranked[:N_COMMUNITIES])
    frontier = frontier.filter(communities=communities)
    norms = norms.merged(frontier).filter(communities=communities)
    return _finish("global-32", norms, communities, frontier, data_root)


def _finish(name: str, norms: Norms, communities: list[str], frontier: Norms, data_root: Path) -> Testbed:
    frontier_texts = frozenset(normalise_text(q.text) for q in frontier.questions.values())
    split = {qid: split_of_text(q.text, frontier_texts) for qid, q in norms.questions.items()}
    unseen = _choose_unseen(name, communities, {i.community for i in frontier})
    notes = {**norms.skipped, "renormalised distributions": norms.renormalised}
    return Testbed(name, TESTBEDS[name], norms, communities, unseen, split, frontier, data_root, notes)


def _choose_unseen(name: str, communities: list[str], covered: set[str]) -> list[str]:
    """Pick the unseen communities by hash: first among those no frontier output covers, then (only if
    too few) among the rest; round-robin over attributes (AGE, INCOME, ...) so that no attribute loses
    all its seen groups before others lose one.
    """
    chosen: list[str] = []
    for pool in ([c for c in communities if c not in covered], [c for c in communities if c in covered]):
        by_attribute: dict[str, list[str]] = {}
        for c in sorted(pool, key=lambda c: _unit_hash(f"valuemulch-unseen-{name}", c)):
            by_attribute.setdefault(c.partition(":")[0] if ":" in c else "", []).append(c)
        queues = sorted(by_attribute.values(), key=lambda q: _unit_hash(f"valuemulch-unseen-{name}", q[0]))
        while len(chosen) < N_UNSEEN and any(queues):
            for queue in queues:
                if queue and len(chosen) < N_UNSEEN:
                    chosen.append(queue.pop(0))
    return sorted(chosen)
