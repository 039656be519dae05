"""The routes' dependencies: what `create_app` put in ``app.state``, the raw body, and admin authentication."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from valuemulch.serve._audit import AuditLog
from valuemulch.serve._deployment import Deployment, LiveDeployment
from valuemulch.serve._middleware import ServiceError
from valuemulch.serve.schemas import RequestModels
from valuemulch.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _live(request: Request) -> LiveDeployment:
    live: LiveDeployment = request.app.state.live
    return live


async def _deployment(request: Request) -> Deployment:
    live: LiveDeployment = request.app.state.live
    return live.current


async def _audit(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


async def _models(request: Request) -> RequestModels:
    models: RequestModels = request.app.state.models
    return models


async def _raw_body(request: Request) -> bytes:
    """The request body exactly as received (kept by `BodyLimit`), so anyone holding it can find its audit record."""
    return bytes(getattr(request.state, "raw_body", b""))


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


SettingsDep = Annotated[Settings, Depends(_settings)]
LiveDep = Annotated[LiveDeployment, Depends(_live)]
DeploymentDep = Annotated[Deployment, Depends(_deployment)]
AuditDep = Annotated[AuditLog, Depends(_audit)]
ModelsDep = Annotated[RequestModels, Depends(_models)]
RawBodyDep = Annotated[bytes, Depends(_raw_body)]
AdminDep = Depends(require_admin)
