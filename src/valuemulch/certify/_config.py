"""`CertifyConfig`: every setting that changes a certificate's numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from valuemulch.data import Split, Testbed


class CertifyConfig(BaseModel):
    """Every setting that changes a number; stored in the certificate and reused by ``verify``.

    Unknown keys are errors (``extra="forbid"``): a misspelt setting must not silently fall back to
    its default.
    """

    model_config = ConfigDict(extra="forbid")

    testbed: str = Field(description="The testbed to certify on (the one the model was trained on).")
    policy_file: str = Field(description="Path of the certification rules (TOML).")
    split: Split = Field(default="test", description="The split whose items are evaluated.")
    refusals: Literal["keep", "drop"] = Field(
        default="keep",
        description="keep: score full distributions; drop: remove refusal options from both sides and renormalise.",
    )
    n_boot: int = Field(default=1000, description="Bootstrap resamples for every CI.")
    seed: int = Field(default=0, description="Seed of the bootstraps and of the onboarding draws.")
    adapt_k: int = Field(default=10, description="Train-split answers each held-out community is onboarded from.")
    adapt_seeds: list[int] = Field(default_factory=lambda: [0], description="Onboarding seeds; their items are pooled.")
    cross_fit: int | None = Field(
        default=None,
        ge=2,
        description="Cross-fit a community layer (`stack`) over K folds of the test questions; null: the saved model answers.",
    )
    questions: int | None = Field(
        default=None,
        ge=1,
        description="Evaluate a seeded sample of this many of the split's questions (null: all); a quick look at an expensive model.",
    )
    communities: int | None = Field(
        default=None,
        ge=1,
        description="Evaluate a seeded sample of this many seen communities, and the same share of held-out ones (null: all).",
    )
    budgets: list[float | None] = Field(
        default_factory=lambda: [0.05, 0.1, 0.2, 0.3, None],
        description="Tier-2 max-divergence budgets of the trade-off table; null means no budget.",
    )


def evaluated_testbed(testbed: Testbed, config: CertifyConfig) -> Testbed:
    """The testbed as the certificate evaluates it: whole, or the seeded sample ``config`` asks for."""
    if config.questions is None and config.communities is None:
        return testbed
    return testbed.sample(config.split, questions=config.questions, communities=config.communities, seed=config.seed)
