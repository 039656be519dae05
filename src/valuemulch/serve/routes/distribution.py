"""``POST /v1/distribution``: a batch of questions for one community."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from valuemulch.serve._decisions import bounds_dict, choose, community_of, decide
from valuemulch.serve.deps import answering
from valuemulch.serve.schemas import BoundsOut, DistributionBase, DistributionItem, DistributionOut, RequestModels, with_body


def build_router(models: RequestModels) -> APIRouter:
    """The route, validating bodies with ``models`` (their limits come from the settings)."""
    api = APIRouter()

    def distribution(payload: DistributionBase, request: Request) -> DistributionOut:
        """A batch of questions for one community: bounded distributions, one audit record each."""
        d, audit, body, budget = answering(request)
        community = community_of(d, payload.community)
        questions = [q.to_question(f"request:{uuid.uuid4().hex[:12]}") for q in payload.questions]
        results = decide(d, audit, body, "/v1/distribution", community, questions, payload.strength, budget)
        items = [
            DistributionItem(
                decision_id=r.seq,
                distribution=None if a.distribution is None else a.distribution.tolist(),
                choice=choose(a, None),
                bounds=BoundsOut(**bounds_dict(a)),
            )
            for a, r in results
        ]
        return DistributionOut(results=items, model_id=d.model_id, certificate_id=d.certificate_id, certified=d.certified)

    api.post("/v1/distribution", response_model=DistributionOut, responses={404: {"description": "unknown community"}})(
        with_body(distribution, models.distribution)
    )
    return api
