"""A local causal LM fanned out over Ray actors: one loaded model per actor, prompts split among them.

When one process is not enough (many communities x models x option orders), ``backend="ray"``
starts ``workers`` actors, each holding its own `HFCausalLM`, and gives each a contiguous shard of
the prompts. The answers come back in the prompts' order, so everything above the backbone (the
evaluation log, the request keys, the parsing) sees exactly what the local backend gives. Each
actor asks Ray for a GPU when the cluster has one, else for one CPU.

Ray is optional (``pip install 'valuemulch[ray]'``). Without a running cluster (``RAY_ADDRESS`` or
an earlier ``ray.init``), a local one is started with no dashboard and no usage statistics (nothing
is sent over the network), and shut down with the pools at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from valuemulch.backbones._batching import AUTO
from valuemulch.backbones._causal_lm import HFCausalLM, Prompt, model_id
from valuemulch.backbones._progress import prompt_progress
from valuemulch.errors import ConfigError

INSTALL_HINT = "pip install 'valuemulch[ray]'"
BACKENDS = ("local", "ray")


def import_ray() -> Any:
    """The ``ray`` module, with usage statistics off; a ConfigError saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray would otherwise report usage over the network
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"backend='ray' needs Ray, which is not installed; run {INSTALL_HINT} (or use backend='local')."
        ) from None
    return ray


class _Scorer:
    """The actor: one model, loaded once, answering shards of prompts (run by Ray in its own process)."""

    def __init__(self, spec: str, device: str, batch_size: int) -> None:
        self.lm = HFCausalLM.load(spec, device, batch_size=batch_size)

    def ready(self) -> int:
        return os.getpid()

    def letter_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> list[np.ndarray]:
        return self.lm.letter_probs(prompts, n_letters)

    def generate(self, prompts: Sequence[Prompt], kwargs: dict[str, Any]) -> list[list[str]]:
        return self.lm.generate(prompts, **kwargs)


def shards(n: int, parts: int) -> list[range]:
    """``range(n)`` cut into at most ``parts`` contiguous, non-empty pieces whose sizes differ by at most one."""
    parts = max(1, min(parts, n))
    size, extra = divmod(n, parts)
    out, start = [], 0
    for k in range(parts):
        stop = start + size + (k < extra)
        out.append(range(start, stop))
        start = stop
    return [r for r in out if len(r)]


def actor_options(device: str, cluster_gpus: float) -> tuple[dict[str, Any], str]:
    """Ray resources for one actor, and the device its model goes on: a GPU each when the cluster has
    them (unless ``device='cpu'``), else one CPU each (so N actors run side by side on N cores)."""
    if device != "cpu" and cluster_gpus >= 1:
        return {"num_gpus": 1, "num_cpus": 1}, "cuda"  # Ray sets CUDA_VISIBLE_DEVICES: the actor's GPU is cuda:0
    if device.startswith("cuda"):
        raise ConfigError(f"device '{device}' was requested but the Ray cluster has no GPU; use device='auto' or 'cpu'.")
    return {"num_cpus": 1}, "cpu"


class RayCausalLM:
    """`workers` Ray actors, each with its own copy of a local model, as one `CausalLM`."""

    def __init__(self, spec: str, device: str = "auto", *, workers: int = 2, batch_size: int = AUTO) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1 Ray actors; got {workers}.")
        ray = import_ray()
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            # RAY_ADDRESS joins a cluster; else a local instance with a CPU per worker at least
            ray.init(
                num_cpus=None if os.environ.get("RAY_ADDRESS") else max(workers, os.cpu_count() or 1),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        options, self.device = actor_options(device, float(ray.cluster_resources().get("GPU", 0)))
        self.id = model_id(spec)
        self.workers = workers
        actor = ray.remote(_Scorer).options(**options)
        self._actors = [actor.remote(spec, self.device, batch_size) for _ in range(workers)]
        self._ray = ray

    def ready(self) -> list[int]:
        """Wait until every actor has loaded its model (the first call waits anyway; benchmarks time it
        apart); the actors' process ids."""
        return [int(pid) for pid in self._ray.get([a.ready.remote() for a in self._actors])]

    def _fan_out(self, n: int, call: Callable[[Any, range], Any]) -> list[Any]:
        """``call(actor, shard)`` for each contiguous shard of ``n`` prompts, in parallel; the shards'
        answers concatenated in order, the progress told as each shard finishes."""
        report = prompt_progress()
        report.planned(n)
        parts = shards(n, len(self._actors))
        pending = {call(actor, part): k for k, (actor, part) in enumerate(zip(self._actors, parts, strict=False))}
        results: list[Any] = [None] * len(parts)
        while pending:
            finished, _ = self._ray.wait(list(pending), num_returns=1)
            for ref in finished:
                k = pending.pop(ref)
                results[k] = self._ray.get(ref)
                report.done(len(parts[k]), False)
        return [row for part in results for row in part]

    def letter_probs(self, prompts: Sequence[Prompt], n_letters: Sequence[int]) -> list[np.ndarray]:
        prompts, ks = list(prompts), list(n_letters)
        return self._fan_out(len(prompts), lambda a, r: a.letter_probs.remote(prompts[r.start : r.stop], ks[r.start : r.stop]))

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        n: int,
        temperature: float,
        max_new_tokens: int,
        seeds: Sequence[int],
        stop: Sequence[str] = (),
    ) -> list[list[str]]:
        """Each reply depends only on its prompt and seed (`HFCausalLM._decode`), so sharding changes none."""
        prompts, seeds = list(prompts), list(seeds)
        if len(seeds) != len(prompts):
            raise ValueError(f"generate needs one seed per prompt; got {len(seeds)} seeds for {len(prompts)} prompts.")

        def call(actor: Any, r: range) -> Any:
            kwargs = {"n": n, "temperature": temperature, "max_new_tokens": max_new_tokens, "seeds": seeds[r.start : r.stop]}
            return actor.generate.remote(prompts[r.start : r.stop], {**kwargs, "stop": list(stop)})

        return self._fan_out(len(prompts), call)

    def close(self) -> None:
        """Stop the actors (their processes exit), and the local Ray instance if this pool started it."""
        actors, self._actors = self._actors, []
        if not self._ray.is_initialized():
            return
        for actor in actors:
            self._ray.kill(actor)
        if self.started_ray:
            self._ray.shutdown()

    def __enter__(self) -> RayCausalLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_pools: dict[tuple[str, str, int, int], RayCausalLM] = {}
_lock = threading.Lock()


def ray_causal_lm(spec: str, device: str = "auto", *, workers: int, batch_size: int = AUTO) -> RayCausalLM:
    """One pool per (model, device, workers, batch size) and process, like `load_causal_lm`: a
    certification refits its policy many times, and each actor's model takes seconds to load."""
    key = (spec, device, workers, batch_size)
    with _lock:
        pool = _pools.get(key)
        if pool is None or not pool._actors or not pool._ray.is_initialized():
            pool = _pools[key] = RayCausalLM(spec, device, workers=workers, batch_size=batch_size)
        return pool


@atexit.register
def close_pools() -> None:
    """Stop every pool's actors (and a Ray instance a pool started); runs at exit."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()
