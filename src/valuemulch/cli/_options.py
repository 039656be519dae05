"""Options several commands share, declared once so their names and help stay the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from valuemulch.data import TESTBEDS

DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (else $VALUEMULCH_DATA, else the user cache).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TESTBED_HELP = f"Testbed: one of {sorted(TESTBEDS)}."
POLICY_HELP = "Policy name (see `valuemulch policies`)."
AUDIT_HELP = "Audit log (default: $VALUEMULCH_AUDIT or ~/.local/share/valuemulch/audit.sqlite)."


def config_help(config: type[BaseModel], name: str) -> str:
    """A config field's description: the one text behind the option's help and the config's docs."""
    return str(config.model_fields[name].description)
