"""Inspecting and converting survey data: `testbeds`, `policies` and `data export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import DataOpt, JsonOpt
from valuemulch.cli._output import console, print_json
from valuemulch.data import TESTBEDS, load_testbed, norms_or_testbed, resolve_data_root, write_norms
from valuemulch.policies import describe_policies

data_app = typer.Typer(no_args_is_help=True, help="Inspect and convert survey data.")


@user_errors
def testbeds(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the testbeds with their communities, questions and items per split."""
    root = resolve_data_root(data)
    summaries = [load_testbed(name, root).summary() for name in sorted(TESTBEDS)]
    if as_json:
        print_json({"data_root": str(root), "testbeds": summaries})
        return
    for s in summaries:
        _print_testbed(s)


def _print_testbed(s: dict[str, Any]) -> None:
    table = Table(title=f"{s['name']}: {s['description']}")
    for col in ("split", "questions", "items (seen)", "items (unseen)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split, row in s["splits"].items():
        table.add_row(split, str(row["questions"]), str(row["items_seen"]), str(row["items_unseen"]))
    console.print(table)
    console.print(f"communities ({s['n_communities']}): {', '.join(s['communities'])}")
    console.print(f"unseen (onboarding only): {', '.join(s['unseen'])}")
    console.print(f"frontier items: {s['frontier_items']}   data hash: {str(s['data_hash'])[:16]}\n")


@user_errors
def policies(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the policies the CLI can build, and the recorded frontier runs found in the data."""
    rows = describe_policies(data)
    if as_json:
        print_json(rows)
        return
    table = Table(title="policies")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("description")
    for r in rows:
        table.add_row(str(r["name"]), "ORACLE" if r["oracle"] else "", str(r["description"]))
    console.print(table)


@data_app.command("export")
@user_errors
def data_export(
    out: Annotated[Path, typer.Option(help="Output file: .jsonl or .csv (canonical format).")],
    norms: Annotated[Path | None, typer.Option(help="Input data in any supported format.")] = None,
    testbed: Annotated[str | None, typer.Option(help="Export a testbed instead (all communities, all splits).")] = None,
    data: DataOpt = None,
) -> None:
    """Convert data to the canonical JSONL or CSV."""
    _, source = norms_or_testbed(norms, testbed, data)
    written = write_norms(source, out)
    typer.echo(
        f"wrote {len(source)} items to {written} (renormalised on input: {source.renormalised}; skipped: {source.skipped or 'none'})"
    )
