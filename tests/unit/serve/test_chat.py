"""The chat parser reads the same questions as before, in time linear in the message.

Before, the option-line pattern ``(.+?)\\s*$`` backtracked quadratically: one unauthenticated request
whose option line was ``"A. x" + " " * 40000 + "y"`` took 22.8 s and held up every other request.
"""

from __future__ import annotations

import random
import re
import time

import pytest
from fastapi.testclient import TestClient

from valuemulch.serve._chat import _option, parse_multiple_choice
from valuemulch.serve._middleware import ServiceError
from valuemulch.settings import Limits

OLD_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[\.\):]\s+(.+?)\s*$")  # the old pattern: what an option line is


def test_option_lines_are_read_as_the_old_pattern_read_them() -> None:
    rng = random.Random(0)
    alphabet = [" ", "\t", "\xa0", "\u2003", "\x1f", "A", "B", "a", "(", ")", ".", ":", "x"]
    for _ in range(50_000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        m = OLD_OPTION_LINE.match(line)
        assert _option(line) == ((m.group(1), m.group(2)) if m else None), repr(line)


def test_parsing_is_linear_in_the_line_length() -> None:
    limits, spaces = Limits(max_chat_chars=10**7), " " * 1_000_000
    started = time.perf_counter()
    assert parse_multiple_choice(f"Q?\nA. x{spaces}y\nB. z", limits) == ("Q?", [f"x{spaces}y", "z"])
    assert parse_multiple_choice(f"Q?\nA.{spaces}\nB. z", limits) == ("Q?", [" ", "z"])  # as before: blank, refused later
    with pytest.raises(ServiceError, match="no options"):
        parse_multiple_choice(f"Q?\n{spaces}A\nB. z", limits)
    assert time.perf_counter() - started < 2.0  # the old pattern needed hours for the first line alone


def test_the_quadratic_request_is_answered_at_once(client: TestClient) -> None:
    text = "Is it good?\nA. x" + " " * 40_000 + "y\nB. no"
    started = time.perf_counter()
    r = client.post("/v1/chat/completions", json={"model": "valuemulch/Britain", "messages": [{"role": "user", "content": text}]})
    assert time.perf_counter() - started < 2.0
    assert r.status_code == 422 and r.json()["error"]["field"] == "messages", r.text
    assert client.get("/v1/health").status_code == 200


def test_a_long_option_line_under_the_message_limit_is_quick_too(client: TestClient) -> None:
    text = "Is it good?\nA. x" + " " * 20_000 + "y\nB. no"
    started = time.perf_counter()
    r = client.post("/v1/chat/completions", json={"model": "valuemulch/Britain", "messages": [{"role": "user", "content": text}]})
    assert time.perf_counter() - started < 2.0
    assert r.status_code == 422 and "at most 500" in r.json()["error"]["message"], r.text


def test_the_message_limit_comes_from_settings() -> None:
    message = "Q?\nA. yes\nB. no"
    assert parse_multiple_choice(message, Limits(max_chat_chars=len(message))) == ("Q?", ["yes", "no"])
    with pytest.raises(ServiceError, match=f"at most {len(message) - 1}") as info:
        parse_multiple_choice(message, Limits(max_chat_chars=len(message) - 1))
    assert (info.value.status, info.value.field) == (422, "messages")
