"""No regular expression a request runs through can backtrack super-linearly.

A request's texts meet the chat parser's patterns, `Question`'s refusal pattern and the tier-1
patterns (catalogue, act cues, the detector's own). Each is run here on adversarial texts of about
100,000 characters: linear matching takes milliseconds, quadratic matching seconds to minutes (at
ed425b9, in-process: the chat parser took 7.7 s on a 40,000-space option line, the refusal pattern
0.95 s on 20,000 spaces; the issue measured 22.8 s for that chat request over HTTP).
"""

from __future__ import annotations

import itertools
import re
import time
from types import ModuleType

import pytest

from valuemulch import types
from valuemulch.bounds import _catalogue, _detect
from valuemulch.serve import _chat

N_CHARS = 100_000
BUDGET_S = 1.0  # per pattern and text; linear patterns need a few ms


def _module_patterns(*modules: ModuleType) -> dict[str, re.Pattern[str]]:
    return {f"{m.__name__}.{k}": v for m in modules for k, v in vars(m).items() if isinstance(v, re.Pattern)}


def _request_patterns() -> dict[str, re.Pattern[str]]:
    found = _module_patterns(types, _detect, _chat)
    for line in _catalogue.catalogue():
        found.update({f"redline {line.id}[{i}]": p for i, p in enumerate(line.patterns)})
    found["act_cues"] = _catalogue.semantic_settings()["act_cues"]
    return found


PATTERNS = _request_patterns()
LEADS, REPEATS, ENDS = (
    ("", "refused", "A.", "should they be"),
    (" ", "\t", "kill ", "them ", "aa", "dispose of "),
    ("x", "people "),
)


def test_the_known_request_patterns_are_all_here() -> None:
    assert {"valuemulch.types.REFUSAL_PATTERN", "valuemulch.serve._chat._OPTION_PREFIX"} <= set(PATTERNS)
    assert sum(name.startswith("redline ") for name in PATTERNS) > 10


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_is_linear_on_adversarial_text(name: str) -> None:
    pattern = PATTERNS[name]
    for lead, repeat, end in itertools.product(LEADS, REPEATS, ENDS):
        text = lead + repeat * (N_CHARS // len(repeat)) + end
        started = time.perf_counter()
        pattern.match(text)
        pattern.search(text)
        assert time.perf_counter() - started < BUDGET_S, f"{name} on {lead!r} + {repeat!r} * n + {end!r}"
