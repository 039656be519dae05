"""Ray with 2 workers against 1 worker (and the local backend) over the same prompts (issue 17, point 7).

Run by hand:  python benchmarks/lm_ray.py [--prompts 64] [--repeats 3] > out.md

The prompts are the ``lm`` policy's own logprobs prompts for the test fixtures' OpinionQA items
(persona and unsteered, two option orders), so it needs no survey data. Each row times
``letter_probs`` over all of them, the best of ``--repeats`` runs after a warm-up. A pool's start-up
(starting the actors and loading one model in each) is timed apart, because a certification pays it
once per process. Ray runs as a local instance with one CPU per core. It prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from valuemulch.backbones import HFCausalLM, Prompt, RayCausalLM
from valuemulch.backbones._ray import import_ray
from valuemulch.data import read_opinionqa
from valuemulch.policies._lm._permute import option_orders
from valuemulch.policies._lm._prompts import build_prompt, option_letters

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "opinionqa"


def prompts(n: int) -> tuple[list[Prompt], list[int]]:
    out, ks = [], []
    for steering in ("persona", "none"):
        for item in read_opinionqa(FIXTURES):
            for order in option_orders(item.question.n_options, 2, fixed=[]):
                out.append(build_prompt(item.community, item.question, order, method="logprobs", steering=steering, shots=[]))
                ks.append(len(option_letters(item.question.n_options)))
    if len(out) < n:
        raise SystemExit(f"the fixtures give {len(out)} prompts; ask for --prompts {len(out)} or fewer")
    return out[:n], ks[:n]


def best_of(repeats: int, run: Callable[[], list[np.ndarray]]) -> tuple[float, list[np.ndarray]]:
    answers = run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        answers = run()
        times.append(time.perf_counter() - start)
    return min(times), answers


def max_diff(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def torch_threads() -> int:
    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    texts, ks = prompts(args.prompts)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    print(
        f"`python benchmarks/lm_ray.py --prompts {args.prompts} --repeats {args.repeats}` at {commit}, {os.cpu_count()} cores\n"
    )
    local = HFCausalLM.load("smollm2", "cpu")
    local_s, expected = best_of(args.repeats, lambda: local.letter_probs(texts, ks))
    print("| backend | start-up s | scoring s | prompts/s | vs 1 Ray worker | max abs diff vs local |")
    print("|---|---|---|---|---|---|")
    print(f"| local, {torch.get_num_threads()} torch threads | - | {local_s:.2f} | {len(texts) / local_s:.1f} | | 0 |")
    ray = import_ray()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    threads = ray.get(ray.remote(num_cpus=1)(torch_threads).remote())  # what Ray gives a 1-CPU actor
    first: float | None = None
    for workers in args.workers:
        start = time.perf_counter()
        with RayCausalLM("smollm2", "cpu", workers=workers) as pool:
            pool.ready()
            startup = time.perf_counter() - start
            seconds, answers = best_of(args.repeats, lambda p=pool: p.letter_probs(texts, ks))  # type: ignore[misc]
        first = first or seconds
        rate = len(texts) / seconds
        print(
            f"| ray, {workers} worker(s), {threads} torch thread(s) each | {startup:.1f} | {seconds:.2f} | {rate:.1f} "
            f"| {first / seconds:.2f}x | {max_diff(answers, expected):.1e} |"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
