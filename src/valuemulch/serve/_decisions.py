"""What every answering route does: check the community, answer inside the bounds, audit, then reply."""

from __future__ import annotations

from typing import Any

import numpy as np

from valuemulch.bounds import BoundedAnswer
from valuemulch.serve._audit import AuditLog, AuditUnavailable, Record, request_hash
from valuemulch.serve._budget import Budget
from valuemulch.serve._deployment import Deployment
from valuemulch.serve._middleware import ServiceError
from valuemulch.types import Question

AUDIT_RETRY_AFTER_S = 5


def community_of(d: Deployment, community: str) -> str:
    """``community`` when the model answers for it, else 404 naming where the known ones are listed."""
    if community not in d.communities:
        raise ServiceError(
            404,
            "unknown_community",
            f"Unknown community '{community}'; GET /v1/communities lists the {len(d.communities)} this model answers for.",
            "community",
        )
    return community


def bounds_dict(answer: BoundedAnswer) -> dict[str, Any]:
    return {
        "masked": list(answer.masked),
        "refused": answer.refused,
        "reasons": [r.to_dict() for r in answer.reasons],
        "doubtful": list(answer.doubtful),
    }


def choose(answer: BoundedAnswer, seed: int | None) -> int | None:
    """The most likely option that may be chosen, or one sampled with ``seed`` among those; never a
    masked or doubtful option, and None when the answer is refused."""
    p = answer.choosable
    if p is None:
        return None
    if seed is None:
        return int(np.argmax(p))
    return int(np.random.default_rng(seed).choice(len(p), p=p))


def decide(
    d: Deployment,
    audit: AuditLog,
    body: bytes,
    endpoint: str,
    community: str,
    questions: list[Question],
    strength: float,
    budget: Budget,
) -> list[tuple[BoundedAnswer, Record]]:
    """Answer within ``budget``, then audit; the records are committed before the answers leave, none
    is written for a request stopped by its budget (the deadline is checked again just before), and a
    log that cannot be written (locked, full) makes the request a 503 with nothing sent."""
    budget.check_text(questions)
    results = d.answers(community, questions, strength, budget)
    budget.check_time()
    digest = request_hash(body)
    entries = [
        {
            "request_hash": digest,
            "community": community,
            "model_id": d.model_id,
            "certificate_id": d.certificate_id,
            "certified": d.certified,
            "endpoint": endpoint,
            "bounds": bounds_dict(answer),
            "answer": {
                "question": q.text,
                "options": list(q.options),
                "distribution": None if answer.distribution is None else answer.distribution.tolist(),
            },
        }
        for q, (answer, _) in zip(questions, results, strict=True)
    ]
    try:
        records = audit.append_many(entries)  # one transaction: every answer of the request is logged, or none
    except AuditUnavailable as err:
        raise ServiceError(
            503,
            "audit_unavailable",
            f"The answer could not be written to the audit log ({err}), so it was not sent and nothing was logged. "
            f"Retry after {AUDIT_RETRY_AFTER_S} s; if it persists, the operator should check the log's disk.",
            headers={"Retry-After": str(AUDIT_RETRY_AFTER_S)},
        ) from None
    return [(answer, record) for (answer, _), record in zip(results, records, strict=True)]
