"""Hyper-parameters of the ``stack`` method (the community layer) and of its run on a testbed."""

from __future__ import annotations

from pydantic import Field

from valuemulch.policies import STACK_BACKBONES_HELP
from valuemulch.train._base import _PolicyConfig


class StackConfig(_PolicyConfig):
    """Fit the community layer on the train split: its backbones (those that learn, on the same
    items) and the pooling chosen by inner CV. Recorded runs answer no train question: to score a
    layer over them, use `valuemulch evaluate --policy stack --cross-fit K`."""

    backbones: str = Field("encoder,option-text-prior", description=f"The backbones, {STACK_BACKBONES_HELP}.")
    inner_folds: int = Field(5, ge=2, description="Inner cross-validation folds (by question text) that choose the pooling.")
