"""The detector export: what it writes is what the reader loads, and equal weights give equal bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save
from transformers import AutoTokenizer

from valuemulch.backbones import AdaptedMiniLMEncoder, minilm_dir
from valuemulch.train import DetectorConfig, DetectorModel, TrainedDetector, export_detector
from valuemulch.train.detector import _sorted_header, training_data


def test_sorted_header_keeps_tensors_and_metadata_and_is_stable() -> None:
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(5)}
    first = save(tensors, metadata={"z": "1", "a": "2", "m": "3"})
    sorted_once = _sorted_header(first)
    assert _sorted_header(sorted_once) == sorted_once
    assert int.from_bytes(sorted_once[:8], "little") % 8 == 0
    header = json.loads(sorted_once[8 : 8 + int.from_bytes(sorted_once[:8], "little")])
    assert list(header) == sorted(header) and list(header["__metadata__"]) == ["a", "m", "z"]
    assert sorted_once[-4 * 11 :] == first[-4 * 11 :]  # the data block is untouched


def test_export_is_what_the_adapted_encoder_reads(tmp_path: Path) -> None:
    config = DetectorConfig(lora_r=2, out=tmp_path / "d.safetensors")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = DetectorModel(config.lora_r)
        for name, p in model.encoder.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.01)  # a trained-looking adapter (B starts at zero)
    trained = TrainedDetector(config, model, tokenizer=None, seconds=0.0)
    path = export_detector(trained, config.out)  # type: ignore[arg-type]
    again = export_detector(trained, tmp_path / "again.safetensors")
    assert path.read_bytes() == again.read_bytes()
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert {"head.weight", "head.bias"} <= set(f.keys())
    assert meta["scale"] == "2.0" and meta["run"] == "lora2 seed 0" and json.loads(meta["config"])["lora_r"] == 2
    texts = ["Kill them all.", "Give them a fair trial."]
    merged = AdaptedMiniLMEncoder(path).encode(texts)  # the adapters merged into MiniLM, as shipped
    batch = AutoTokenizer.from_pretrained(str(minilm_dir()))(texts, padding=True, return_tensors="pt")
    model.eval()
    with torch.no_grad():
        direct = model.embed(batch["input_ids"], batch["attention_mask"]).numpy()
    assert not np.allclose(direct, AdaptedMiniLMEncoder(_unadapted(tmp_path, trained)).encode(texts), atol=1e-4)
    assert np.allclose(merged, direct, atol=1e-5)


def _unadapted(tmp_path: Path, trained: TrainedDetector) -> Path:
    """The same export with every lora_B zeroed: MiniLM unchanged (shows the adapters matter above)."""
    with torch.no_grad():
        for name, p in trained.model.encoder.named_parameters():
            if "lora_B" in name:
                p.zero_()
    return export_detector(trained, tmp_path / "zero.safetensors")


def test_training_data_gives_each_class_half_the_weight() -> None:
    for weight in (1.0, 2.0):
        texts, y, w = training_data(weight)
        assert len(texts) == len(y) == len(w) and set(np.unique(y)) == {0.0, 1.0}
        assert np.isclose(w[y == 1].sum(), 0.5) and np.isclose(w[y == 0].sum(), 0.5)
