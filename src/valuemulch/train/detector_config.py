"""Hyper-parameters of the tier-1 detector's classifier (all-MiniLM-L6-v2 + LoRA + a linear head).

The defaults are the ones that trained the shipped ``bounds/detector_lora.safetensors`` (the ``lora8``
variant of ``benchmarks/bounds_finetune.py``, seed 0), chosen on dev only (docs/bounds.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from valuemulch.train._base import _BaseConfig


class DetectorConfig(_BaseConfig):
    """Train the meaning classifier of the tier-1 detector on ``training_statements()``."""

    # what the exported file's metadata records as its "config", in this order (so the recorded
    # config string equals the shipped file's; test_detector_defaults_are_the_shipped_run)
    TRAINING_FIELDS: ClassVar[tuple[str, ...]] = ("epochs", "lr", "head_lr", "head_init", "catalogue_weight", "lora_r")
    RUN_FIELDS: ClassVar[frozenset[str]] = frozenset({"out", "run", "threads"})

    seed: int = Field(0, description="Seed of the adapters' initialisation, dropout and the batch order.")
    out: Path | None = Field(
        None,
        description="The adapters-and-head file to write (the shipped one is src/valuemulch/bounds/detector_lora.safetensors).",
    )
    epochs: int = Field(4, gt=0, description="Passes over the training statements.")
    lr: float = Field(5e-4, gt=0, description="AdamW learning rate of the adapters (of the whole encoder when lora_r is 0).")
    head_lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the linear head.")
    head_init: Literal["lr", "zero"] = Field(
        "lr", description="Start the head from the frozen encoder's logistic regression (lr) or from zeros (zero)."
    )
    catalogue_weight: float = Field(
        1.0,
        gt=0,
        description="Weight of the catalogue's own examples against statements.toml's extras (each class sums to half).",
    )
    lora_r: int = Field(
        8,
        ge=0,
        description="Rank of the LoRA adapters on every attention and dense layer (0: fine-tune the whole encoder, which cannot be exported).",
    )
    run: str | None = Field(None, description="Label stored in the file's metadata (default: lora<lora_r> seed <seed>).")
    threads: int = Field(1, gt=0, description="CPU threads while training (the shipped file was trained on 1).")

    def training_config(self) -> dict[str, object]:
        """The hyper-parameters the exported file records."""
        return {name: getattr(self, name) for name in self.TRAINING_FIELDS}

    def run_label(self) -> str:
        return self.run if self.run is not None else f"lora{self.lora_r} seed {self.seed}"
