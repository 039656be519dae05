"""``GET /v1/health``: whether the service is ready, which model serves, and how many decisions the audit log holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from valuemulch.serve.deps import AuditDep, DeploymentDep

router = APIRouter()


@router.get("/v1/health", responses={503: {"description": "still loading its models, or failed to"}})
def health(d: DeploymentDep, audit: AuditDep, request: Request) -> JSONResponse:
    """``ready`` (200) once every model is loaded; ``starting`` or ``failed`` (503) before, so a load
    balancer sends nothing to a service that would answer slowly or not at all."""
    readiness = request.app.state.readiness
    body: dict[str, Any] = {
        "status": readiness.status,
        "model_id": d.model_id,
        "certificate_id": d.certificate_id,
        "certified": d.certified,
        "audit_records": audit.count(),
        "warm_up_seconds": readiness.seconds,
    }
    if readiness.error is not None:
        body["error"] = readiness.error
    ready = readiness.status == "ready"
    return JSONResponse(body, status_code=200 if ready else 503, headers={} if ready else {"Retry-After": str(readiness.RETRY_AFTER_S)})
