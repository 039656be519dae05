"""Few-shot community steering: the community's own answers to the most similar training questions.

As in Meister et al. (2024)'s few-shot setting, the examples in the prompt are the community's answer
distributions on the k training questions closest to the asked one (cosine similarity of MiniLM
embeddings of the question text). The asked question is never an example: neither its id nor its
text (normalised) may appear among the shots, whatever split it comes from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from valuemulch.backbones import EmbeddingCache, make_encoder
from valuemulch.types import Norms, Question, normalise_text


@dataclass(frozen=True)
class Shot:
    """One example: a training question and the community's distribution over its options."""

    question: Question
    distribution: np.ndarray


class ShotBank:
    """Each community's training answers, searchable by question similarity."""

    def __init__(self, questions: dict[str, Question], answers: dict[str, dict[str, np.ndarray]], k: int) -> None:
        self.questions, self.answers, self.k = questions, answers, k
        self._ids = sorted(questions)
        self._vectors: np.ndarray | None = None
        self._cache: EmbeddingCache | None = None
        self._memo: dict[tuple[str, str, str], list[Shot]] = {}  # every option order of a question asks again

    @classmethod
    def from_norms(cls, norms: Norms, k: int) -> ShotBank:
        answers: dict[str, dict[str, np.ndarray]] = {}
        for item in norms:
            answers.setdefault(item.community, {})[item.question.id] = np.asarray(item.distribution, dtype=np.float64)
        return cls(dict(norms.questions), answers, k)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._cache is None:  # one cache (and the process's one MiniLM) for every question asked
            self._cache = EmbeddingCache(make_encoder("minilm"))
        vectors = self._cache.embed(list(texts))
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def shots(self, community: str, question: Question) -> list[Shot]:
        """The k most similar training questions this community answered, most similar last (nearest
        the asked question in the prompt); never the asked question itself."""
        key = (community, question.id, question.text)
        if key not in self._memo:
            self._memo[key] = self._nearest(community, question)
        return self._memo[key]

    def _nearest(self, community: str, question: Question) -> list[Shot]:
        mine = self.answers.get(community, {})
        if not mine or self.k == 0:
            return []
        if self._vectors is None:
            self._vectors = self._embed([self.questions[q].text for q in self._ids])
        asked = normalise_text(question.text)
        score = self._vectors @ self._embed([question.text])[0]
        ranked = [
            self._ids[j]
            for j in np.argsort(-score, kind="stable")
            if self._ids[j] in mine and self._ids[j] != question.id and normalise_text(self.questions[self._ids[j]].text) != asked
        ]
        return [Shot(self.questions[q], mine[q]) for q in reversed(ranked[: self.k])]

    def to_state(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "questions": {qid: _question_state(q) for qid, q in sorted(self.questions.items())},
            "answers": {c: {q: d.round(6).tolist() for q, d in sorted(a.items())} for c, a in sorted(self.answers.items())},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ShotBank:
        questions = {qid: _question(q) for qid, q in state["questions"].items()}
        answers = {c: {q: np.asarray(d, dtype=np.float64) for q, d in a.items()} for c, a in state["answers"].items()}
        return cls(questions, answers, int(state["k"]))


def _question_state(q: Question) -> dict[str, Any]:
    ordinal = None if q.ordinal is None else list(q.ordinal)
    return {
        "id": q.id,
        "text": q.text,
        "options": list(q.options),
        "ordinal": ordinal,
        "refusal": list(q.refusal),
        "source": q.source,
    }


def _question(q: dict[str, Any]) -> Question:
    ordinal = None if q["ordinal"] is None else tuple(q["ordinal"])
    return Question(q["id"], q["text"], tuple(q["options"]), ordinal, tuple(q["refusal"]), q["source"])
