"""The decision service: a FastAPI app that answers *for a community*, inside the three tiers of bounds.

Every answer goes through ``apply_bounds`` (the function certification measured), is written to the
hash-chained audit log, and only then returned. Requests are validated before any model runs, and
every error has one JSON shape: ``{"error": {"status", "code", "message", "field"}}``.

`create_app` builds one app from a `Settings` and a deployment loaded beforehand (`load_deployment`);
nothing lives at module level, so tests and the CLI build as many apps as they like.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from valuemulch.certify import PRIVATE_FILE, load_private_key
from valuemulch.errors import ConfigError
from valuemulch.filemodes import loose_modes
from valuemulch.serve._audit import AuditLog
from valuemulch.serve._budget import RateLimit
from valuemulch.serve._deployment import Deployment, LiveDeployment, Readiness
from valuemulch.serve._middleware import BodyLimit, install_error_handlers
from valuemulch.serve.routes import admin, chat, communities, decide, distribution, health
from valuemulch.serve.schemas import request_models
from valuemulch.settings import Settings

log = logging.getLogger("valuemulch.serve")


def service_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs the audit log's checkpoints: this machine's signing key (``settings.keys``)."""
    path = settings.keys / PRIVATE_FILE
    try:
        return load_private_key(path)
    except ConfigError as err:
        raise ConfigError(
            f"The service signs its audit log's checkpoints with its signing key, and cannot use {path}: {err} "
            "(`valuemulch keys init` makes a key; VALUEMULCH_KEYS points at another key directory)."
        ) from None


def warn_loose_modes(settings: Settings) -> list[str]:
    """Log one warning per file or directory the service uses that other users may read; returns them."""
    paths = [settings.audit, settings.audit.parent, settings.registry, settings.registry.parent, settings.cache, settings.keys]
    paths += [settings.cache / "embeddings.sqlite", settings.cache / "guard.sqlite"]
    loose = loose_modes(paths)
    for found in loose:
        log.warning("%s: other users can reach it; chmod it (files 600, directories 700).", found)
    return loose


#: Where the API docs' JavaScript, CSS and icon are served from (by this service, never a CDN).
DOCS_ASSETS = "/docs-assets"


def create_app(settings: Settings, deployment: Deployment) -> FastAPI:
    """The service for ``deployment``: opens the audit log at ``settings.audit`` (checkpoints signed with
    `service_key`, one more at shutdown) and wires the routes; request limits are ``settings.limits``.
    At start it sizes the worker pool (``settings.serve.workers``) and loads every model in the
    background: health says ``starting`` until then, and answering routes refuse with 503. Admin
    routes may swap the deployment later."""
    serve = settings.serve
    audit = AuditLog(
        settings.audit,
        signing_key=service_key(settings),
        checkpoint_every=serve.audit_checkpoint_every,
        busy_timeout=serve.audit_busy_timeout,
        max_bytes=serve.audit_max_bytes,
    )
    warn_loose_modes(settings)
    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.serve.workers
        readiness.start(deployment)
        yield
        audit.close()  # a clean shutdown ends the log on a signed checkpoint

    app = FastAPIOffline(  # /docs and /redoc with Swagger UI and ReDoc served from the package: no CDN, works offline
        title="ValueMulch decision service",
        version="1",
        description="Answers for a community inside three tiers of bounds; every decision is audited.",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        lifespan=lifespan,
    )
    models = request_models(settings.limits)
    app.state.settings = settings
    app.state.live = LiveDeployment(deployment)
    app.state.audit = audit
    app.state.readiness = readiness
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_body_bytes, timeout=settings.limits.body_timeout_s)
    app.add_middleware(RateLimit, limits=settings.limits)  # outermost: a limited client costs no body read
    install_error_handlers(app)
    app.include_router(decide.build_router(models))
    app.include_router(distribution.build_router(models))
    app.include_router(communities.router)
    app.include_router(health.router)
    app.include_router(chat.build_router(models))
    app.include_router(admin.router)
    return app


def serve_forever(settings: Settings, host: str, port: int) -> None:
    """What `valuemulch serve` runs: the deployment the settings name, under uvicorn on ``host:port``,
    saying on stderr where it listens and, from the warm-up thread, when it is ready."""
    import torch
    import uvicorn

    from valuemulch.serve._deployment import load_deployment

    torch.set_num_threads(1)  # one request per thread already; intra-op threads would only fight over the cores
    app = create_app(settings, load_deployment(settings, settings.serve.model))
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("valuemulch serve: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.info("http://%s:%d, loading the models (GET /v1/health says when it is ready)", host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", workers=1)
