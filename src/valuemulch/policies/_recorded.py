"""Recorded frontier-LLM outputs as policies: they answer exactly the items they were run on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from valuemulch.data import RecordedRun, load_recorded
from valuemulch.errors import DataError
from valuemulch.policies._base import TEXT, Constraint, Policy, Progress, Rng, register
from valuemulch.types import Norms, Question

PREFIX = "recorded:"


@register
class RecordedPolicy(Policy):
    """``recorded:<model>/<method>/<task>``: a frontier model's recorded distributions, replayed.

    ``fit`` loads the recorded file set; nothing is learned. Items the run did not cover are not
    answered (``covers`` is False), and evaluation counts them as skipped.
    """

    name = "recorded"
    description = "Recorded frontier-LLM outputs (Meister et al. 2024; DeepSeek log-probs) on the items they cover."
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"run": TEXT, "data_root": TEXT}

    def __init__(self, *, run: str, data_root: str) -> None:
        self.run = run
        self.data_root = data_root

    @property
    def label(self) -> str:
        return f"{PREFIX}{self.run.removeprefix(PREFIX)}"

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        self.run_: RecordedRun = load_recorded(Path(self.data_root), self.run)

    def state(self) -> dict[str, Any]:
        return {}  # reloaded from the data files, which the certificate hashes

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state({"run_": load_recorded(Path(self.data_root), self.run)})

    def use_data_root(self, root: Path) -> None:
        self.data_root = str(root)
        if self.is_fitted():
            self.run_ = load_recorded(root, self.run)

    def covers(self, community: str, question: Question) -> bool:
        return self.is_fitted() and self.run_.covers(community, question.id)

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        out = []
        for q in questions:
            p = self.run_.predict(community, q.id)
            if p is None or len(p) != q.n_options:
                raise DataError(
                    f"policy '{self.label}'",
                    field="item",
                    expected="an item the run covers",
                    got=(community, q.id),
                    fix="check covers() first",
                )
            out.append(p)
        return out
