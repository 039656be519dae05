"""Hyper-parameters of the ``encoder`` method (the CPU default) and of its run on a testbed."""

from __future__ import annotations

from pydantic import Field

from valuemulch.backbones import ENCODER_HELP
from valuemulch.train._base import _PolicyConfig


class EncoderConfig(_PolicyConfig):
    """Train the frozen-encoder + community-scorer policy; defaults are EncoderPolicy's own."""

    encoder: str = Field("minilm", description=f"Text encoder: {ENCODER_HELP}.")
    joint: bool = Field(True, description='Also embed each "question option" text as one string (a fourth feature block).')
    prior_offset: bool = Field(False, description="Start from the log option-text prior and learn only a correction to it.")
    hidden: int = Field(256, gt=0, description="Width of the scorer's hidden layers.")
    community_dim: int = Field(16, gt=0, description="Size of each community's learned vector.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the scorer's inputs and hidden layer.")
    epochs: int = Field(40, gt=0, description="Passes over the training questions.")
    batch_questions: int = Field(32, gt=0, description="Questions per optimisation step (every community's answers to each).")
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(1e-4, ge=0, description="AdamW weight decay.")
    adapt_steps: int = Field(50, ge=0, description="Onboarding (`adapt`): Adam steps fitting the new community's vector.")
    adapt_lr: float = Field(0.05, gt=0, description="Onboarding (`adapt`): learning rate of those steps.")
    adapt_prior: float = Field(
        10.0, ge=0, description="Onboarding (`adapt`): pull of the new vector towards the mean community (per answer)."
    )
