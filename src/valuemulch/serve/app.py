"""The decision service: a FastAPI app that answers *for a community*, inside the three tiers of bounds.

Every answer goes through ``apply_bounds`` (the function certification measured), is written to the
hash-chained audit log, and only then returned. Requests are validated before any model runs, and
every error has one JSON shape: ``{"error": {"status", "code", "message", "field"}}``.

`create_app` builds one app from a `Settings` and a deployment loaded beforehand (`load_deployment`);
nothing lives at module level, so tests and the CLI build as many apps as they like.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from valuemulch.serve._audit import AuditLog
from valuemulch.serve._deployment import Deployment, LiveDeployment
from valuemulch.serve._middleware import BodyLimit, install_error_handlers
from valuemulch.serve.routes import admin, chat, communities, decide, distribution, health
from valuemulch.serve.schemas import request_models
from valuemulch.settings import Settings

#: Where the API docs' JavaScript, CSS and icon are served from (by this service, never a CDN).
DOCS_ASSETS = "/docs-assets"


def create_app(settings: Settings, deployment: Deployment) -> FastAPI:
    """The service for ``deployment``: opens the audit log at ``settings.audit``, warms the model up and
    wires the routes; request limits are ``settings.limits``. Admin routes may swap the deployment later."""
    audit = AuditLog(settings.audit)
    deployment.warm_up()
    app = FastAPIOffline(  # /docs and /redoc with Swagger UI and ReDoc served from the package: no CDN, works offline
        title="ValueMulch decision service",
        version="1",
        description="Answers for a community inside three tiers of bounds; every decision is audited.",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
    )
    models = request_models(settings.limits)
    app.state.settings = settings
    app.state.live = LiveDeployment(deployment)
    app.state.audit = audit
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes)
    install_error_handlers(app)
    app.include_router(decide.build_router(models))
    app.include_router(distribution.build_router(models))
    app.include_router(communities.router)
    app.include_router(health.router)
    app.include_router(chat.build_router(models))
    app.include_router(admin.router)
    return app
