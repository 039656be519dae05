"""The run of a baseline (or a recorded frontier run) fitted on a testbed like any trained policy."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from valuemulch.train._base import _PolicyConfig

PRIORS = ("position-prior", "option-text-prior")  # the baselines that take ``per_community``


class BaselineConfig(_PolicyConfig):
    """Fit a non-learned reference (uniform, a prior, a recorded run) so it can be saved and certified."""

    RUN_FIELDS: ClassVar[frozenset[str]] = _PolicyConfig.RUN_FIELDS | {"policy"}

    policy: str = Field(description="Policy name (see `valuemulch policies`).")
    per_community: bool | None = Field(
        None,
        description="position-prior and option-text-prior: one prior per community (true, their default) or one pooled prior.",
    )

    @model_validator(mode="after")
    def _per_community_only_for_priors(self) -> Self:
        if self.per_community is not None and self.policy not in PRIORS:
            raise ValueError(f"per_community unset unless the policy is one of {list(PRIORS)}; got policy {self.policy!r}")
        return self
