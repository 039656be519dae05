"""ValueMulch's endpoint client against a bare ``openai``-client loop, both on llama.cpp's local server.

Run by hand:  python benchmarks/lm_endpoint_throughput.py [--prompts 64] [--concurrency 4] [--rounds 2] > out.md

It starts ``python -m llama_cpp.server`` over SmolLM2's GGUF on 127.0.0.1 (tests/llama_server.py),
then sends the same letter-logprob requests (``max_tokens=1``, ``temperature=0``, ``top_logprobs=20``)
the same number at a time two ways: ``OpenAIChatLM.letter_probs`` with an empty response cache, and
the official ``openai`` client in a ``ThreadPoolExecutor`` with the same parsing of top_logprobs. The
two alternate for ``--rounds`` rounds, each going first in turn, so a slow spell on a shared machine
hits both. Last, the first ValueMulch run is repeated against its now-full cache; the server's access
log shows the calls made.
It prints Markdown: prompts/s of each, their ratio, and the cached run's time as a share of the first.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))

from llama_server import MODEL_ALIAS, llama_server  # noqa: E402
from valuemulch.backbones import LETTERS, OpenAIChatLM, Prompt, ResponseCache  # noqa: E402
from valuemulch.backbones._causal_lm import TOP_LOGPROBS  # noqa: E402

TOPICS = ["a new library", "a bike lane", "a bigger park", "a farmers market", "more buses", "a swimming pool", "a tram line"]


def prompts(n: int) -> tuple[list[Prompt], list[int]]:
    """``n`` distinct survey questions with 2 or 4 options, in the ``lm`` policy's shape."""
    out, ks = [], []
    for i in range(n):
        options = ["Yes", "No"] if i % 2 else ["Strongly for", "Somewhat for", "Somewhat against", "Strongly against"]
        listed = "\n".join(f"{LETTERS[j]}. {o}" for j, o in enumerate(options))
        text = f"Question {i + 1}: should the town build {TOPICS[i % len(TOPICS)]}?\n{listed}\nAnswer with the letter only."
        out.append(Prompt((("system", "You answer survey questions."), ("user", text))))
        ks.append(len(options))
    return out, ks


def openai_loop(url: str, ps: list[Prompt], ks: list[int], concurrency: int) -> list[np.ndarray]:
    """The bare loop: one ``openai`` client, ``concurrency`` threads, the same requests and parsing."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=2, timeout=120)

    def one(i: int) -> np.ndarray:
        reply = client.chat.completions.create(
            model=MODEL_ALIAS,
            messages=ps[i].as_messages(),  # type: ignore[arg-type]
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=TOP_LOGPROBS,
        )
        mass = np.zeros(ks[i])
        content = reply.choices[0].logprobs.content if reply.choices[0].logprobs else None
        for entry in content[0].top_logprobs if content else []:
            token = entry.token.strip()
            if len(token) == 1 and token in LETTERS[: ks[i]]:
                mass[LETTERS.index(token)] += math.exp(entry.logprob)
        return mass

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        out = list(pool.map(one, range(len(ps))))
    client.close()
    return out


def valuemulch_run(url: str, ps: list[Prompt], ks: list[int], concurrency: int, cache: Path) -> tuple[list[np.ndarray], int]:
    """``OpenAIChatLM.letter_probs`` with a response cache; returns the answers and the cache misses."""
    store = ResponseCache(cache)
    lm = OpenAIChatLM(url, MODEL_ALIAS, concurrency=concurrency, cache=store)
    try:
        return lm.letter_probs(ps, ks), store.misses
    finally:
        lm.endpoint.close()
        store.close()


def _posts(log: Path) -> int:
    return sum("POST /v1/chat/completions" in line for line in log.read_text(errors="replace").splitlines())


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n-threads", type=int, default=2, help="llama.cpp's threads")
    args = parser.parse_args()
    ps, ks = prompts(args.prompts)
    work = Path(tempfile.mkdtemp(prefix="lm-endpoint-bench-"))
    log = work / "server.log"
    ours_s, theirs_s, diffs = [], [], []
    first: list[np.ndarray] = []
    with llama_server(log, n_threads=args.n_threads) as server:
        openai_loop(server.url, ps[:4], ks[:4], args.concurrency)  # warm-up: the first requests page the model in
        for r in range(args.rounds):
            for who in ("openai", "valuemulch") if r % 2 == 0 else ("valuemulch", "openai"):  # neither always goes first
                if who == "openai":
                    t, theirs = _timed(openai_loop, server.url, ps, ks, args.concurrency)
                    theirs_s.append(t)
                else:
                    t, (ours, misses) = _timed(valuemulch_run, server.url, ps, ks, args.concurrency, work / f"cache{r}.sqlite")
                    ours_s.append(t)
                    assert misses == len(ps), f"expected an empty cache, got {len(ps) - misses} hits"
            diffs.append(max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True)))
            first = first or ours
        before = _posts(log)
        cached_s, (again, misses) = _timed(valuemulch_run, server.url, ps, ks, args.concurrency, work / "cache0.sqlite")
        calls = _posts(log) - before
    assert all(np.array_equal(a, b) for a, b in zip(again, first, strict=True)), "the cache answered differently"
    ours_med, theirs_med = statistics.median(ours_s), statistics.median(theirs_s)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    print("## Endpoint client vs the openai client (llama.cpp server)\n")
    print(f"`python benchmarks/lm_endpoint_throughput.py --prompts {args.prompts} --concurrency {args.concurrency} "
          f"--rounds {args.rounds} --n-threads {args.n_threads}` at commit `{commit}`; {os.cpu_count()} cores "
          f"({platform.processor() or platform.machine()}), llama-cpp-python {version('llama-cpp-python')}, "
          f"openai {version('openai')}, httpx {version('httpx')}, SmolLM2-135M-Instruct Q4_1, one-token letter "
          f"requests with top_logprobs={TOP_LOGPROBS}, {args.concurrency} in flight.\n")  # fmt: skip
    print("| run | seconds per round | prompts/s (median) |")
    print("| --- | --- | --- |")
    print(f"| bare `openai` loop | {', '.join(f'{t:.2f}' for t in theirs_s)} | {len(ps) / theirs_med:.2f} |")
    print(f"| ValueMulch `OpenAIChatLM`, empty cache | {', '.join(f'{t:.2f}' for t in ours_s)} | {len(ps) / ours_med:.2f} |")
    print(f"| ValueMulch, the same prompts again (cache) | {cached_s:.3f} | {len(ps) / cached_s:.0f} |\n")
    print(f"- ValueMulch / openai throughput: **{theirs_med / ours_med:.3f}** (goal >= 0.9).")
    print(f"- Cached re-run: **{100 * cached_s / ours_s[0]:.2f}%** of the first run's time (goal < 5%), "
          f"{misses} cache misses, {calls} requests in the server's log.")  # fmt: skip
    print(f"- Largest difference between the two clients' letter probabilities: {max(diffs):.2e}.")


if __name__ == "__main__":
    main()
