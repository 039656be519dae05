"""``POST /v1/decide``: one question for one community."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from valuemulch.serve._decisions import bounds_dict, choose, community_of, decide
from valuemulch.serve.deps import answering
from valuemulch.serve.schemas import DecideBase, DecideOut, RequestModels, with_body


def build_router(models: RequestModels) -> APIRouter:
    """The route, validating bodies with ``models`` (their limits come from the settings)."""
    api = APIRouter()

    def decide_one(payload: DecideBase, request: Request) -> JSONResponse:
        """One question for one community: the bounded distribution and a choice."""
        d, audit, body, budget = answering(request)
        community = community_of(d, payload.community)
        question = payload.to_question(f"request:{uuid.uuid4().hex[:12]}")
        [(answer, record)] = decide(d, audit, body, "/v1/decide", community, [question], payload.strength, budget)
        choice = choose(answer, payload.seed)
        # Built as plain JSON (the schema is DecideOut): validating our own output again costs more than the rest.
        return JSONResponse(
            {
                "decision_id": record.seq,
                "distribution": None if answer.distribution is None else answer.distribution.tolist(),
                "choice": choice,
                "choice_text": None if choice is None else question.options[choice],
                "bounds": bounds_dict(answer),
                "model_id": d.model_id,
                "certificate_id": d.certificate_id,
                "certified": d.certified,
            }
        )

    api.post(
        "/v1/decide",
        response_model=DecideOut,
        responses={404: {"description": "unknown community"}, 422: {"description": "invalid request"}},
    )(with_body(decide_one, models.decide))
    return api
