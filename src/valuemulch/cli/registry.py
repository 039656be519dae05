"""`valuemulch registry`: the local registry of models and their certificates."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import JsonOpt
from valuemulch.cli._output import console, print_json
from valuemulch.serve import Registry

registry_app = typer.Typer(no_args_is_help=True, help="The local registry of models and their certificates.")


@registry_app.command("list")
@user_errors
def registry_list(as_json: JsonOpt = False) -> None:
    """The registered models, their certificates and status."""
    registry = Registry()
    entries = registry.list()
    if as_json:
        print_json({"registry": str(registry.path), "models": [e.to_dict() for e in entries]})
        return
    table = Table(title=f"registry: {registry.path}")
    for col in ("id", "certified", "status", "testbed", "certificate"):
        table.add_column(col)
    for e in entries:
        table.add_row(e.id, "yes" if e.certified else "no", e.status, e.testbed, e.certificate)
    console.print(table)


@registry_app.command("promote")
@user_errors
def registry_promote(
    model_id: Annotated[str, typer.Argument(help="A registry id (`valuemulch registry list`).")],
    allow_uncertified: Annotated[bool, typer.Option(help="Development only: promote a model that failed certification.")] = False,
) -> None:
    """Make a certified model the one `valuemulch serve` answers with."""
    entry = Registry().promote(model_id, allow_uncertified=allow_uncertified)
    typer.echo(f"promoted {entry.id} (certified: {'yes' if entry.certified else 'NO'})")


@registry_app.command("retire")
@user_errors
def registry_retire(model_id: Annotated[str, typer.Argument(help="A registry id.")]) -> None:
    """Take a model out of service for good; its record stays."""
    entry = Registry().retire(model_id)
    typer.echo(f"retired {entry.id}")
