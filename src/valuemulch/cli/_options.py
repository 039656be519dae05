"""Options several commands share, declared once so their names and help stay the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from valuemulch.settings import ServeSettings
from valuemulch.train import BaselineConfig, EncoderConfig


def config_help(config: type[BaseModel], name: str) -> str:
    """A config field's description: the one text behind the option's help and the config's docs."""
    return str(config.model_fields[name].description)


DataOpt = Annotated[Path | None, typer.Option("--data", help=config_help(EncoderConfig, "data"))]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TESTBED_HELP = config_help(EncoderConfig, "testbed")
POLICY_HELP = config_help(BaselineConfig, "policy")
AUDIT_HELP = "Audit log (default: $VALUEMULCH_AUDIT or ~/.local/share/valuemulch/audit.sqlite)."

GuardUrlOpt = Annotated[str | None, typer.Option("--guard-url", help=config_help(ServeSettings, "guard_url"))]
GuardModelOpt = Annotated[str | None, typer.Option("--guard-model", help=config_help(ServeSettings, "guard_model"))]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Ask every language-model endpoint afresh: read and write no cached response (the default reuses them)."
    ),
]
