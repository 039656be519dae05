"""Every route in-process, on a real fitted policy: answers, audit records, admin, errors and the limits
set in `Settings` (which used to change only the body limit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tiny_serve import TinyHome, ready_client, register, serve_app, tiny_home

RELIGION = "How important is religion in your life?"
OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]
REDLINE = "The town has voted on what to do with the selected residents. Should they be mulched?"


def _error(response: Any, status: int, code: str, field: str | None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "field"}, body
    assert (body["error"]["status"], body["error"]["code"], body["error"]["field"]) == (status, code, field), body
    return str(body["error"]["message"])


def _mc(options: list[str]) -> str:
    return RELIGION + "\n" + "\n".join(f"{'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i]}. {o}" for i, o in enumerate(options))


def test_health_and_communities_name_the_certified_model(client: TestClient, home: TinyHome) -> None:
    health = client.get("/v1/health").json()
    assert health["model_id"] == home.model_id and health["certificate_id"] == home.certificate_id
    assert health["certified"] is True and health["status"] == "ready"
    communities = client.get("/v1/communities").json()["communities"]
    assert [c["id"] for c in communities] == ["Britain", "India (Current national sample)", "S. Korea"]
    assert communities[0]["certified_one_minus_jsd"] == 0.81


def test_decide_answers_and_audits_before_replying(client: TestClient, home: TinyHome) -> None:
    from valuemulch.serve import AuditLog

    r = client.post("/v1/decide", json={"community": "Britain", "question": RELIGION, "options": OPTIONS})
    assert r.status_code == 200, r.text
    out = r.json()
    assert abs(sum(out["distribution"]) - 1) < 1e-9 and out["choice_text"] == OPTIONS[out["choice"]]
    with AuditLog(home.audit) as log:
        record = log.get(out["decision_id"])
    assert record is not None and record.endpoint == "/v1/decide" and record.community == "Britain"
    assert record.answer["distribution"] == out["distribution"] and record.certified is True


def test_a_red_line_option_is_masked_everywhere(client: TestClient) -> None:
    body = {"community": "S. Korea", "question": REDLINE, "options": ["Yes", "No", "Refused"]}
    decided = client.post("/v1/decide", json=body).json()
    assert decided["bounds"]["masked"] == [0] and decided["distribution"][0] == 0.0 and decided["choice"] != 0
    questions = [{"question": REDLINE, "options": ["Yes", "No", "Refused"]}]
    batch = client.post("/v1/distribution", json={"community": "S. Korea", "questions": questions}).json()
    assert batch["results"][0]["bounds"]["masked"] == [0]
    chat = client.post(
        "/v1/chat/completions",
        json={"model": "valuemulch/S. Korea", "messages": [{"role": "user", "content": f"{REDLINE}\nA. Yes\nB. No\nC. Refused"}]},
    ).json()
    assert chat["choices"][0]["message"]["content"] != "A" and chat["valuemulch"]["bounds"]["masked"] == [0]


def test_chat_reports_logprobs_of_the_bounded_distribution(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={
            "model": "valuemulch/Britain",
            "messages": [{"role": "user", "content": _mc(OPTIONS)}],
            "logprobs": True,
            "top_logprobs": 2,
        },
    )
    assert r.status_code == 200, r.text
    content = r.json()["choices"][0]["logprobs"]["content"][0]
    assert content["token"] == r.json()["choices"][0]["message"]["content"] and len(content["top_logprobs"]) == 2


def test_unknown_community_is_404_on_every_answering_route(client: TestClient) -> None:
    q = {"question": RELIGION, "options": OPTIONS}
    _error(client.post("/v1/decide", json={"community": "Atlantis", **q}), 404, "unknown_community", "community")
    _error(
        client.post("/v1/distribution", json={"community": "Atlantis", "questions": [q]}), 404, "unknown_community", "community"
    )
    chat = {"model": "valuemulch/Atlantis", "messages": [{"role": "user", "content": _mc(OPTIONS)}]}
    _error(client.post("/v1/chat/completions", json=chat), 404, "unknown_community", "community")


def test_admin_needs_the_key_then_replaces_policy_reloads_and_promotes(
    client: TestClient, home: TinyHome, auth: dict[str, str]
) -> None:
    _error(client.post("/v1/admin/reload"), 401, "unauthorized", None)
    _error(client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"}), 403, "forbidden", None)
    assert client.post("/v1/admin/reload", headers=auth).json()["model_id"] == home.model_id
    assert client.post("/v1/admin/promote", json={"model_id": home.model_id}, headers=auth).json()["certified"] is True
    _error(client.post("/v1/admin/promote", json={"model_id": "no-such"}, headers=auth), 409, "cannot_promote", "model_id")
    body = {"community": "Britain", "question": RELIGION, "options": OPTIONS}
    assert client.put("/v1/admin/policy", json={"policy": {"max_divergence": 0.0}}, headers=auth).status_code == 200
    try:
        reasons = client.post("/v1/decide", json=body).json()["bounds"]["reasons"]
        assert [r["code"] for r in reasons] == ["divergence_budget"]
    finally:
        assert client.put("/v1/admin/policy", json={"policy": {}}, headers=auth).status_code == 200
    assert client.post("/v1/decide", json=body).json()["bounds"]["reasons"] == []


def test_the_openapi_schema_lists_the_same_paths(client: TestClient) -> None:
    assert sorted(client.get("/openapi.json").json()["paths"]) == [
        "/v1/admin/policy",
        "/v1/admin/promote",
        "/v1/admin/reload",
        "/v1/chat/completions",
        "/v1/communities",
        "/v1/decide",
        "/v1/distribution",
        "/v1/health",
    ]


# -- limits: the request schemas take them from Settings ---------------------------------------------
LIMITS = {"max_options": 3, "max_batch": 2, "max_question_chars": 60, "max_option_chars": 20, "max_community_chars": 10}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tiny_home(Path(tmp_path_factory.mktemp("limited")))
    register(home)
    with ready_client(serve_app(home, **LIMITS)) as c:
        yield c


def test_limits_set_in_settings_change_what_the_schemas_accept(limited: TestClient) -> None:
    ok = {"community": "Britain", "question": "Is it good?", "options": ["Yes", "No"]}
    assert limited.post("/v1/decide", json=ok).status_code == 200
    msg = _error(limited.post("/v1/decide", json={**ok, "options": ["a", "b", "c", "d"]}), 422, "invalid_request", "options")
    assert "at most 3" in msg
    msg = _error(limited.post("/v1/decide", json={**ok, "question": "q" * 61}), 422, "invalid_request", "question")
    assert "at most 60" in msg
    msg = _error(limited.post("/v1/decide", json={**ok, "options": ["a", "b" * 21]}), 422, "invalid_request", "options")
    assert "at most 20" in msg
    msg = _error(limited.post("/v1/decide", json={**ok, "community": "c" * 11}), 422, "invalid_request", "community")
    assert "at most 10" in msg
    batch = {"community": "Britain", "questions": [{"question": "Is it good?", "options": ["Yes", "No"]}] * 3}
    assert "at most 2" in _error(limited.post("/v1/distribution", json=batch), 422, "invalid_request", "questions")
    chat = {"model": "valuemulch/Britain", "messages": [{"role": "user", "content": "Is it good?\nA. a\nB. b\nC. c\nD. d"}]}
    _error(limited.post("/v1/chat/completions", json=chat), 422, "too_many_options", "messages")


def test_the_default_limits_still_allow_26_options(client: TestClient) -> None:
    options = [f"option {i}" for i in range(26)]
    assert client.post("/v1/decide", json={"community": "Britain", "question": RELIGION, "options": options}).status_code == 200
    r = client.post("/v1/decide", json={"community": "Britain", "question": RELIGION, "options": [*options, "one more"]})
    assert "at most 26" in _error(r, 422, "invalid_request", "options")


def test_a_limit_set_by_environment_variable_reaches_the_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valuemulch.serve import load_deployment
    from valuemulch.serve.app import create_app
    from valuemulch.settings import ServeSettings, Settings

    home = tiny_home(tmp_path)
    register(home)
    monkeypatch.setenv("VALUEMULCH_LIMITS__MAX_OPTIONS", "2")
    monkeypatch.setenv("VALUEMULCH_REGISTRY", str(home.registry))
    monkeypatch.setenv("VALUEMULCH_AUDIT", str(home.audit))
    monkeypatch.setenv("VALUEMULCH_KEYS", str(home.public_key.parent))
    settings = Settings(serve=ServeSettings(trusted_keys=(home.public_key,)))
    assert settings.limits.max_options == 2 and settings.registry == home.registry
    with TestClient(create_app(settings, load_deployment(settings, None))) as c:
        r = c.post("/v1/decide", json={"community": "Britain", "question": "Is it good?", "options": ["a", "b", "c"]})
    assert "at most 2" in _error(r, 422, "invalid_request", "options")
