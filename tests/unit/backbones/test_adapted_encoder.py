"""The LoRA-adapted MiniLM the tier-1 detector ships with: merged weights, MiniLM's pooling, clear errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from valuemulch.backbones import AdaptedMiniLMEncoder, MiniLMEncoder
from valuemulch.bounds import Detector
from valuemulch.errors import ConfigError

SHIPPED = Path(str(files("valuemulch.bounds").joinpath("detector_lora.safetensors")))
TEXTS = ["Round them up and hold them in camps.", "Build more shelter places.", "Yes"]


def _with_zero_adapters(tmp_path: Path) -> Path:
    """The shipped file with every lora_B zeroed: the merged model is then plain all-MiniLM-L6-v2."""
    tensors = load_file(str(SHIPPED))
    zeroed = {k: torch.zeros_like(v) if k.endswith(".lora_B") else v for k, v in tensors.items()}
    path = tmp_path / "zero.safetensors"
    save_file(zeroed, str(path), metadata={"scale": "2.0"})
    return path


def test_zero_adapters_give_exactly_minilm(tmp_path: Path) -> None:
    """Merging and pooling match sentence-transformers' all-MiniLM-L6-v2 when the adapters add nothing."""
    adapted = AdaptedMiniLMEncoder(_with_zero_adapters(tmp_path)).encode(TEXTS)
    np.testing.assert_allclose(adapted, MiniLMEncoder().encode(TEXTS), atol=1e-5)


def test_shipped_adapters_change_the_vectors_and_the_id() -> None:
    shipped, frozen = AdaptedMiniLMEncoder(SHIPPED), MiniLMEncoder()
    vectors = shipped.encode(TEXTS)
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.abs(vectors - frozen.encode(TEXTS)).max() > 0.05  # the adapters are really merged
    assert shipped.id.startswith(frozen.id + "+lora:")
    np.testing.assert_array_equal(vectors, shipped.encode(TEXTS))  # deterministic


def test_bad_adapter_files_are_refused_with_a_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        AdaptedMiniLMEncoder(tmp_path / "missing.safetensors")
    wrong = tmp_path / "wrong.safetensors"
    save_file(
        {"encoder.layer.0.nope.lora_A": torch.zeros(8, 384), "encoder.layer.0.nope.lora_B": torch.zeros(384, 8)},
        str(wrong),
        metadata={"scale": "2.0"},
    )
    with pytest.raises(ConfigError, match=r"does not fit all-MiniLM-L6-v2.*Re-export"):
        AdaptedMiniLMEncoder(wrong).encode(TEXTS)
    no_scale = tmp_path / "no_scale.safetensors"
    save_file(load_file(str(SHIPPED)), str(no_scale))
    with pytest.raises(ConfigError, match="scale"):
        AdaptedMiniLMEncoder(no_scale).encode(TEXTS)


def test_detector_uses_the_shipped_classifier_unless_told_otherwise() -> None:
    assert "+lora:" in Detector().classifier_id and "shipped head" in Detector().classifier_id
    assert "logistic regression" in Detector(adapter=None).classifier_id


def test_concurrent_first_use_loads_once_and_agrees_with_sequential() -> None:
    """A service's request threads can all reach a cold encoder at once (the detector's embeddings may
    all be cached, so nothing loaded it at warm-up): every thread gets the same vectors as one would."""
    texts = [
        f"Should the council {verb} the residents of district {i}?"
        for i, verb in enumerate(["help", "house", "deport", "fine"] * 4)
    ]
    expected = AdaptedMiniLMEncoder(SHIPPED).encode(texts)
    cold = AdaptedMiniLMEncoder(SHIPPED)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: cold.encode(texts[i : i + 2]), range(0, len(texts), 2)))
    np.testing.assert_allclose(np.concatenate(results), expected, atol=1e-5)
