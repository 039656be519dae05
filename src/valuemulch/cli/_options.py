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
SampleQuestionsOpt = Annotated[
    int | None,
    typer.Option(
        "--questions",
        metavar="N",
        min=1,
        help="Evaluate a seeded sample of N test questions (a quick look at an expensive model; the certificate says so).",
    ),
]
SampleCommunitiesOpt = Annotated[
    int | None,
    typer.Option(
        "--communities",
        metavar="K",
        min=1,
        help="Evaluate a seeded sample of K seen communities and the same share of held-out ones (the certificate says so).",
    ),
]
NoCacheOpt = Annotated[
    bool,
    typer.Option(
        "--no-cache", help="Ask every language-model endpoint afresh: read and write no cached response (the default reuses them)."
    ),
]
