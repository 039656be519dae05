"""``POST /v1/chat/completions``: OpenAI-compatible; ``model`` names a community, the reply is a letter."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import ValidationError

from valuemulch.bounds import BoundedAnswer
from valuemulch.serve._chat import LETTERS, parse_multiple_choice
from valuemulch.serve._decisions import bounds_dict, choose, community_of, decide
from valuemulch.serve._middleware import ServiceError
from valuemulch.serve.deps import answering
from valuemulch.serve.schemas import MODEL_PREFIX, ChatBase, RequestModels, with_body
from valuemulch.types import Question

REFUSAL = "I can't answer that: every option crosses a line I won't cross."
UNCLEAR = "I can't answer that: no option is clearly inside the lines I won't cross."


def _question(payload: ChatBase, models: RequestModels) -> Question:
    """The multiple-choice question in the last user message, validated as /v1/decide validates one."""
    user = [m for m in payload.messages if m.role == "user"]
    if not user or not isinstance(user[-1].content, str):
        raise ServiceError(
            422, "no_multiple_choice", "Expected a user message with text content holding the question.", "messages"
        )
    text, options = parse_multiple_choice(user[-1].content, models.limits)
    try:
        question = models.question(question=text[: models.limits.max_question_chars], options=options, ordinal=None)
    except ValidationError as err:
        first = err.errors()[0]
        raise ServiceError(
            422,
            "invalid_request",
            f"messages: {str(first.get('msg', 'invalid question')).removeprefix('Value error, ')}",
            "messages",
        ) from None
    return question.to_question(f"request:{uuid.uuid4().hex[:12]}")


def _logprobs(answer: BoundedAnswer, choice: int | None, top_n: int | None) -> dict[str, Any] | None:
    if answer.distribution is None or choice is None:
        return None
    top = [
        {"token": LETTERS[i], "logprob": float(np.log(p)), "bytes": list(LETTERS[i].encode())}
        for i, p in sorted(enumerate(answer.distribution), key=lambda x: (x[0] != choice, -x[1]))  # the choice first
        if p > 0
    ][: top_n or 0]
    return {
        "content": [
            {
                "token": LETTERS[choice],
                "logprob": float(np.log(answer.distribution[choice])),
                "bytes": list(LETTERS[choice].encode()),
                "top_logprobs": top,
            }
        ]
    }


def build_router(models: RequestModels) -> APIRouter:
    """The route, validating bodies with ``models`` (their limits come from the settings)."""
    api = APIRouter()

    def chat(payload: ChatBase, request: Request) -> dict[str, Any]:
        """OpenAI-compatible: ``model`` names a community (``valuemulch/<community>``); the last user
        message holds a multiple-choice question; the reply is the bounded choice's letter."""
        d, audit, body, budget = answering(request)
        if not payload.model.startswith(MODEL_PREFIX):
            raise ServiceError(
                404, "unknown_community", f"model must be '{MODEL_PREFIX}<community>', got '{payload.model}'.", "model"
            )
        community = community_of(d, payload.model.removeprefix(MODEL_PREFIX))
        question = _question(payload, models)
        [(answer, record)] = decide(d, audit, body, "/v1/chat/completions", community, [question], 1.0, budget)
        choice = choose(answer, payload.seed)
        unclear = answer.refused and answer.reasons[-1].code == "no_clear_option"
        return {
            "id": f"chatcmpl-{record.seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": (UNCLEAR if unclear else REFUSAL) if choice is None else LETTERS[choice],
                    },
                    "logprobs": _logprobs(answer, choice, payload.top_logprobs) if payload.logprobs else None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
            "valuemulch": {
                "decision_id": record.seq,
                "bounds": bounds_dict(answer),
                "certified": d.certified,
                "certificate_id": d.certificate_id,
            },
        }

    api.post("/v1/chat/completions", responses={404: {"description": "unknown community"}})(with_body(chat, models.chat))
    return api
