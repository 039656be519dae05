"""The lm policy's text side, without a model: personas, prompts, reply parsing, option permutations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from valuemulch.errors import ConfigError, OutputParseError
from valuemulch.policies import build
from valuemulch.policies._lm._extract import letter_distribution, parse_letter, parse_verbalized, sampled_distribution
from valuemulch.policies._lm._permute import average_orders, option_orders, permute, unpermute
from valuemulch.policies._lm._prompts import build_prompt, option_letters, persona
from valuemulch.types import Norms, Question

US32 = [
    *("AGE:18-29", "AGE:30-49", "AGE:50-64", "AGE:65+", "CREGION:Midwest", "CREGION:Northeast", "CREGION:South"),
    *("CREGION:West", "EDUCATION:College graduate/some postgrad", "EDUCATION:High school graduate"),
    *("EDUCATION:Less than high school", "EDUCATION:Postgraduate", "EDUCATION:Some college, no degree"),
    *("INCOME:$100,000 or more", "INCOME:$30,000-$50,000", "INCOME:$50,000-$75,000", "INCOME:$75,000-$100,000"),
    *("INCOME:Less than $30,000", "POLIDEOLOGY:Conservative", "POLIDEOLOGY:Liberal", "POLIDEOLOGY:Moderate"),
    *("POLIDEOLOGY:Very conservative", "POLIDEOLOGY:Very liberal", "POLPARTY:Democrat", "POLPARTY:Independent"),
    *("POLPARTY:Republican", "RACE:Asian", "RACE:Black", "RACE:Hispanic", "RACE:White", "SEX:Female", "SEX:Male"),
]
GLOBAL32 = [
    *("Argentina", "Australia", "Brazil", "Britain", "Canada", "Czech Rep.", "Egypt", "France", "Germany", "Greece"),
    *("India (Current national sample)", "Indonesia", "Israel", "Italy", "Japan", "Jordan", "Kenya", "Lebanon"),
    *("Mexico", "Netherlands", "Nigeria", "Pakistan", "Philippines", "Poland", "Russia", "S. Africa", "S. Korea"),
    *("Spain", "Tunisia", "Turkey", "Ukraine", "United States"),
]
QUESTION = Question(
    "Q1",
    "How much, if at all, should the government regulate AI?",
    ("A great deal", "A fair amount", "Not at all", "Refused"),
    (1.0, 2.0, 3.0, None),
)


# -- personas and prompts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("community", "clause"),
    [
        ("POLPARTY:Democrat", "in politics today, you considered yourself a Democrat"),
        ("POLPARTY:Independent", "in politics today, you considered yourself an Independent"),
        ("POLIDEOLOGY:Very liberal", "your political views were very liberal"),
        ("AGE:18-29", "you were between 18 and 29 years old"),
        ("AGE:65+", "you were 65 years old or older"),
        (
            "INCOME:$30,000-$50,000",
            "last year, your total family income from all sources, before taxes, was between $30,000 and $50,000",
        ),
        ("INCOME:Less than $30,000", "last year, your total family income from all sources, before taxes, was less than $30,000"),
        (
            "EDUCATION:College graduate/some postgrad",
            "the highest level of education you have completed is college or some post graduate",
        ),
        ("CREGION:West", "you currently resided in the West"),
        ("SEX:Female", "the sex you were assigned at birth were female"),
        ("RACE:Black", "you were Black"),
        ("RELIG:Roman Catholic", "your present religion was Roman Catholic"),
        ("Argentina", "you were someone from Argentina"),
        ("India (Current national sample)", "you were someone from India"),
        ("S. Korea", "you were someone from South Korea"),
        ("Czech Rep.", "you were someone from the Czech Republic"),
        ("United States", "you were someone from the United States"),
        ("teachers", "you were a member of the community 'teachers'"),
        ("FOO:bar", "you were a member of the community 'FOO:bar'"),
        ("RACE:Other", "you were a member of the community 'RACE:Other'"),
    ],
)
def test_persona_reads_as_natural_text(community: str, clause: str) -> None:
    assert persona(community) == clause


@pytest.mark.parametrize("community", US32 + GLOBAL32)
def test_every_testbed_community_has_a_specific_persona(community: str) -> None:
    text = persona(community)
    assert "member of the community" not in text and ":" not in text and "(" not in text


def test_persona_prompt_letters_options_in_the_shown_order() -> None:
    prompt = build_prompt("POLPARTY:Democrat", QUESTION, (3, 2, 1, 0), method="logprobs", steering="persona")
    ((role, text),) = prompt.messages
    assert role == "user" and prompt.prefill == ""
    assert text.startswith("Answer the following question as if in politics today, you considered yourself a Democrat.\n\n")
    assert (
        "Question: How much, if at all, should the government regulate AI?\nA. Refused\nB. Not at all\nC. A fair amount\nD. A great deal"
        in text
    )
    assert text.endswith("Reply with the letter of one option (A-D) only.")


def test_unsteered_prompt_has_no_persona() -> None:
    prompt = build_prompt("POLPARTY:Democrat", QUESTION, (0, 1, 2, 3), method="sampled", steering="none")
    text = prompt.messages[0][1]
    assert text.startswith("Question: ") and "Democrat" not in text and "as if" not in text


def test_verbalized_prompt_asks_for_json_and_prefills_it() -> None:
    prompt = build_prompt("Britain", QUESTION, (0, 1, 2, 3), method="verbalized", steering="persona")
    text = prompt.messages[0][1]
    assert 'keys are the letters "A", "B", "C", "D"' in text and "sum to 100" in text and "people like you" in text
    assert prompt.prefill == '{"A": '


def test_option_letters_stop_at_z() -> None:
    assert option_letters(3) == "ABC"
    with pytest.raises(ConfigError, match="at most 26"):
        option_letters(27)


# -- reading replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"A": 40, "B": 60, "C": 0}', [0.4, 0.6, 0.0]),
        ('  ```json\n{"C": 25, "A": 50, "B": 25}\n```', [0.5, 0.25, 0.25]),
        ('{"A": 10, "B": 20, "C": 70}\n\nThese are my estimates.', [0.1, 0.2, 0.7]),
        ('{"A": 0.2, "B": 0.3, "C": 0.5}', [0.2, 0.3, 0.5]),  # fractions: rescaled
        ('{"A": 1, "B": 1, "C": 2.0}', [0.25, 0.25, 0.5]),
    ],
)
def test_verbalized_parser_reads_json_percentages(reply: str, expected: list[float]) -> None:
    np.testing.assert_allclose(parse_verbalized(reply, "ABC"), expected)


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("I think most people would choose A.", "at the start of the reply"),
        ('Sure! {"A": 40, "B": 60, "C": 0}', "at the start of the reply"),
        ('{"A": 40, "B": 60', "invalid JSON"),
        ('{"A": 40, "B": 60}', "keys found: ['A', 'B']"),
        ('{"A": 40, "B": 30, "C": 20, "D": 10}', "keys found: ['A', 'B', 'C', 'D']"),
        ('{"a": 40, "b": 30, "c": 30}', "keys found"),
        ('{"A": "forty", "B": 30, "C": 30}', "non-negative number"),
        ('{"A": -10, "B": 60, "C": 50}', "non-negative number"),
        ('{"A": true, "B": 60, "C": 40}', "non-negative number"),
        ('{"A": 0, "B": 0, "C": 0}', "some positive percentage"),
        ("[40, 30, 30]", "at the start of the reply"),
    ],
)
def test_verbalized_parser_rejects_garbage_clearly(reply: str, why: str) -> None:
    with pytest.raises(OutputParseError) as err:
        parse_verbalized(reply, "ABC")
    message = str(err.value)
    assert why in message
    assert "a JSON object mapping each of the letters A, B, C to a percentage" in message  # what was expected
    assert repr(reply[:40])[1:-1][:20] in message  # what came
    assert "on_parse_error='uniform'" in message  # how to fix


def test_letter_mass_is_normalised_and_zero_mass_is_an_error() -> None:
    np.testing.assert_allclose(letter_distribution(np.array([0.2, 0.2, 0.1]), "ABC"), [0.4, 0.4, 0.2])
    with pytest.raises(OutputParseError, match="option letters A, B"):
        letter_distribution(np.zeros(2), "AB")


@pytest.mark.parametrize(
    ("reply", "index"),
    [
        ("B", 1),
        ("(C)", 2),
        ("A. A great deal", 0),
        ("Answer: B", 1),
        ("The correct answer is C.", 2),
        ("I would choose option A.", 0),
        (" C\nbecause", 2),
        ("A fair amount", None),  # option text without its letter names no letter
        ("I think the government should act", None),
        ("the answer is a good one", None),
        ("E", None),  # not an option of a three-option question
        ("", None),
    ],
)
def test_sampled_answer_names_a_letter(reply: str, index: int | None) -> None:
    assert parse_letter(reply, "ABC") == index


def test_sampled_answers_become_smoothed_shares() -> None:
    dist, unparsed = sampled_distribution(["A", "A. yes", "B", "no idea"], "ABC", alpha=0.5)
    np.testing.assert_allclose(dist, np.array([2.5, 1.5, 0.5]) / 4.5)
    assert unparsed == 1
    with pytest.raises(OutputParseError, match="answers naming one option letter"):
        sampled_distribution(["no idea", "maybe"], "ABC", alpha=0.5)


# -- option orders -----------------------------------------------------------------------------------


def test_orders_are_identity_reversal_then_rotations() -> None:
    assert option_orders(2, 5) == [(0, 1), (1, 0)]
    assert option_orders(4, 1) == [(0, 1, 2, 3)]
    orders = option_orders(4, 100)
    assert orders[:4] == [(0, 1, 2, 3), (3, 2, 1, 0), (1, 2, 3, 0), (2, 1, 0, 3)]
    assert len(orders) == len(set(orders)) == 8
    assert all(sorted(o) == [0, 1, 2, 3] for o in orders)
    assert option_orders(4, 100) == orders  # deterministic


def test_refusals_keep_their_place_in_every_order() -> None:
    orders = option_orders(5, 100, fixed=[4])
    assert orders[:2] == [(0, 1, 2, 3, 4), (3, 2, 1, 0, 4)]
    assert len(orders) == 8 and all(o[4] == 4 and sorted(o) == list(range(5)) for o in orders)
    assert option_orders(3, 10, fixed=[1, 2]) == [(0, 1, 2)]  # one movable option: nothing to permute


def test_unpermute_inverts_permute() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    for order in itertools.permutations(range(4)):
        np.testing.assert_allclose(unpermute(permute(p, order), order), p)
    # letter j shows option order[j]: the model's mass on letter A belongs to option 3 in reversed order
    np.testing.assert_allclose(unpermute(np.array([1.0, 0, 0, 0]), (3, 2, 1, 0)), [0, 0, 0, 1.0])


def test_averaging_orders_cancels_letter_bias() -> None:
    orders = option_orders(3, 2)
    always_a = [np.array([1.0, 0.0, 0.0])] * 2  # a model that always says "A", whatever A is
    np.testing.assert_allclose(average_orders(always_a, orders), [0.5, 0.0, 0.5])
    truth = np.array([0.6, 0.3, 0.1])
    unbiased = [permute(truth, o) for o in option_orders(3, 6)]
    np.testing.assert_allclose(average_orders(unbiased, option_orders(3, 6)), truth)


# -- parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"method": "logits"}, "'method' parameter of LMPolicy must be one of ['logprobs', 'verbalized', 'sampled']"),
        ({"steering": "bio"}, "'steering'"),
        ({"on_parse_error": "ignore"}, "'on_parse_error'"),
        ({"permutations": 0}, "'permutations' parameter of LMPolicy must be an integer >= 1"),
        ({"temperature": 0.0}, "'temperature' parameter of LMPolicy must be a number > 0; got 0.0"),
        ({"lora_steps": 5, "base_url": "http://127.0.0.1:1/v1"}, "LoRA fine-tuning needs local weights"),
    ],
)
def test_bad_parameters_say_what_is_allowed(params: dict[str, object], needle: str) -> None:
    policy = build("lm", **params)  # __init__ only stores; fit checks, before it loads anything
    with pytest.raises(ConfigError) as err:
        policy.fit(Norms())
    assert needle in str(err.value)


def test_defaults_are_zero_shot_smollm2_with_two_orders() -> None:
    params = build("lm").get_params()
    assert params["model"] == "smollm2" and params["method"] == "logprobs" and params["steering"] == "persona"
    assert params["permutations"] == 2 and params["lora_steps"] == 0 and params["device"] == "auto"
