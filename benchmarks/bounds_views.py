"""Experiment (not adopted): other views of a statement for the tier-1 classifier, through the same selection.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/bounds_views.py --view meanmax

``mean`` is the shipped view (all-MiniLM-L6-v2's sentence embedding); ``max`` max-pools its token
embeddings, so one strong word ("beating") is not averaged away by its topic; ``meanmax`` joins both.
The detector's training statements, thresholds and selection on dev are those of
``bounds_detector.py``, which this runs with regressions on the view as the candidates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from valuemulch.backbones import MiniLMEncoder

sys.path.insert(0, str(Path(__file__).parent))
import bounds_detector


class PooledMiniLM(MiniLMEncoder):
    def __init__(self, view: str) -> None:
        super().__init__()
        self.view = view
        self.id = f"{super().id}#{view}"  # its own rows in the embedding cache
        self.dim = 768 if view == "meanmax" else 384

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        mean = model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        tokens = model.encode(list(texts), output_value="token_embeddings")
        peak = np.stack([t.numpy()[1:-1].max(axis=0) if len(t) > 2 else t.numpy().max(axis=0) for t in tokens])
        peak /= np.maximum(np.linalg.norm(peak, axis=1, keepdims=True), 1e-12)
        out = {"mean": mean, "max": peak, "meanmax": np.c_[mean, peak] / np.sqrt(2)}[self.view]
        return np.asarray(out, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", choices=("mean", "max", "meanmax"), required=True)
    view = parser.parse_known_args()[0].view
    sys.argv = [a for a in sys.argv if a not in ("--view", view)]
    bounds_detector.main(encoder=PooledMiniLM(view))


if __name__ == "__main__":
    main()
