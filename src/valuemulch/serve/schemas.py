"""The decision service's request and response bodies, apart from the internal types.

A request model's size limits come from `Settings.limits`: the ``*Base`` classes hold the fields and
the checks that do not depend on a limit, and `request_models` derives, for one `Limits`, the models
the routes validate with (same names, so the OpenAPI schema is unchanged).

Types are strict at this edge: a number is a JSON number (``true`` and ``"5"`` are refused, never read
as 1 and 5), texts hold no control characters but newline and tab, and options must stay distinct
after `option_key` folds away what a reader cannot see (docs/serve.md, "Input rules").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from valuemulch.bounds import canonical
from valuemulch.settings import Limits
from valuemulch.types import Question

MODEL_PREFIX = "valuemulch/"
_QUESTION_DOC = "The question's wording."
_OPTIONS_DOC = "Answer options in order."
_COMMUNITY_DOC = "A community id from /v1/communities."


#: Control characters a text may hold: the rest (C0, DEL, C1) are refused, never stored or echoed.
ALLOWED_CONTROLS = frozenset("\n\t")


def _encodable(text: str, what: str = "") -> str:
    """JSON allows lone surrogates (\\ud800) and control characters; nothing downstream can store or
    hash a surrogate, and a control character hides in logs and audit records, so both are refused here."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what or 'text'} is not valid Unicode (a lone surrogate such as \\ud800)") from None
    for i, c in enumerate(text):
        if unicodedata.category(c) == "Cc" and c not in ALLOWED_CONTROLS:
            raise ValueError(
                f"{what + ': ' if what else ''}expected text without control characters (newline and tab are allowed), "
                f"got {c!r} at position {i}; remove it"
            )
    return text


def option_key(text: str) -> str:
    """What two options of one question must not share: the text as tier 1 reads it (`canonical`:
    NFKC, invisible format characters removed, look-alike letters mapped to Latin, letter-spacing
    collapsed), case folded. Two options equal here would look the same to a reader and to the bounds."""
    return canonical(text).casefold()


class QuestionBase(BaseModel):
    """A question as a request states it; `request_models` adds the length limits."""

    model_config = ConfigDict(extra="forbid")
    max_option_chars: ClassVar[int] = Limits().max_option_chars

    question: str = Field(min_length=1, description=_QUESTION_DOC)
    options: list[str] = Field(min_length=2, description=_OPTIONS_DOC)
    ordinal: list[Annotated[float, Strict()] | None] | None = Field(
        None, description="Each option's position on the scale, null off it."
    )

    @field_validator("question")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must contain text, not only spaces")
        return _encodable(v)

    @field_validator("options")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        for i, o in enumerate(v):
            if not o.strip():
                raise ValueError(f"option {i} is empty")
            _encodable(o, f"option {i}")
            if len(o) > cls.max_option_chars:
                raise ValueError(f"option {i} has {len(o)} characters; at most {cls.max_option_chars}")
            key = option_key(o)
            if key in seen:
                raise ValueError(
                    "options must be distinct: expected options that differ in more than case, spacing, invisible "
                    f"characters or look-alike letters, got option {i} ({o!r}) the same as option {seen[key]} "
                    f"({v[seen[key]]!r}); remove one"
                )
            seen[key] = i
        return v

    @model_validator(mode="after")
    def _ordinal(self) -> QuestionBase:
        if self.ordinal is not None and len(self.ordinal) != len(self.options):
            raise ValueError(f"ordinal needs {len(self.options)} entries (one per option), got {len(self.ordinal)}")
        if self.ordinal is not None and any(x is not None and not (np.isfinite(x) and abs(x) <= 1e6) for x in self.ordinal):
            raise ValueError("ordinal positions must be finite numbers within +-1e6, or null")
        return self

    def to_question(self, qid: str) -> Question:
        ordinal = tuple(self.ordinal) if self.ordinal is not None else None
        return Question(qid, self.question, tuple(self.options), ordinal)


class DecideBase(QuestionBase):
    community: str = Field(min_length=1, description=_COMMUNITY_DOC)
    strength: float = Field(
        1.0, ge=0.0, le=1.0, strict=True, description="Tier 3: how far to personalise, 0 = the population's answer."
    )
    seed: int | None = Field(
        None, ge=0, le=2**32 - 1, strict=True, description="Sample the choice with this seed; without it, the most likely option."
    )

    _community = field_validator("community")(_encodable)


class DistributionBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    community: str = Field(min_length=1)
    questions: list[QuestionBase] = Field(min_length=1)
    strength: float = Field(1.0, ge=0.0, le=1.0, strict=True)

    _community = field_validator("community")(_encodable)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None


class ChatBase(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI clients send fields we do not use
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    logprobs: bool | None = Field(None, strict=True)
    top_logprobs: int | None = Field(None, ge=0, le=20, strict=True)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, strict=True)
    n: int | None = Field(None, ge=1, le=1, strict=True)


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str = Field(min_length=1, max_length=300)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: dict[str, Any] = Field(description="A tier-2 policy, as in a policy file (max_divergence, allowed_communities, ...).")


class BoundsOut(BaseModel):
    masked: list[int]
    refused: bool
    reasons: list[dict[str, Any]]
    doubtful: list[int] = Field(
        description="Unmasked options whose tier-1 score is in doubt: they keep their mass but are never chosen."
    )


class DecideOut(BaseModel):
    decision_id: int
    distribution: list[float] | None
    choice: int | None
    choice_text: str | None
    bounds: BoundsOut
    model_id: str
    certificate_id: str | None
    certified: bool


class DistributionItem(BaseModel):
    decision_id: int
    distribution: list[float] | None
    choice: int | None = Field(
        description="The option /v1/decide would choose (never a masked or doubtful one); null when refused."
    )
    bounds: BoundsOut


class DistributionOut(BaseModel):
    results: list[DistributionItem]
    model_id: str
    certificate_id: str | None
    certified: bool


@dataclass(frozen=True)
class RequestModels:
    """The request models for one set of limits: what the routes validate bodies with."""

    limits: Limits
    question: type[QuestionBase]
    decide: type[DecideBase]
    distribution: type[DistributionBase]
    chat: type[ChatBase]


def request_models(limits: Limits) -> RequestModels:
    """Request models whose size limits are ``limits``."""

    class QuestionIn(QuestionBase):
        max_option_chars: ClassVar[int] = limits.max_option_chars
        question: str = Field(min_length=1, max_length=limits.max_question_chars, description=_QUESTION_DOC)
        options: list[str] = Field(min_length=2, max_length=limits.max_options, description=_OPTIONS_DOC)

    class DecideIn(QuestionIn, DecideBase):
        community: str = Field(min_length=1, max_length=limits.max_community_chars, description=_COMMUNITY_DOC)

    class DistributionIn(DistributionBase):
        community: str = Field(min_length=1, max_length=limits.max_community_chars)
        questions: list[QuestionIn] = Field(min_length=1, max_length=limits.max_batch)  # type: ignore[assignment]

    class ChatIn(ChatBase):
        model: str = Field(min_length=1, max_length=limits.max_community_chars + len(MODEL_PREFIX))

    return RequestModels(limits, QuestionIn, DecideIn, DistributionIn, ChatIn)


Handler = TypeVar("Handler", bound=Callable[..., Any])


def with_body(handler: Handler, model: type[BaseModel]) -> Handler:
    """Let FastAPI validate ``handler``'s ``payload`` with ``model``, the limits-bound subclass of the
    type it is annotated with; FastAPI reads the body's model from the annotation, which is static."""
    handler.__annotations__["payload"] = model
    return handler
