"""Local batched scoring against a bare batched ``transformers`` loop over the same prompts (issue 17).

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/lm_throughput.py [--prompts 256] > out.md

The prompts are the ``lm`` policy's own: persona-steered logprobs prompts for the global-32 dev split,
one option order, the first ``--prompts`` items by the SHA-256 of (community, question). Each row
times `HFCausalLM.letter_probs` (rendering, tokenising, length-sorting, padding, the forward passes and
the letters' probabilities) and, at the same batch size, a bare loop: the same rendered texts cut in
their given order, tokenised with padding and run through the model, keeping the last position's
softmax. Both warm up first, and each is the best of ``--repeats`` runs. It prints Markdown.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from valuemulch.backbones import HFCausalLM, Prompt
from valuemulch.backbones._batching import AUTO
from valuemulch.data import load_testbed, resolve_data_root
from valuemulch.policies._lm._prompts import build_prompt, option_letters

BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def _prompts(data: Path | None, n: int) -> tuple[list[Prompt], list[int]]:
    items = load_testbed("global-32", resolve_data_root(data)).items("dev", "seen")
    chosen = sorted(items, key=lambda it: hashlib.sha256(f"{it.community}\0{it.question.id}".encode()).hexdigest())[:n]
    prompts = [
        build_prompt(it.community, it.question, list(range(it.question.n_options)), method="logprobs", steering="persona")
        for it in chosen
    ]
    return prompts, [len(option_letters(it.question.n_options)) for it in chosen]


def _bare_loop(lm: HFCausalLM, texts: list[str], batch_size: int) -> None:
    tok, model = lm.tokenizer, lm.model
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start : start + batch_size], padding=True, return_tensors="pt", add_special_tokens=False)
            torch.softmax(model(**batch).logits[:, -1, :].float(), dim=-1)


def _best(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: allocator, kernels, the tokenizer's caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default=",".join(map(str, BATCH_SIZES)), help="fixed batch sizes to time, comma-separated")
    args = parser.parse_args()
    prompts, ks = _prompts(args.data, args.prompts)
    lm = HFCausalLM.load("smollm2", "cpu")
    texts = [lm.render(p) for p in prompts]
    lengths = [len(ids) for ids in lm.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    print(
        f"{len(prompts)} persona logprobs prompts (global-32 dev, one order), {min(lengths)}-{max(lengths)} tokens "
        f"(mean {sum(lengths) / len(lengths):.0f}); SmolLM2-135M-Instruct fp32 on CPU, {torch.get_num_threads()} torch threads.\n"
    )
    print("| batch size | ValueMulch prompts/s | bare loop prompts/s | ratio |\n|---|---|---|---|")
    bare_best = 0.0
    for size in [int(x) for x in args.sizes.split(",") if x]:
        lm.batch_size = size
        ours = len(prompts) / _best(lambda: lm.letter_probs(prompts, ks), args.repeats)
        bare = len(prompts) / _best(partial(_bare_loop, lm, texts, size), args.repeats)
        bare_best = max(bare_best, bare)
        print(f"| {size} | {ours:.1f} | {bare:.1f} | {ours / bare:.2f} |", flush=True)
    lm.batch_size = AUTO
    auto = len(prompts) / _best(lambda: lm.letter_probs(prompts, ks), args.repeats)
    print(f"| automatic (token budget) | {auto:.1f} | best above: {bare_best:.1f} | {auto / bare_best:.2f} |")


if __name__ == "__main__":
    main()
