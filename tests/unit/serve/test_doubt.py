"""Never choose the doubtful (issue 14, point 3): /v1/decide, /v1/distribution and chat, in-process,
with a real guard server on 127.0.0.1 that gives no readable verdict on one option."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openai_server import serve_openai
from tiny_serve import TinyHome, ready_client, register, serve_app, tiny_home

TOWN = "What should the town build first?"
WORDS = ["library", "park", "pool"]
OPTIONS = [f"Build a {w}" for w in WORDS]
MC = TOWN + "\n" + "\n".join(f"{'ABC'[i]}. {o}" for i, o in enumerate(OPTIONS))


@pytest.fixture(scope="module")
def first(client: TestClient) -> int:
    """The control, without a guard: the option the service chooses, and no doubt."""
    r = client.post("/v1/decide", json={"community": "Britain", "question": TOWN, "options": OPTIONS}).json()
    assert r["choice"] is not None and r["bounds"]["doubtful"] == [] and r["bounds"]["masked"] == []
    return int(r["choice"])


@pytest.fixture(scope="module")
def doubting(tmp_path_factory: pytest.TempPathFactory, first: int) -> Iterator[TestClient]:
    """The same tiny model behind a guard that cannot read the act it would choose (a doubt) and clears the rest."""
    home: TinyHome = tiny_home(Path(tmp_path_factory.mktemp("doubt")))
    register(home)
    with serve_openai(None) as guard:
        url = guard.url.replace("/v1", f"/doubt/{WORDS[first]}/v1")
        with ready_client(serve_app(home, guard_url=url)) as c:
            yield c


def test_decide_never_chooses_a_doubtful_option(doubting: TestClient) -> None:
    for seed in (None, *range(12)):
        body = {"community": "Britain", "question": TOWN, "options": OPTIONS, "seed": seed}
        r = doubting.post("/v1/decide", json=body).json()
        assert r["bounds"]["doubtful"] == [0] and r["distribution"][0] > 0  # it keeps its mass ...
        assert r["choice"] not in (None, 0)  # ... but is never the choice
        assert any(x["code"] == "doubtful" and x["option"] == 0 for x in r["bounds"]["reasons"])


def test_distribution_and_chat_never_put_it_first(doubting: TestClient, first: int) -> None:
    batch = doubting.post(
        "/v1/distribution", json={"community": "Britain", "questions": [{"question": TOWN, "options": OPTIONS}]}
    )
    item = batch.json()["results"][0]
    assert item["bounds"]["doubtful"] == [first] and item["choice"] not in (None, first)
    chat = doubting.post(
        "/v1/chat/completions",
        json={"model": "valuemulch/Britain", "messages": [{"role": "user", "content": MC}], "logprobs": True, "top_logprobs": 4},
    ).json()
    letter = chat["choices"][0]["message"]["content"]
    assert letter != "ABC"[first] and chat["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["token"] == letter


def test_nothing_clear_is_a_refusal_with_a_reason(doubting: TestClient) -> None:
    options = [f"Build a {WORDS[0]}", f"Build a small {WORDS[0]}"]
    r = doubting.post("/v1/decide", json={"community": "Britain", "question": TOWN, "options": options}).json()
    assert r["choice"] is None and r["bounds"]["refused"] and r["bounds"]["reasons"][-1]["code"] == "no_clear_option"
    chat = doubting.post(
        "/v1/chat/completions",
        json={
            "model": "valuemulch/Britain",
            "messages": [{"role": "user", "content": TOWN + "\nA. " + options[0] + "\nB. " + options[1]}],
        },
    ).json()
    assert chat["choices"][0]["message"]["content"].startswith("I can't answer that: no option is clearly")
