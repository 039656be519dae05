"""``GET /v1/communities``: who this model answers for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from valuemulch.serve.deps import DeploymentDep

router = APIRouter()


@router.get("/v1/communities")
def communities(d: DeploymentDep) -> dict[str, Any]:
    """The communities this model answers for, with their certified 1-JSD where there is one."""
    per = (d.certificate or {}).get("evaluation", {}).get("seen", {}).get("per_community", {}) if d.certified else {}
    return {
        "model_id": d.model_id,
        "certified": d.certified,
        "communities": [{"id": c, "certified_one_minus_jsd": per.get(c, {}).get("one_minus_jsd")} for c in d.communities],
    }
