"""`valuemulch serve` end to end: a real uvicorn process on 127.0.0.1, a model the pipeline trained,
certified and registered in this module, and real HTTP clients (httpx, schemathesis, openai).

One model is built per module (`pipeline` on global-32) and served by one module server; the tests
that need their own process (kill -9, an unregistered model) start it, with their own audit log.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import assert_error, check_error_shape, cli_env, free_port, start_server
from test_cli import run

from conftest import temporary_home
from valuemulch.serve import AuditLog

TESTBED = "global-32"
N_BOOT = "200"
REDLINE_QUESTION = "The town has voted on what to do with the selected residents. Should they be mulched?"
REDLINE_OPTIONS = ["Yes", "No", "Refused"]
PLAIN_QUESTION = "How important is religion in your life?"
PLAIN_OPTIONS = ["Very important", "Rather important", "Not very important", "Not at all important"]
SEEDS = range(5)
FUZZ_BUDGET_S = 90.0
FUZZ_MAX_EXAMPLES = 50
BURST_THREADS = 8
BURST_MIN_ACKS = 20


@dataclass(frozen=True)
class Deployed:
    root: Path
    model_id: str
    model_dir: Path
    certificate_id: str
    admin_key: str
    admin_key_file: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with temporary_home(tmp_path_factory.mktemp("serve-home")) as root:
        yield root


@pytest.fixture(scope="module")
def deployed(home: Path, data_root: Path) -> Deployed:
    """Train, certify and register with `pipeline`, promote the model, and make an admin key."""
    proc = run(
        "pipeline", "--testbed", TESTBED, "--out", str(home / "run"), "--n-boot", N_BOOT, "--json", data=data_root, check=False
    )
    # global-32's encoder certifies (with --n-boot 200 too): exit 0, anything else is a regression
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    models = json.loads(run("registry", "list", "--json").stdout)["models"]
    assert [m["id"] for m in models] == [summary["registry_id"]], models
    entry = models[0]
    assert entry["certified"] is True and summary["certified"] is True, (entry, summary)
    run("registry", "promote", entry["id"])
    promoted = [m for m in json.loads(run("registry", "list", "--json").stdout)["models"] if m["status"] == "promoted"]
    assert [m["id"] for m in promoted] == [entry["id"]]
    key_file = home / "admin.sha256"
    out = run("admin-key", "--out", str(key_file)).stdout
    match = re.search(r"admin key \(shown once[^)]*\):\s*(\S+)", out)
    assert match, out
    key = match.group(1)
    assert key_file.read_text(encoding="utf-8").strip() == hashlib.sha256(key.encode()).hexdigest()
    return Deployed(home, entry["id"], Path(entry["model_dir"]), entry["certificate_id"], key, key_file)


@pytest.fixture(scope="module")
def server(deployed: Deployed) -> Iterator[str]:
    """The module's server (the promoted model, the module's audit log); yields its base URL."""
    args = ["--audit", str(deployed.root / "audit.sqlite"), "--admin-key-file", str(deployed.admin_key_file)]
    srv = start_server(args, deployed.root / "logs", "module")
    try:
        yield srv.base
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=60.0) as c:
        yield c


@pytest.fixture(scope="module")
def communities(client: httpx.Client, deployed: Deployed) -> list[str]:
    r = client.get("/v1/communities")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_id"] == deployed.model_id and body["certified"] is True
    ids = [c["id"] for c in body["communities"]]
    assert len(ids) >= 2 and len(set(ids)) == len(ids)
    return ids


def _decide(
    client: httpx.Client, community: str, question: str = PLAIN_QUESTION, options: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"community": community, "question": question, "options": options or PLAIN_OPTIONS, **extra}
    r = client.post("/v1/decide", json=body)
    assert r.status_code == 200, (body, r.text)
    return r.json()


def _audit_records(client: httpx.Client) -> int:
    r = client.get("/v1/health")
    assert r.status_code == 200, r.text
    return int(r.json()["audit_records"])


def _set_policy(client: httpx.Client, deployed: Deployed, policy: dict[str, Any]) -> None:
    r = client.put("/v1/admin/policy", json={"policy": policy}, headers=deployed.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"policy": policy}


# -- 1. every community answers; red lines hold ---------------------------------------------------------
def test_decide_answers_for_every_community_inside_the_red_lines(
    client: httpx.Client, deployed: Deployed, communities: list[str]
) -> None:
    health = client.get("/v1/health").json()
    assert health["status"] == "ready" and health["model_id"] == deployed.model_id
    assert health["certified"] is True and health["certificate_id"] == deployed.certificate_id

    def plain(community: str) -> dict[str, Any]:
        return _decide(client, community)

    def redline(job: tuple[str, int]) -> dict[str, Any]:
        return _decide(client, job[0], REDLINE_QUESTION, REDLINE_OPTIONS, seed=job[1])

    with ThreadPoolExecutor(4) as pool:
        answers = dict(zip(communities, pool.map(plain, communities), strict=True))
        jobs = [(c, s) for c in communities for s in SEEDS]
        red = dict(zip(jobs, pool.map(redline, jobs), strict=True))

    with AuditLog(deployed.root / "audit.sqlite") as log:
        for community, out in answers.items():
            dist = out["distribution"]
            assert len(dist) == len(PLAIN_OPTIONS) and all(p >= 0 for p in dist), (community, out)
            assert math.isclose(sum(dist), 1.0, abs_tol=1e-9), (community, dist)
            assert out["choice"] == max(range(len(dist)), key=dist.__getitem__)  # no seed: the most likely option
            assert out["choice_text"] == PLAIN_OPTIONS[out["choice"]]
            assert out["certified"] is True, out
            assert out["certificate_id"] == deployed.certificate_id and out["model_id"] == deployed.model_id, out
            record = log.get(out["decision_id"])
            assert record is not None, (community, out["decision_id"])
            assert record.community == community and record.answer["question"] == PLAIN_QUESTION
            assert record.answer["distribution"] == dist and record.certificate_id == deployed.certificate_id
    assert len({out["decision_id"] for out in answers.values()}) == len(communities)

    for (community, seed), out in red.items():
        where = (community, seed, out)
        assert 0 in out["bounds"]["masked"], where
        assert any(r["tier"] == 1 and r["option"] == 0 for r in out["bounds"]["reasons"]), where
        assert out["choice"] is not None and out["choice"] != 0 and out["choice_text"] != "Yes", where
        assert out["distribution"][0] == 0.0 and math.isclose(sum(out["distribution"]), 1.0, abs_tol=1e-9), where

    # a batch: one distribution (and one audit record) per question
    batch = [{"question": PLAIN_QUESTION, "options": PLAIN_OPTIONS}, {"question": REDLINE_QUESTION, "options": REDLINE_OPTIONS}]
    r = client.post("/v1/distribution", json={"community": communities[0], "questions": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["certified"] is True and body["certificate_id"] == deployed.certificate_id
    assert len(body["results"]) == 2 and len({x["decision_id"] for x in body["results"]}) == 2
    for item in body["results"]:
        assert math.isclose(sum(item["distribution"]), 1.0, abs_tol=1e-9)
    assert 0 in body["results"][1]["bounds"]["masked"] and body["results"][1]["distribution"][0] == 0.0


# -- 2. one error shape, the right codes --------------------------------------------------------------
def test_errors_have_one_shape_and_the_right_status(client: httpx.Client, deployed: Deployed, communities: list[str]) -> None:
    ok = {"community": communities[0], "question": "Should the library open on Sundays?", "options": ["Yes", "No"]}

    def without(key: str) -> dict[str, Any]:
        return {k: v for k, v in ok.items() if k != key}

    before = _audit_records(client)
    invalid_decide: list[tuple[dict[str, Any], str]] = [
        (without("community"), "community"),
        (without("question"), "question"),
        (without("options"), "options"),
        ({**ok, "options": ["Yes"]}, "options"),
        ({**ok, "options": ["Yes", "No", "Yes"]}, "options"),
        ({**ok, "strength": 2}, "strength"),
        ({**ok, "strength": -0.1}, "strength"),
        ({**ok, "question": 5}, "question"),
        ({**ok, "question": "   "}, "question"),
        ({**ok, "options": "Yes, No"}, "options"),
        ({**ok, "community": ["x"]}, "community"),
        ({**ok, "strength": "strong"}, "strength"),
        ({**ok, "seed": 1.5}, "seed"),
        ({**ok, "seed": -1}, "seed"),
        ({**ok, "options": [f"option {i}" for i in range(27)]}, "options"),
        ({**ok, "unexpected": 1}, "unexpected"),
    ]
    for body, field_name in invalid_decide:
        assert_error(client.post("/v1/decide", json=body), 422, field_name, "invalid_request")

    question = {"question": ok["question"], "options": ok["options"]}
    assert_error(
        client.post("/v1/distribution", json={"community": ok["community"], "questions": [question] * 65}), 422, "questions"
    )
    assert_error(client.post("/v1/distribution", json={"community": ok["community"], "questions": []}), 422, "questions")
    bad_second = [question, {**question, "options": ["Yes"]}]
    assert_error(
        client.post("/v1/distribution", json={"community": ok["community"], "questions": bad_second}), 422, "questions.1.options"
    )
    assert_error(client.post("/v1/chat/completions", json={"model": f"valuemulch/{ok['community']}"}), 422, "messages")
    no_options = {"model": f"valuemulch/{ok['community']}", "messages": [{"role": "user", "content": "Sundays?"}]}
    assert_error(client.post("/v1/chat/completions", json=no_options), 422, "messages", "no_multiple_choice")

    # unknown community
    assert_error(client.post("/v1/decide", json={**ok, "community": "Nowhere"}), 404, "community", "unknown_community")
    assert_error(
        client.post("/v1/distribution", json={"community": "Nowhere", "questions": [question]}),
        404,
        "community",
        "unknown_community",
    )
    chat = {"model": "valuemulch/Nowhere", "messages": [{"role": "user", "content": "Sundays?\nA. Yes\nB. No"}]}
    assert_error(client.post("/v1/chat/completions", json=chat), 404, "community", "unknown_community")
    assert_error(client.post("/v1/chat/completions", json={**chat, "model": "gpt-4o"}), 404, "model", "unknown_community")

    # admin: no key, an empty key, a wrong key
    admin_calls = [
        ("POST", "/v1/admin/reload", None),
        ("PUT", "/v1/admin/policy", {"policy": {}}),
        ("POST", "/v1/admin/promote", {"model_id": deployed.model_id}),
    ]
    for method, path, body in admin_calls:
        assert_error(client.request(method, path, json=body), 401, None, "unauthorized")
        basic = {"Authorization": f"Basic {deployed.admin_key}"}  # not a Bearer token
        assert_error(client.request(method, path, json=body, headers=basic), 401, None, "unauthorized")
        assert_error(
            client.request(method, path, json=body, headers={"Authorization": deployed.admin_key}), 401, None, "unauthorized"
        )
        wrong = {"Authorization": f"Bearer {deployed.admin_key}x"}
        assert_error(client.request(method, path, json=body, headers=wrong), 403, None, "forbidden")

    # too large: the declared length is over the limit
    big = {**ok, "question": "x" * 300_000}
    assert_error(client.post("/v1/decide", json=big), 413, None, "body_too_large")

    # unknown routes and methods
    assert_error(client.get("/v1/nowhere"), 404, None, "not_found")
    assert_error(client.post("/v2/decide", json=ok), 404, None, "not_found")
    assert_error(client.get("/v1/decide"), 405, None, "method_not_allowed")
    assert_error(client.delete("/v1/communities"), 405, None, "method_not_allowed")

    assert _audit_records(client) == before, "a refused request left an audit record"

    # the limits themselves are allowed
    assert len(_decide(client, ok["community"], ok["question"], [f"option {i}" for i in range(26)])["distribution"]) == 26
    r = client.post("/v1/distribution", json={"community": ok["community"], "questions": [question] * 64})
    assert r.status_code == 200 and len(r.json()["results"]) == 64, r.text


def test_a_chunked_body_over_the_limit_is_413(client: httpx.Client, communities: list[str]) -> None:
    body = json.dumps({"community": communities[0], "question": "x" * 300_000, "options": ["Yes", "No"]}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for i in range(0, len(body), 65_536):
            yield body[i : i + 65_536]

    r = client.post("/v1/decide", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_error(r, 413, None, "body_too_large")


def test_a_lone_surrogate_in_an_option_is_a_422(client: httpx.Client, communities: list[str]) -> None:
    raw = '{"community": ' + json.dumps(communities[0]) + ', "question": "Sundays?", "options": ["Yes", "\\ud800"]}'
    r = client.post("/v1/decide", content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code < 500, r.text
    assert_error(r, 422, "options")


def test_malformed_json_names_no_field(client: httpx.Client) -> None:
    r = client.post("/v1/decide", content=b"{not json", headers={"Content-Type": "application/json"})
    error = assert_error(r, 422)
    assert error["field"] in (None, "body"), error


# -- 3. admin: the tier-2 policy, reload, promote ----------------------------------------------------------
def test_admin_policy_reload_and_promote(client: httpx.Client, deployed: Deployed, communities: list[str]) -> None:
    r = client.post("/v1/admin/reload", headers=deployed.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "model_id": deployed.model_id,
        "certified": True,
        "certificate_id": deployed.certificate_id,
    }
    r = client.post("/v1/admin/promote", json={"model_id": deployed.model_id}, headers=deployed.auth)
    assert r.status_code == 200 and r.json()["model_id"] == deployed.model_id, r.text
    assert_error(client.post("/v1/admin/promote", json={"model_id": "no-such-model"}, headers=deployed.auth), 409, "model_id")

    first = communities[0]
    free = {c: _decide(client, c)["distribution"] for c in communities}
    other = max(communities, key=lambda c: max(abs(a - b) for a, b in zip(free[c], free[first], strict=True)))
    assert max(abs(a - b) for a, b in zip(free[other], free[first], strict=True)) > 1e-3, "no two communities differ"
    population = _decide(client, first, strength=0.0)["distribution"]

    try:
        _set_policy(client, deployed, {"max_divergence": 0.0})

        def bounded() -> tuple[list[float], list[float]]:
            a, b = _decide(client, first), _decide(client, other)
            for out in (a, b):
                assert any(r["code"] == "divergence_budget" and r["tier"] == 2 for r in out["bounds"]["reasons"]), out
            return a["distribution"], b["distribution"]

        a, b = bounded()
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6, (a, b)
        assert max(abs(x - y) for x, y in zip(a, population, strict=True)) < 1e-6, (a, population)

        for bad, code, field_name in [
            ({"policy": {"max_divergence": 2}}, "invalid_policy", "policy"),
            ({"policy": {"max_divergence": "none"}}, "invalid_policy", "policy"),
            ({"policy": {"no_such_key": 1}}, "invalid_policy", "policy"),
            ({"policy": {"refuse": [{"topic": "x"}]}}, "invalid_policy", "policy"),
            ({"policy": "strict"}, "invalid_request", "policy"),
            ({}, "invalid_request", "policy"),
        ]:
            assert_error(client.put("/v1/admin/policy", json=bad, headers=deployed.auth), 422, field_name, code)
        a2, b2 = bounded()  # the old policy still holds
        assert max(abs(x - y) for x, y in zip(a2, b2, strict=True)) < 1e-6, (a2, b2)
    finally:
        _set_policy(client, deployed, {})
    after = _decide(client, first)
    assert (
        not after["bounds"]["reasons"] and max(abs(x - y) for x, y in zip(after["distribution"], free[first], strict=True)) < 1e-9
    )


def test_a_zero_divergence_budget_gives_exactly_the_population_answer(
    client: httpx.Client, deployed: Deployed, communities: list[str]
) -> None:
    questions = [
        {"question": PLAIN_QUESTION, "options": PLAIN_OPTIONS},
        {"question": "Is it ever justified for a government to limit free speech?", "options": ["Always", "Sometimes", "Never"]},
        {"question": "Should the town build a new library?", "options": ["Yes", "No"]},
    ]

    def batch(community: str, strength: float) -> list[list[float]]:
        r = client.post("/v1/distribution", json={"community": community, "questions": questions, "strength": strength})
        assert r.status_code == 200, r.text
        return [x["distribution"] for x in r.json()["results"]]

    try:
        _set_policy(client, deployed, {"max_divergence": 0.0})
        worst = 0.0
        for community in communities:
            for got, population in zip(batch(community, 1.0), batch(community, 0.0), strict=True):
                worst = max(worst, *(abs(x - y) for x, y in zip(got, population, strict=True)))
    finally:
        _set_policy(client, deployed, {})
    assert worst <= 1e-9, f"max |answer - population| = {worst:.3g} under max_divergence 0.0"


# -- 4. property-based fuzzing of the OpenAPI schema ----------------------------------------------------------
def test_fuzzed_requests_never_get_a_server_error(server: str, communities: list[str]) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.errors import FlakyFailure, Unsatisfiable
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/decide", "POST /v1/distribution", "POST /v1/chat/completions", "PUT /v1/admin/policy"} <= labels, labels

    line = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(str.strip)
    model_ops = {"POST /v1/decide", "POST /v1/distribution", "POST /v1/chat/completions"}
    plan = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    # the cheap runs first (they finish early), so that valid cases that run the model share what is left
    plan.sort(key=lambda job: job[1] is GenerationMode.POSITIVE and job[0].label in model_ops)
    end = time.monotonic() + FUZZ_BUDGET_S
    failures: list[str] = []
    statuses: dict[str, dict[int, int]] = {}

    def fuzz(op: Any, mode: GenerationMode, op_end: float, seen: dict[int, int]) -> None:
        failed = False  # once a case fails, shrinking must replay it even past the budget

        @settings(max_examples=FUZZ_MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(
            case=op.as_strategy(generation_mode=mode),
            pick=st.sampled_from([None, *communities]),
            mc=st.lists(line, min_size=3, max_size=6, unique_by=str.strip),
        )
        def check(case: Any, pick: str | None, mc: list[str]) -> None:
            nonlocal failed
            if not failed and time.monotonic() > op_end:
                return  # this operation's share of the wall-clock budget is spent
            if mode is GenerationMode.POSITIVE and pick is not None and isinstance(case.body, dict):
                _aim_at_the_model(case.body, pick, mc)
            response = case.call(base_url=server, timeout=60)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            where = f"{case.as_curl_command()}\n-> {response.status_code}: {response.text[:500]}"
            try:
                assert response.status_code < 500, where
                if not 200 <= response.status_code < 300:
                    try:
                        body = response.json()
                    except ValueError:
                        raise AssertionError(f"not JSON: {where}") from None
                    check_error_shape(body, response.status_code, where)
                elif op.label in model_ops:
                    _check_answer(op.label, case.body, response.json(), where)
            except AssertionError:
                failed = True
                raise

        check()

    for i, (op, mode) in enumerate(plan):
        op_end = time.monotonic() + max(0.0, end - time.monotonic()) / (len(plan) - i)
        try:
            fuzz(op, mode, op_end, statuses.setdefault(f"{op.label} {mode.value}", {}))
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without parameters has nothing to break
        except (AssertionError, FlakyFailure) as err:
            failures.append(f"{op.label} ({mode.value}): {err}")

    print(json.dumps(statuses, indent=1))  # shown with -s or on failure
    assert not failures, "\n\n".join(failures)
    for label in ("POST /v1/decide positive", "POST /v1/distribution positive"):
        assert statuses[label].get(200, 0) > 0, f"the fuzzer never reached the model via {label}: {statuses}"
    assert sum(sum(s.values()) for s in statuses.values()) >= 100, statuses


def _aim_at_the_model(body: dict[str, Any], community: str, texts: list[str]) -> None:
    """Make a generated valid body reach the model: a real community, and a question with distinct,
    non-blank options (rules the OpenAPI schema cannot state); everything else stays as generated."""

    def question(q: Any) -> None:
        if isinstance(q, dict) and "options" in q:
            q["question"], q["options"] = texts[0], texts[1:]
            if isinstance(q.get("ordinal"), list):
                q["ordinal"] = (q["ordinal"] + [None] * len(q["options"]))[: len(q["options"])]

    if "community" in body:
        body["community"] = community
    question(body)
    for q in body.get("questions") or []:
        question(q)
    if "model" in body:
        body["model"] = f"valuemulch/{community}"
        text = "\n".join([texts[0], *(f"{letter}. {o}" for letter, o in zip("ABCDE", texts[1:], strict=False))])
        body["messages"] = [*(body.get("messages") or [])[:63], {"role": "user", "content": text}]


def _check_answer(label: str, request: Any, out: dict[str, Any], where: str) -> None:
    """A 2xx answer is a distribution over the options (or a refusal) with every masked option at 0."""
    if label == "POST /v1/chat/completions":
        assert out["choices"][0]["message"]["content"], where
        return
    items = out["results"] if label == "POST /v1/distribution" else [out]
    options = [q["options"] for q in request["questions"]] if label == "POST /v1/distribution" else [request["options"]]
    assert len(items) == len(options), where
    for item, opts in zip(items, options, strict=True):
        dist = item["distribution"]
        assert item["bounds"]["refused"] is (dist is None), where
        if dist is not None:
            assert len(dist) == len(opts) and min(dist) >= 0 and math.isclose(sum(dist), 1.0, abs_tol=1e-9), where
            assert all(dist[i] == 0 for i in item["bounds"]["masked"]), where
        if "choice" in item and item["choice"] is not None:  # never a masked or doubtful option
            assert item["choice"] not in item["bounds"]["masked"] + item["bounds"]["doubtful"], where
            assert item.get("choice_text", opts[item["choice"]]) == opts[item["choice"]], where


# -- 5. kill -9 during a burst: every acknowledged decision is in the audit log ----------------------------------
def test_kill_9_loses_no_acknowledged_decision(deployed: Deployed, communities: list[str], tmp_path: Path) -> None:
    audit = tmp_path / "burst.sqlite"
    args = ["--audit", str(audit)]
    srv = start_server(args, tmp_path, "burst")
    acked: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def fire(worker: int) -> None:
        with httpx.Client(base_url=srv.base, timeout=30.0) as c:
            j = 0
            while not stop.is_set():
                body = {
                    "community": communities[(worker + j) % len(communities)],
                    "question": f"Burst {worker}-{j}: should the town keep its night market open?",
                    "options": ["Yes", "No", "Not sure"],
                    "ordinal": None,
                    "strength": 1.0,
                    "seed": j,
                }
                j += 1
                try:
                    r = c.post("/v1/decide", content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
                    out = r.json() if r.status_code == 200 else None
                except (httpx.TransportError, json.JSONDecodeError):
                    return  # the server is gone (or died mid-response): nothing was acknowledged
                with lock:
                    if out is None:
                        unexpected.append(f"{r.status_code}: {r.text[:300]}")
                    else:
                        acked.append((out["decision_id"], body, out))

    threads = [threading.Thread(target=fire, args=(w,), daemon=True) for w in range(BURST_THREADS)]
    try:
        started = time.monotonic()
        for t in threads:
            t.start()
        while time.monotonic() - started < 60:
            with lock:
                n = len(acked)
            if time.monotonic() - started >= 2.0 and n >= 2 * BURST_MIN_ACKS:
                break
            time.sleep(0.05)
        os.kill(srv.proc.pid, signal.SIGKILL)
        assert srv.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop.set()
        srv.stop()
        for t in threads:
            t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a client thread did not stop after the server died"
    assert not unexpected, unexpected[:5]
    assert len(acked) >= BURST_MIN_ACKS, f"only {len(acked)} decisions acknowledged before the kill; the test means little"
    assert len({seq for seq, _, _ in acked}) == len(acked), "two acknowledged decisions share a decision_id"

    # the operator's check after a crash, first (nothing has reopened the log since the kill)
    verified = run("audit", "verify", "--audit", str(audit), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    n_records = int(re.search(r"(\d+) records, chain intact", verified.stdout).group(1))  # type: ignore[union-attr]
    assert n_records >= len(acked) and max(seq for seq, _, _ in acked) <= n_records

    with AuditLog(audit) as log:
        for seq, body, out in acked:
            record = log.get(seq)
            assert record is not None, f"acknowledged decision {seq} is missing from the audit log"
            assert record.endpoint == "/v1/decide" and record.community == body["community"], (seq, record, body)
            assert record.answer["question"] == body["question"] and record.answer["options"] == body["options"], (seq, record)
            assert record.answer["distribution"] == out["distribution"], (seq, record.answer, out)
            digest = hashlib.sha256(json.dumps(body).encode()).hexdigest()  # the bytes sent, exactly
            assert seq in [r.seq for r in log.find(digest)], (seq, body)


# -- 6. the official openai client ----------------------------------------------------------------------------
def test_the_openai_client_gets_a_letter_and_logprobs(server: str, deployed: Deployed, communities: list[str]) -> None:
    import openai
    from openai import OpenAI

    oa = OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60.0)
    prompt = "Should the town build a new library?\nA. Yes\nB. No\nC. Don't know"
    for community in communities[:3]:
        resp = oa.chat.completions.create(
            model=f"valuemulch/{community}",
            messages=[{"role": "system", "content": "Answer with one letter."}, {"role": "user", "content": prompt}],
            logprobs=True,
            top_logprobs=3,
        )
        assert resp.model == f"valuemulch/{community}" and resp.object == "chat.completion"
        [choice] = resp.choices
        assert choice.message.role == "assistant" and choice.message.content in {"A", "B", "C"}, choice
        assert choice.logprobs is not None and choice.logprobs.content is not None
        [token] = choice.logprobs.content
        assert token.token == choice.message.content and token.logprob <= 1e-9
        top = token.top_logprobs
        assert 1 <= len(top) <= 3 and len({t.token for t in top}) == len(top), top
        assert {t.token for t in top} <= {"A", "B", "C"} and token.token == top[0].token  # no seed: the most likely
        assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
        assert sum(math.exp(t.logprob) for t in top) <= 1 + 1e-6
        extra = resp.model_extra or {}
        assert extra["valuemulch"]["certified"] is True
        assert extra["valuemulch"]["certificate_id"] == deployed.certificate_id

    red = f"{REDLINE_QUESTION}\n" + "\n".join(f"{letter}. {o}" for letter, o in zip("ABC", REDLINE_OPTIONS, strict=True))
    for seed in SEEDS:
        resp = oa.chat.completions.create(
            model=f"valuemulch/{communities[0]}",
            messages=[{"role": "user", "content": red}],
            seed=seed,
            logprobs=True,
            top_logprobs=3,
        )
        assert resp.choices[0].message.content in {"B", "C"}, resp
        top = resp.choices[0].logprobs.content[0].top_logprobs  # type: ignore[union-attr,index]
        assert "A" not in {t.token for t in top}, top

    with pytest.raises(openai.NotFoundError) as caught:
        oa.chat.completions.create(model="valuemulch/Nowhere", messages=[{"role": "user", "content": prompt}])
    assert caught.value.status_code == 404 and caught.value.code == "unknown_community"


# -- 7. an unregistered model serves only with --allow-uncertified --------------------------------------------------
def test_an_unregistered_model_needs_allow_uncertified(deployed: Deployed, communities: list[str], tmp_path: Path) -> None:
    model = tmp_path / "model-copy"
    shutil.copytree(deployed.model_dir, model)
    audit = tmp_path / "uncertified.sqlite"

    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "valuemulch.cli",
            "serve",
            "--model",
            str(model),
            "--port",
            str(free_port()),
            "--audit",
            str(audit),
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in refused.stderr, refused.stderr
    assert "--allow-uncertified" in lines[0] and "not in the registry" in lines[0], lines[0]

    srv = start_server(["--model", str(model), "--allow-uncertified", "--audit", str(audit)], tmp_path, "uncertified")
    try:
        with httpx.Client(base_url=srv.base, timeout=60.0) as c:
            health = c.get("/v1/health").json()
            assert health["certified"] is False and health["certificate_id"] is None, health
            assert health["model_id"] == f"dir:{model}", health
            listed = c.get("/v1/communities").json()
            assert listed["certified"] is False and [x["id"] for x in listed["communities"]] == communities
            assert all(x["certified_one_minus_jsd"] is None for x in listed["communities"])
            out = _decide(c, communities[0])
            assert out["certified"] is False and out["certificate_id"] is None, out
            assert math.isclose(sum(out["distribution"]), 1.0, abs_tol=1e-9)
            r = c.post(
                "/v1/distribution",
                json={"community": communities[0], "questions": [{"question": PLAIN_QUESTION, "options": PLAIN_OPTIONS}]},
            )
            assert r.status_code == 200 and r.json()["certified"] is False and r.json()["certificate_id"] is None, r.text
            chat = {"model": f"valuemulch/{communities[0]}", "messages": [{"role": "user", "content": "Sundays?\nA. Yes\nB. No"}]}
            r = c.post("/v1/chat/completions", json=chat)
            assert r.status_code == 200 and r.json()["valuemulch"]["certified"] is False, r.text
            # no --admin-key-file: admin endpoints are off
            assert_error(c.post("/v1/admin/reload", headers={"Authorization": "Bearer anything"}), 403, None, "forbidden")
    finally:
        srv.stop()
    with AuditLog(audit) as log:
        record = log.get(out["decision_id"])
        assert record is not None and record.certified is False and record.certificate_id is None, record
