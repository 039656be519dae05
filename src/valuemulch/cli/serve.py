"""Serving: `serve` a certified model over HTTP, make an `admin-key` (the audit commands are in `audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import AUDIT_HELP, GuardModelOpt, GuardUrlOpt
from valuemulch.serve import create_admin_key, read_admin_key_hash
from valuemulch.settings import ServeSettings, Settings


@user_errors
def serve_cmd(
    model: Annotated[str | None, typer.Option(help="Registry id or model directory (default: the promoted model).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    policy_file: Annotated[Path | None, typer.Option(help="Tier-2 organisation policy (.toml or .yaml).")] = None,
    admin_key_file: Annotated[
        Path | None, typer.Option(help="File holding the SHA-256 (hex) of the admin API key (`valuemulch admin-key`).")
    ] = None,
    audit: Annotated[Path | None, typer.Option(help=AUDIT_HELP)] = None,
    allow_uncertified: Annotated[
        bool, typer.Option(help="Development only: serve an uncertified model; answers say so.")
    ] = False,
    key: Annotated[
        list[Path] | None, typer.Option(help="Public key whose certificates to trust; repeat for more (default: your own).")
    ] = None,
    guard_url: GuardUrlOpt = None,
    guard_model: GuardModelOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=256, help="Threads answering requests at once, the rest queue (default 40, or VALUEMULCH_SERVE__WORKERS)."),
    ] = None,
) -> None:
    """Serve a certified model over HTTP: /v1/decide, /v1/distribution, /v1/chat/completions, ...

    The port opens at once; the models load in the background, and /v1/health answers 503 "starting"
    until they have, then 200 "ready"."""
    from valuemulch.serve.app import serve_forever

    key_hash = read_admin_key_hash(admin_key_file) if admin_key_file is not None else None
    given = {
        "model": model, "policy_file": policy_file, "admin_key_hash": key_hash, "allow_uncertified": allow_uncertified or None,
        "trusted_keys": tuple(key) if key else None, "guard_url": guard_url, "guard_model": guard_model, "workers": workers,
    }  # fmt: skip
    # What the command line gives wins; every other serve setting comes from VALUEMULCH_SERVE__* or its default.
    serve = ServeSettings(**{**Settings().serve.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    serve_forever(Settings(serve=serve) if audit is None else Settings(serve=serve, audit=audit), host, port)


@user_errors
def admin_key(
    out: Annotated[Path, typer.Option(help="Where to write the key's SHA-256 (give it to `serve --admin-key-file`).")],
) -> None:
    """Create an admin API key: prints it once, stores only its hash."""
    key = create_admin_key(out)
    typer.echo(f"admin key (shown once, store it safely): {key}\nhash written to {out}")
