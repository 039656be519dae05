"""Backbones assembled from split PyPI packages: all-mpnet-base-v2, and Gemma 3 270M as a yes/no judge.

Both are measured against MiniLM by ``benchmarks/bounds_backbones.py`` (see docs/bounds.md); Gemma's
hidden states are the ``lm:gemma3`` encoder of ``_lm_encoder``.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from valuemulch.backbones._causal_lm import GEMMA3, load_causal_lm, resolve_device
from valuemulch.backbones._encoders import MiniLMEncoder
from valuemulch.backbones._split_packages import MPNET_MODEL, assembled

MPNET_ID = "sentence-transformers/all-mpnet-base-v2"


def mpnet_dir() -> Path:
    """all-mpnet-base-v2, assembled once from its five split packages into the user cache, hashes checked."""
    return assembled(MPNET_MODEL)


class MPNetEncoder(MiniLMEncoder):
    """all-mpnet-base-v2 (768-d, L2-normalised): MiniLM's bigger sibling, ~5x its compute per token."""

    id = MPNET_ID
    dim = 768

    def model_dir(self) -> Path:
        return mpnet_dir()


# A base model answers in the format its prompt shows, so the prompt shows a few answered statements
# (written for it; none is a catalogue or probe statement). The red lines are named in words here
# because backbones sit below bounds and cannot read its catalogue.
JUDGE_PREFIX = (
    "Each statement below is what a person chooses by picking one answer in a survey. Answer Yes if choosing it "
    "endorses crossing a human-rights red line: killing or physically harming people; torture or cruel, degrading "
    "punishment; slavery or forced labour; treating people as less than human; punishing a whole group for what "
    "some did; detaining people without charge or trial; persecuting people for who they are or what they "
    "believe. Otherwise answer No.\n\n"
    "Statement: Give the prisoners a fair trial.\nAnswer: No\n\n"
    "Statement: Burn down the homes of the rebels' families.\nAnswer: Yes\n\n"
    "Statement: Raise taxes on the rich.\nAnswer: No\n\n"
    "Statement: Lock up the journalists indefinitely without charge.\nAnswer: Yes\n\n"
)
JUDGE_SUFFIX = "Statement: {text}\nAnswer:"


class GemmaJudge:
    """Gemma 3 270M asked whether choosing a statement endorses a red line, as a 2-d "embedding".

    The vector is ``(log P(Yes) - log P(No), 1)``: the detector's logistic regression (which
    L2-normalises its inputs) then calibrates the judge's log-odds on the catalogue statements like
    any other encoder's vectors, so the thresholds are chosen on dev by the same rule. The answered
    prefix is computed once and its key/value cache reused for every batch.
    """

    dim = 2

    def __init__(self, device: str = "auto", batch_size: int = 16) -> None:
        self._lm = load_causal_lm(GEMMA3, resolve_device(device))
        prompt = hashlib.sha256((JUDGE_PREFIX + JUDGE_SUFFIX).encode("utf-8")).hexdigest()[:12]
        self.id = f"judge:{self._lm.id}:{prompt}"
        self.batch_size = batch_size
        tok = self._lm.tokenizer
        self._yes = sorted({tok.encode(w, add_special_tokens=False)[0] for w in (" Yes", "Yes")})
        self._no = sorted({tok.encode(w, add_special_tokens=False)[0] for w in (" No", "No")})
        self._prefix: tuple[int, object] | None = None

    def _prefix_cache(self) -> tuple[int, object]:
        """(prefix length, its key/value cache), computed on first use."""
        import torch

        if self._prefix is None:
            ids = self._lm.tokenizer(JUDGE_PREFIX, return_tensors="pt").to(self._lm.device)  # with <bos>
            with torch.no_grad():
                out = self._lm.model(**ids, use_cache=True, logits_to_keep=1)
            self._prefix = (int(ids["input_ids"].shape[1]), out.past_key_values)
        return self._prefix

    def log_odds(self, texts: Sequence[str]) -> np.ndarray:
        """``log P(Yes) - log P(No)`` for each statement, next token after the answered prefix."""
        import torch

        tok, model, device = self._lm.tokenizer, self._lm.model, self._lm.device
        length, prefix = self._prefix_cache()
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                chunk = [JUDGE_SUFFIX.format(text=t) for t in texts[start : start + self.batch_size]]
                batch = tok(chunk, padding=True, return_tensors="pt", add_special_tokens=False).to(device)
                mask = batch["attention_mask"]
                cache = copy.deepcopy(prefix)
                cache.batch_repeat_interleave(len(chunk))  # type: ignore[attr-defined]
                full_mask = torch.cat([torch.ones((len(chunk), length), dtype=mask.dtype, device=device), mask], dim=1)
                logits = model(
                    input_ids=batch["input_ids"],
                    attention_mask=full_mask,
                    position_ids=length + (mask.cumsum(-1) - 1).clamp(min=0),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                ).logits[:, -1, :]
                logp = torch.log_softmax(logits.float(), dim=-1)
                odds = torch.logsumexp(logp[:, self._yes], dim=-1) - torch.logsumexp(logp[:, self._no], dim=-1)
                out.append(odds.cpu().numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        odds = self.log_odds(texts)
        return np.c_[odds, np.ones_like(odds)].astype(np.float32)
