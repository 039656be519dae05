"""The lm policy with SmolLM2-135M-Instruct on a small, fixed slice of the us-32 test split.

Run by hand:  VALUEMULCH_DATA=../shared/data python benchmarks/lm_smollm2.py [--questions 40] [--lora-steps 60] > out.md
It prints Markdown: seconds per item and 1 - JSD (with a question-bootstrap CI) for each extraction
method, with and without option-order permutations, persona against no steering and against
few-shot steering (the community's own answers on the 5 most similar train questions), and a LoRA
fine-tune on a small slice of the train split, beside the uniform and option-text-prior baselines on
the same items. The slice: the first ``--questions`` test questions (ordered by the SHA-256 of their
id) that all of the four communities below answered. Small on purpose: it must run on a laptop CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import torch

from valuemulch.backbones import HFCausalLM
from valuemulch.certify import score_policy, summarise_scores
from valuemulch.data import load_testbed, resolve_data_root
from valuemulch.policies import LMPolicy, Policy, build
from valuemulch.types import Norms

COMMUNITIES = ["POLPARTY:Democrat", "POLPARTY:Republican", "AGE:65+", "CREGION:South"]


def _slice(norms: Norms, n_questions: int) -> Norms:
    mine = norms.filter(communities=COMMUNITIES)
    by_q = mine.by_question()
    full = [q for q, items in by_q.items() if len(items) == len(COMMUNITIES)]
    chosen = sorted(full, key=lambda q: hashlib.sha256(q.encode()).hexdigest())[:n_questions]
    return mine.filter(question_ids=chosen)


def _row(label: str, policy: Policy, test: Norms, fit_s: float, n_boot: int) -> str:
    start = time.perf_counter()
    scores = score_policy(policy, test)
    per_item = (time.perf_counter() - start) / max(len(scores.keys), 1)
    summary = summarise_scores(scores, n_boot=n_boot)
    jsd, tv = summary["one_minus_jsd"], summary["tv"]
    unread = f"{policy.parse_fallbacks_} / {policy.unparsed_samples_}" if isinstance(policy, LMPolicy) else "-"
    return (
        f"| {label} | {len(scores.keys)} | {per_item:.3f} | {fit_s:.0f} | {jsd.mean:.3f} [{jsd.ci[0]:.3f}, {jsd.ci[1]:.3f}] | "
        f"{tv.mean:.3f} | {unread} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--lora-steps", type=int, default=60)
    parser.add_argument("--lora-items", type=int, default=256, help="train items the LoRA run samples from")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--steering-only", action="store_true", help="only the rows that compare persona with few-shot steering (issue 15)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tb = load_testbed("us-32", resolve_data_root(args.data))
    test = _slice(tb.items("test", "seen"), args.questions)
    train = tb.items("train", "seen").filter(communities=COMMUNITIES)
    print(
        f"us-32 test split, {len(test.questions)} questions x {len(COMMUNITIES)} communities ({', '.join(COMMUNITIES)}) = "
        f"{len(test)} items; refusal options kept; SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to fp32) on "
        f"{'CUDA' if torch.cuda.is_available() else 'CPU'} with {torch.get_num_threads()} torch threads.\n"
    )
    logging.getLogger("valuemulch").setLevel(logging.ERROR)  # unreadable replies are counted in the table instead
    load_start = time.perf_counter()
    HFCausalLM.load("smollm2")
    print(f"Model load: {time.perf_counter() - load_start:.1f} s (once per process; not in the rows below).\n")
    print(
        "| policy | items | s / item | fit s | 1-JSD [95% CI] | TV | unreadable replies / unparsed samples |\n"
        "|---|---|---|---|---|---|---|"
    )
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("uniform", "uniform", {}),
        ("option-text-prior (train split)", "option-text-prior", {}),
        ("lm logprobs, persona, 1 order", "lm", {"permutations": 1}),
        ("lm logprobs, persona, 2 orders", "lm", {"permutations": 2}),
        ("lm logprobs, no steering, 2 orders", "lm", {"permutations": 2, "steering": "none"}),
        ("lm logprobs, persona, 4 orders", "lm", {"permutations": 4}),
        ("lm verbalized, persona, 1 order", "lm", {"method": "verbalized", "permutations": 1, "on_parse_error": "uniform"}),
        ("lm sampled (n=20), persona, 1 order", "lm", {"method": "sampled", "permutations": 1, "on_parse_error": "uniform"}),
        (
            f"lm logprobs + LoRA ({args.lora_steps} steps, {args.lora_items} train items), persona, 2 orders",
            "lm",
            {"permutations": 2, "lora_steps": args.lora_steps, "lora_max_items": args.lora_items},
        ),
    ]
    steering_rows: list[tuple[str, str, dict[str, Any]]] = [
        ("lm logprobs, few-shot (5 shots), 2 orders", "lm", {"permutations": 2, "steering": "few-shot", "shots": 5}),
        (
            "lm verbalized, few-shot (5 shots), 1 order",
            "lm",
            {"method": "verbalized", "permutations": 1, "steering": "few-shot", "shots": 5, "on_parse_error": "uniform"},
        ),
    ]
    if args.steering_only:
        runs = [r for r in runs if r[0] in ("lm logprobs, persona, 2 orders", "lm verbalized, persona, 1 order")]
    runs += steering_rows
    start = time.perf_counter()
    for label, name, params in runs:
        fit_start = time.perf_counter()
        policy = build(name, **params).fit(train)
        print(_row(label, policy, test, time.perf_counter() - fit_start, args.n_boot), flush=True)
        if isinstance(policy, LMPolicy) and policy.lora_losses_:
            losses = policy.lora_losses_
            head, tail = sum(losses[:10]) / len(losses[:10]), sum(losses[-10:]) / len(losses[-10:])
            print(f"|  (LoRA train loss, mean of first / last 10 steps: {head:.3f} / {tail:.3f}) | | | | | | |")
    print(f"\n(benchmark wall time {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
