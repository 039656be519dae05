"""How a local model's prompts are grouped into padded batches.

Prompts are sorted by length, so a batch pads to a near neighbour rather than to the longest prompt
of the run, and then cut either into ``batch_size`` rows or, by default (``batch_size=0``), to a
token budget: a batch of short persona prompts holds many rows, one of long few-shot prompts few.
Every row's answer depends only on its own tokens (left padding, masked, positions from 0), so the
grouping changes numbers only in the last float bits.
"""

from __future__ import annotations

from collections.abc import Sequence

AUTO = 0  # batch_size meaning "by token budget"
#: Padded tokens per forward pass under ``AUTO``. The CPU's was chosen on global-32 dev prompts
#: (benchmarks/lm_throughput.py, docs/lm_throughput.md): SmolLM2 peaked at 8 rows of ~125 tokens and
#: fell past 16. The GPU's is not measured yet; a GPU gains from far larger batches.
TOKEN_BUDGET = {"cpu": 1024, "gpu": 65536}
MAX_ROWS = {"cpu": 32, "gpu": 256}


def plan_batches(lengths: Sequence[int], batch_size: int, device: str) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches, shortest prompts first."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0 (0 = automatic); got {batch_size}.")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if batch_size:
        return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    kind = "cpu" if device == "cpu" else "gpu"
    budget, rows = TOKEN_BUDGET[kind], MAX_ROWS[kind]
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending, so the newest prompt is the longest of its batch
        if current and (len(current) + 1 > rows or (len(current) + 1) * lengths[i] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
