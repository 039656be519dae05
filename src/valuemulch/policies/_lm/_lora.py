"""LoRA distributional fine-tuning: teach the LM's option-letter distribution to match a community's.

The loss is KL(community || LM) over the shown letters, the forward KL, which punishes the model for
missing an option people chose (mode collapse) more than for spreading mass. Training runs on a copy
of the process-wide base model, so other policies and the encoder keep the untouched weights.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from valuemulch.backbones import HFCausalLM, Prompt
from valuemulch.policies._base import Progress


@dataclass(frozen=True)
class Example:
    """A prompt and the distribution its shown letters should get."""

    prompt: Prompt
    target: np.ndarray


def new_adapter(lm: HFCausalLM, *, rank: int, seed: int) -> HFCausalLM:
    """A copy of ``lm`` with a fresh LoRA adapter on every linear layer (seeded initialisation)."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    # peft initialises the adapter from torch's global generator of the model's device and takes no
    # generator: fork_rng lends it one seeded with ``seed`` (only that device's, as torch.manual_seed
    # would seed it) and puts the caller's state back afterwards.
    cuda = [lm.device] if lm.device.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for device in cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        model = get_peft_model(copy.deepcopy(lm.model), config)
    model.eval()
    return HFCausalLM(model, lm.tokenizer, lm.device, lm.id, batch_size=lm.batch_size)


def load_adapter(lm: HFCausalLM, directory: str) -> HFCausalLM:
    """A copy of ``lm`` with the adapter that ``save_pretrained`` wrote to ``directory``."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(copy.deepcopy(lm.model), directory, is_trainable=False)
    model.eval()
    return HFCausalLM(model, lm.tokenizer, lm.device, lm.id, batch_size=lm.batch_size)


def _kl(lm: HFCausalLM, batch: Sequence[Example]) -> Any:
    """Mean KL(target || model) over a batch, differentiable."""
    import torch

    log_q = lm.letter_log_probs([e.prompt for e in batch], [len(e.target) for e in batch])
    target = torch.zeros_like(log_q)
    for row, example in enumerate(batch):
        target[row, : len(example.target)] = torch.as_tensor(example.target, dtype=log_q.dtype)
    safe_q = torch.where(target > 0, log_q, torch.zeros_like(log_q))  # 0 * log 0 = 0, and -inf letters stay out
    terms = torch.where(target > 0, target * (torch.log(target.clamp(min=1e-12)) - safe_q), torch.zeros_like(log_q))
    return terms.sum(dim=-1).mean()


def batch_loss(lm: HFCausalLM, batch: Sequence[Example]) -> float:
    """The training loss on ``batch``, without gradients (for checks and reports)."""
    import torch

    with torch.no_grad():
        return float(_kl(lm, batch))


def train_lora(
    lm: HFCausalLM,
    examples: Sequence[Example],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: Progress | None = None,
) -> list[float]:
    """Run ``steps`` AdamW steps on random batches of ``examples``; return the loss of each step.

    ``lm`` must carry an adapter (`new_adapter`); only the adapter's weights are trainable.
    """
    import torch

    rng = np.random.default_rng(seed)
    params = [p for p in lm.model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    lm.model.train()
    try:
        for _ in range(steps):
            chosen = rng.choice(len(examples), size=min(batch_size, len(examples)), replace=False)
            loss = _kl(lm, [examples[i] for i in chosen])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            if progress is not None:
                progress(len(losses), steps)
    finally:
        lm.model.eval()
    return losses
