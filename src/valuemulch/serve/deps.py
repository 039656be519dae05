"""The routes' dependencies: what `create_app` put in ``app.state``, the raw body, and admin authentication."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from valuemulch.serve._audit import AuditLog
from valuemulch.serve._budget import Budget
from valuemulch.serve._deployment import Deployment, LiveDeployment
from valuemulch.serve._middleware import ServiceError
from valuemulch.settings import Settings


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency that hands a route what `create_app` put in ``app.state`` under ``name``."""

    async def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)

    return dependency


async def _deployment(request: Request) -> Deployment:
    """The deployment answering now (admin reload and promote swap it under a lock)."""
    live: LiveDeployment = request.app.state.live
    return live.current


def answering(request: Request) -> tuple[Deployment, AuditLog, bytes, Budget]:
    """What an answering route needs: the current deployment, the audit log, the request body
    exactly as received (kept by `BodyLimit`, so anyone holding it can find its audit record) and
    the request's budget, whose clock starts now. 503 while the service is still starting.

    A plain call, not FastAPI dependencies: each dependency costs about 10 µs per request on the
    hottest routes, for values that are only attribute reads.
    """
    state = request.app.state
    state.readiness.require()
    body = bytes(getattr(request.state, "raw_body", b""))
    return state.live.current, state.audit, body, Budget(state.settings.limits)


def require_admin(request: Request) -> None:
    """An admin API key as ``Authorization: Bearer <key>``, compared (hashed) in constant time with the configured hash."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        raise ServiceError(401, "unauthorized", "Admin endpoints need 'Authorization: Bearer <admin key>'.")
    expected = request.app.state.settings.serve.admin_key_hash
    if expected is None:
        raise ServiceError(403, "forbidden", "Admin endpoints are disabled: start `valuemulch serve` with --admin-key-file.")
    given = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    if not hmac.compare_digest(given, expected):
        raise ServiceError(403, "forbidden", "The admin key is not valid.")


SettingsDep = Annotated[Settings, Depends(_state("settings"))]
LiveDep = Annotated[LiveDeployment, Depends(_state("live"))]
DeploymentDep = Annotated[Deployment, Depends(_deployment)]
AuditDep = Annotated[AuditLog, Depends(_state("audit"))]
AdminDep = Depends(require_admin)
