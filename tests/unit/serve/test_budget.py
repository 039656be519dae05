"""Issue 16, point 2 and 6: what one request and one client may cost, and a service that says when it
is ready. A real tiny deployment in-process (`tiny_serve`); the over-deadline case runs the real
tier-1 detector on long, new option texts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tiny_serve import TinyHome, ready_client, register, serve_app, tiny_home


def _home(tmp_path: Path) -> TinyHome:
    home = tiny_home(tmp_path)
    register(home)
    return home


def _records(client: TestClient) -> int:
    return int(client.get("/v1/health").json()["audit_records"])


def _batch(prefix: str, n: int, *, options: int = 3, chars: int = 40, long_options: bool = False) -> dict[str, Any]:
    """``long_options`` makes every option text new and a few hundred characters long, so each question costs
    the detector real work on any machine (short shared options are embedded once and then cached)."""
    pad = "x" * max(0, chars - 40)

    def option(k: int, j: int) -> str:
        return f"Option {j} of {prefix} {k}: open the library on Sundays {j} times a year. {pad[:200]}" if long_options else f"Option {j}"

    return {
        "community": "Britain",
        "questions": [
            {"question": f"{prefix} {k}: should the library open on Sundays? {pad}", "options": [option(k, j) for j in range(options)]}
            for k in range(n)
        ],
    }


def _error(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code, r.text
    return error


def test_text_and_new_question_caps_refuse_before_any_work_and_log_nothing(tmp_path: Path) -> None:
    with ready_client(serve_app(_home(tmp_path), max_total_chars=2_000, max_new_questions=2)) as c:
        before = _records(c)
        msg = _error(c.post("/v1/distribution", json=_batch("Long", 4, chars=600)), 413, "over_budget")["message"]
        assert "2000" in msg and "Split" in msg
        msg = _error(c.post("/v1/distribution", json=_batch("New", 3)), 413, "over_budget")["message"]
        assert "3 questions" in msg and "2 new" in msg
        assert _records(c) == before  # nothing was answered, so nothing is logged
        assert c.post("/v1/distribution", json=_batch("New", 2)).status_code == 200  # two new: within the cap
        assert c.post("/v1/distribution", json=_batch("New", 3)).status_code == 200  # now only one is new
        assert _records(c) == before + 5


def test_work_past_the_deadline_stops_with_503_and_is_not_logged(tmp_path: Path) -> None:
    """The issue's request: many long, new questions with 26 options each. With a 1 s deadline the
    answer is a 503 with Retry-After soon after the deadline (the check runs between questions), not
    minutes of work, and the log holds none of it."""
    deadline = 1.0
    with ready_client(serve_app(_home(tmp_path), deadline_s=deadline, max_new_questions=64, max_total_chars=10**7)) as c:
        before = _records(c)
        heavy = _batch("Heavy", 16, options=26, chars=3_000, long_options=True)
        started = time.monotonic()
        r = c.post("/v1/distribution", json=heavy)
        took = time.monotonic() - started
        error = _error(r, 503, "over_deadline")
        assert r.headers["retry-after"].isdigit() and "nothing was logged" in error["message"]
        assert _records(c) == before
        # bounded by the deadline plus one question's work (a generous margin for a slow CI machine)
        assert took < deadline + 30, took


def test_a_client_past_its_rate_gets_429_with_retry_after_and_health_is_exempt(tmp_path: Path) -> None:
    with ready_client(serve_app(_home(tmp_path), rate_per_minute=6, rate_burst=3)) as c:
        ok = {"community": "Britain", "question": "Is the park clean?", "options": ["Yes", "No"]}
        codes = [c.post("/v1/decide", json=ok).status_code for _ in range(4)]
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        r = c.post("/v1/decide", json=ok)
        _error(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 10
        assert all(c.get("/v1/health").status_code == 200 for _ in range(10))


def test_health_says_starting_and_answers_wait_until_every_model_is_loaded(tmp_path: Path) -> None:
    """While the warm-up cannot finish (it needs the deployment's cache lock, held here), health is
    503 ``starting`` and answering routes refuse with Retry-After; then both turn ready."""
    app = serve_app(_home(tmp_path))
    deployment = app.state.live.current
    ok = {"community": "Britain", "question": "Is the park clean?", "options": ["Yes", "No"]}
    with TestClient(app) as c:
        with deployment._lock:
            time.sleep(0.2)
            health = c.get("/v1/health")
            assert health.status_code == 503 and health.json()["status"] == "starting"
            r = c.post("/v1/decide", json=ok)
            assert _error(r, 503, "starting") and r.headers["retry-after"] == "2"
        assert app.state.readiness.wait(timeout=120)
        health = c.get("/v1/health").json()
        assert health["status"] == "ready" and health["warm_up_seconds"] >= 0
        assert c.post("/v1/decide", json=ok).status_code == 200


def test_ready_means_the_encoder_is_loaded_even_when_the_warm_up_question_is_cached(tmp_path: Path) -> None:
    """The cold start of issue 16: a second start found the warm-up question in the embedding cache,
    so it was 'ready' with no encoder loaded, and the first new question paid for loading it."""
    home = _home(tmp_path)
    with ready_client(serve_app(home)):
        pass  # a first start fills the embedding cache
    app = serve_app(home)
    with ready_client(app):
        encoder = app.state.live.current.policy.embeddings.encoder
        assert encoder._model is not None


def test_the_worker_pool_comes_from_the_settings(tmp_path: Path) -> None:
    import anyio.to_thread

    with ready_client(serve_app(_home(tmp_path), workers=3)) as c:
        total = c.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)  # type: ignore[union-attr]
        assert total == 3
