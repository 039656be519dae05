"""The detector trainer: fine-tune the tier-1 meaning classifier and export what the package ships.

The model is all-MiniLM-L6-v2 (mean pooling, L2 normalisation) with low-rank adapters on every
attention and dense layer and a linear head, trained with class-balanced BCE on
``training_statements()``. The export holds only the adapter pairs and the head, named as
``AdaptedMiniLMEncoder`` and ``Detector`` read them, so the shipped file stays small.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from valuemulch.backbones import MiniLMEncoder, minilm_dir
from valuemulch.bounds import Detector, catalogue, out_of_scope, training_statements
from valuemulch.errors import ConfigError
from valuemulch.train.detector_config import DetectorConfig

BATCH = 16  # statements per step
MAX_TOKENS = 128  # the training statements are single sentences
WEIGHT_DECAY = 0.01
WARMUP = 0.1  # share of the steps with a linearly rising learning rate, then linear decay to 0
HEAD_L2 = 0.001  # the ridge penalty of the regression the head starts from (head_init "lr")

EpochCallback = Callable[[int, int, float, float], None]  # (epoch, epochs, mean loss, seconds so far)


class DetectorModel(torch.nn.Module):
    """MiniLM (with LoRA adapters when ``lora_r``) and a linear head over its normalised mean-pooled output."""

    def __init__(self, lora_r: int) -> None:
        from transformers import AutoModel

        super().__init__()
        self.encoder = AutoModel.from_pretrained(str(minilm_dir()))
        if lora_r:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules=["query", "key", "value", "dense"]
            )
            self.encoder = get_peft_model(self.encoder, lora)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

    def embed(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids, mask)).squeeze(-1)  # type: ignore[no-any-return]


@dataclass
class TrainedDetector:
    """The trained classifier (``model.embed(ids, mask)`` and ``model.head``), its tokenizer, the
    per-epoch mean losses, the training time, and where it was exported (None when not)."""

    config: DetectorConfig
    model: DetectorModel
    tokenizer: Any
    seconds: float
    losses: list[float] = field(default_factory=list)
    path: Path | None = None


def training_data(catalogue_weight: float) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Statements, labels (1 = crosses a red line) and weights: each class carries half the total, and
    the catalogue's own examples weigh ``catalogue_weight`` times statements.toml's extras."""
    crossing, benign = training_statements()
    texts = [t for t, _ in crossing] + benign
    y = np.r_[np.ones(len(crossing)), np.zeros(len(benign))]
    w = np.where(y == 1, 0.5 / len(crossing), 0.5 / len(benign))
    if catalogue_weight != 1.0:
        core = {t for line in catalogue() for t in line.examples} | set(out_of_scope())
        w = w * np.array([catalogue_weight if t in core else 1.0 for t in texts])
        for cls in (0, 1):  # back to half the total per class
            w[y == cls] *= 0.5 / w[y == cls].sum()
    return texts, y, w


def train_detector(config: DetectorConfig, *, on_epoch: EpochCallback | None = None) -> TrainedDetector:
    """Train the classifier; export it to ``config.out`` when set.

    Seeds only a forked torch generator (the caller's random state is restored afterwards) and runs on
    ``config.threads`` threads, so the same config gives the same file. One input is read through the
    embedding cache: the frozen encoder's vectors the head starts from (``head_init="lr"``). Vectors
    cached by other runs, embedded in other batches, differ in the last bits (about 5e-8), so the
    shipped file's tensors and metadata are reproduced bit for bit from a cold cache
    (``VALUEMULCH_CACHE=$(mktemp -d)``); from a warm one the weights differ by about 3e-7 and the
    detector decides every probe the same.
    """
    from transformers import AutoTokenizer

    if config.out is not None and not config.lora_r:
        raise ConfigError(
            "The 'lora_r' field of DetectorConfig must be >= 1 to export; got 0 (a whole encoder is too large to ship)."
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            model = DetectorModel(config.lora_r)
            tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
            trained = _fit(config, model, tokenizer, on_epoch)
    finally:
        torch.set_num_threads(threads)
    if config.out is not None:
        trained.path = export_detector(trained, config.out)
    return trained


def _fit(config: DetectorConfig, model: DetectorModel, tokenizer: Any, on_epoch: EpochCallback | None) -> TrainedDetector:
    texts, y, w = training_data(config.catalogue_weight)
    with torch.no_grad():
        if config.head_init == "lr":  # frozen MiniLM's logistic regression (the adapter's own base), normalised vectors
            weights, bias = Detector(l2=HEAD_L2, adapter=None, encoder=MiniLMEncoder()).head()
            model.head.weight.copy_(torch.tensor(weights, dtype=torch.float32)[None])
            model.head.bias.fill_(float(bias))
        else:
            torch.nn.init.zeros_(model.head.weight)
            torch.nn.init.zeros_(model.head.bias)
    enc = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    labels, weight = torch.tensor(y, dtype=torch.float32), torch.tensor(w * len(y), dtype=torch.float32)  # mean weight 1
    steps = config.epochs * ((len(texts) + BATCH - 1) // BATCH)
    optimiser = torch.optim.AdamW(
        [
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": config.lr},
            {"params": model.head.parameters(), "lr": config.head_lr},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    warm = max(1, int(WARMUP * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    order_rng = torch.Generator().manual_seed(config.seed)
    model.train()
    start, losses = time.perf_counter(), []
    for epoch in range(config.epochs):
        order, total = torch.randperm(len(texts), generator=order_rng), 0.0
        for i in range(0, len(texts), BATCH):
            idx = order[i : i + BATCH]
            mask = enc["attention_mask"][idx]
            length = int(mask.sum(1).max())  # trim the batch's padding
            logits = model(enc["input_ids"][idx][:, :length], mask[:, :length])
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels[idx], reduction="none")
            loss = (bce * weight[idx]).sum() / len(idx)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss) * len(idx)
        losses.append(total / len(texts))
        if on_epoch is not None:
            on_epoch(epoch + 1, config.epochs, losses[-1], time.perf_counter() - start)
    model.eval()
    return TrainedDetector(config, model, tokenizer, time.perf_counter() - start, losses)


def export_detector(trained: TrainedDetector, path: Path) -> Path:
    """The LoRA pairs (named by the base model's module) and the head, as AdaptedMiniLMEncoder reads
    them; the metadata holds the LoRA scale, the run, its config and the training data's hash."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save

    encoder = trained.model.encoder
    tensors = {}
    for key, value in get_peft_model_state_dict(encoder).items():
        module, kind = key.removeprefix("base_model.model.").rsplit(".lora_", 1)
        tensors[f"{module}.lora_{kind.split('.')[0]}"] = value.detach().contiguous()
    tensors["head.weight"] = trained.model.head.weight.detach()[0].contiguous()
    tensors["head.bias"] = trained.model.head.bias.detach().contiguous()
    crossing, benign = training_statements()
    digest = hashlib.sha256(json.dumps([crossing, benign]).encode()).hexdigest()
    lora = encoder.peft_config["default"]
    meta = {
        "scale": str(lora.lora_alpha / lora.r),
        "run": trained.config.run_label(),
        "config": json.dumps(trained.config.training_config()),
        "training_statements_sha256": digest,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_sorted_header(save(tensors, metadata=meta)))
    return path


def _sorted_header(blob: bytes) -> bytes:
    """The same safetensors file with its JSON header in sorted order: safetensors writes the
    metadata in hash-map order, which changes from run to run, so equal weights would not give equal
    bytes (or hashes) without this."""
    size = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # the data stays 8-byte aligned, as safetensors writes it
    return len(header).to_bytes(8, "little") + header + blob[8 + size :]
