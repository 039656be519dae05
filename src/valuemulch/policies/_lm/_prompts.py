"""Prompts: community steering (personas) and multiple-choice questions with lettered options.

Steering follows OpinionQA's "portray" prompts (Santurkar et al. 2023): "Answer the following question
as if in politics today, you considered yourself a Democrat." Countries follow GlobalOpinionQA's
cross-national prompting (Durmus et al. 2023: "How would someone from <country> answer"), phrased the
same way. A community with no known phrasing is named as it is: "as if you were a member of the
community 'teachers'", so every id gets a persona and none is silently dropped. The verbalized
format (a JSON object of percentages per option letter) follows Meister et al. 2024.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, get_args

from valuemulch.backbones import LETTERS, Prompt
from valuemulch.errors import ConfigError
from valuemulch.policies._lm._fewshot import Shot
from valuemulch.types import Question

Method = Literal["logprobs", "verbalized", "sampled"]
Steering = Literal["persona", "none", "few-shot"]
METHODS: tuple[Method, ...] = get_args(Method)
STEERINGS: tuple[Steering, ...] = get_args(Steering)

#: OpinionQA's wording per attribute; ``{}`` takes the group's value, in the words `_value_words` picks.
_ATTRIBUTES = {
    "POLPARTY": "in politics today, you considered yourself {}",
    "POLIDEOLOGY": "your political views were {}",
    "RELIG": "your present religion was {}",
    "RACE": "you were {}",
    "EDUCATION": "the highest level of education you have completed is {}",
    "INCOME": "last year, your total family income from all sources, before taxes, was {}",
    "CREGION": "you currently resided in the {}",
    "SEX": "the sex you were assigned at birth were {}",
    "AGE": "you were {}",
}
#: Values whose words differ from the id (OpinionQA's own phrasing where it has one).
_VALUES = {
    "POLPARTY:Democrat": "a Democrat",
    "POLPARTY:Republican": "a Republican",
    "POLPARTY:Independent": "an Independent",
    "EDUCATION:College graduate/some postgrad": "college or some post graduate",
    "EDUCATION:Postgraduate": "a postgraduate degree",
    "EDUCATION:High school graduate": "high school",
    "EDUCATION:Some college, no degree": "some college, but no degree",
    "EDUCATION:Associate's degree": "an associate's degree",
    "AGE:65+": "65 years old or older",
}
_LOWER = {"POLIDEOLOGY", "EDUCATION", "INCOME", "SEX"}  # read as common nouns mid-sentence
_RANGE = re.compile(r"^(\$?[\d,]+)-(\$?[\d,]+)$")

#: GlobalOpinionQA's country labels (parentheses such as "(Current national sample)" are dropped first).
# fmt: off
_COUNTRIES = frozenset((
    "Albania", "Andorra", "Angola", "Argentina", "Armenia", "Australia", "Austria", "Azerbaijan", "Bangladesh", "Belarus",
    "Belgium", "Bolivia", "Bosnia Herzegovina", "Brazil", "Britain", "Bulgaria", "Burkina Faso", "Canada", "Chile", "China",
    "Colombia", "Croatia", "Cyprus", "Czechia", "Denmark", "Ecuador", "Egypt", "El Salvador", "Estonia", "Ethiopia",
    "Finland", "France", "Georgia", "Germany", "Ghana", "Great Britain", "Greece", "Guatemala", "Honduras", "Hungary",
    "Iceland", "India", "Indonesia", "Iran", "Iraq", "Israel", "Italy", "Ivory Coast", "Japan", "Jordan", "Kazakhstan",
    "Kenya", "Kuwait", "Kyrgyzstan", "Latvia", "Lebanon", "Libya", "Lithuania", "Malaysia", "Maldives", "Mali", "Mexico",
    "Mongolia", "Montenegro", "Morocco", "Myanmar", "Netherlands", "New Zealand", "Nicaragua", "Nigeria", "North Macedonia",
    "Northern Ireland", "Norway", "Pakistan", "Peru", "Philippines", "Poland", "Portugal", "Puerto Rico", "Romania",
    "Russia", "Senegal", "Serbia", "Singapore", "Slovakia", "Slovenia", "South Africa", "South Korea", "Spain", "Sweden",
    "Switzerland", "Taiwan", "Tajikistan", "Tanzania", "Thailand", "Tunisia", "Turkey", "Uganda", "Ukraine",
    "United States", "Uruguay", "Uzbekistan", "Venezuela", "Vietnam", "Zimbabwe",
))
# fmt: on
_COUNTRY_NAMES = {
    "S. Africa": "South Africa",
    "S. Korea": "South Korea",
    "Czech Rep.": "the Czech Republic",
    "Palest. ter.": "the Palestinian territories",
    "Hong Kong SAR": "Hong Kong",
    "Macau SAR": "Macau",
    "Taiwan ROC": "Taiwan",
    "Bosnia Herzegovina": "Bosnia and Herzegovina",
    "United States": "the United States",
    "Netherlands": "the Netherlands",
    "Philippines": "the Philippines",
}


def option_letters(n_options: int) -> str:
    if n_options > len(LETTERS):
        raise ConfigError(
            f"A question with {n_options} options cannot be lettered A-Z; the lm policy handles at most {len(LETTERS)} options."
        )
    return LETTERS[:n_options]


def _country(community: str) -> str | None:
    base = re.sub(r"\s*\(.*\)\s*$", "", community).strip()
    if base in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[base]
    return base if base in _COUNTRIES else None


def _value_words(attribute: str, value: str) -> str:
    if f"{attribute}:{value}" in _VALUES:
        return _VALUES[f"{attribute}:{value}"]
    if attribute == "AGE":
        match = _RANGE.match(value)
        return f"between {match[1]} and {match[2]} years old" if match else f"{value} years old"
    if attribute == "INCOME" and (match := _RANGE.match(value)):
        return f"between {match[1]} and {match[2]}"
    return value[0].lower() + value[1:] if attribute in _LOWER else value


def persona(community: str) -> str:
    """The clause that completes "Answer the following question as if ..." for a community id."""
    attribute, sep, value = community.partition(":")
    if sep and attribute in _ATTRIBUTES and value.strip() and value != "Other":
        return _ATTRIBUTES[attribute].format(_value_words(attribute, value.strip()))
    country = None if sep else _country(community)
    if country is not None:
        return f"you were someone from {country}"
    return f"you were a member of the community '{community}'"


def question_block(question: Question, order: Sequence[int]) -> str:
    """The question and its options, lettered in the shown ``order`` (``order[j]`` is shown as letter j)."""
    letters = option_letters(question.n_options)
    lines = [f"Question: {question.text.strip()}"]
    lines += [f"{letter}. {question.options[i]}" for letter, i in zip(letters, order, strict=True)]
    return "\n".join(lines)


def shots_block(shots: Sequence[Shot]) -> str:
    """The few-shot examples: each training question (survey order) and the community's percentages."""
    lines = [f"Here is how people like you answered {len(shots)} similar survey questions, in percent per option:"]
    for shot in shots:
        letters = option_letters(shot.question.n_options)
        shares = ", ".join(f'"{x}": {round(100 * float(v))}' for x, v in zip(letters, shot.distribution, strict=True))
        lines += ["", question_block(shot.question, range(shot.question.n_options)), f"Answer: {{{shares}}}"]
    return "\n".join(lines)


def build_prompt(
    community: str, question: Question, order: Sequence[int], *, method: Method, steering: Steering, shots: Sequence[Shot] = ()
) -> Prompt:
    """One chat turn: the steering (a persona line, plus the community's own answers to similar
    questions for ``few-shot``; nothing for ``none``), the question, the answer format."""
    letters = option_letters(question.n_options)
    parts = [f"Answer the following question as if {persona(community)}."] if steering != "none" else []
    if steering == "few-shot" and shots:
        parts.append(shots_block(shots))
    parts.append(question_block(question, order))
    prefill = ""
    if method == "verbalized":
        who = "people like you" if steering != "none" else "people"
        keys = ", ".join(f'"{letter}"' for letter in letters)
        parts.append(
            f"Estimate what percentage of {who} would choose each option. Reply with only a JSON object whose keys are "
            f"the letters {keys} and whose values are percentages that sum to 100."
        )
        prefill = f'{{"{letters[0]}": '  # local models only: start the object so a small model writes JSON
    else:
        parts.append(f"Reply with the letter of one option ({letters[0]}-{letters[-1]}) only.")
    return Prompt((("user", "\n\n".join(parts)),), prefill)
