"""``GET /v1/health``: which model serves, and how many decisions the audit log holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from valuemulch.serve.deps import AuditDep, DeploymentDep

router = APIRouter()


@router.get("/v1/health")
def health(d: DeploymentDep, audit: AuditDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "model_id": d.model_id,
        "certificate_id": d.certificate_id,
        "certified": d.certified,
        "audit_records": audit.count(),
    }
