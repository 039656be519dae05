"""`valuemulch bounds check`: which options the three tiers of bounds mask in a dataset, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from valuemulch.bounds import audit, load_org_policy
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import JsonOpt
from valuemulch.cli._output import console, print_json
from valuemulch.data import read_norms

bounds_app = typer.Typer(no_args_is_help=True, help="Three-tier bounds: red lines, the organisation's policy, personalisation.")


@bounds_app.command("check")
@user_errors
def bounds_check(
    norms: Annotated[Path, typer.Option(help="The dataset to audit, in any supported format.")],
    policy_file: Annotated[Path | None, typer.Option(help="Tier-2 organisation policy (.toml or .yaml).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit a dataset: per item, which options the bounds mask and why, and which items they refuse."""
    policy = load_org_policy(policy_file) if policy_file is not None else None
    rows = audit(read_norms(norms), policy)
    flagged = [r for r in rows if r["masked"] or r["refused"]]
    if as_json:
        print_json({"norms": str(norms), "n_items": len(rows), "n_masked": sum(bool(r["masked"]) for r in rows),
                    "n_refused": sum(r["refused"] for r in rows), "items": rows}, indent=1)  # fmt: skip
        return
    table = Table(title=f"bounds check: {norms} ({len(rows)} items, {len(flagged)} masked or refused)")
    for col in ("question", "community", "masked", "refused", "reasons"):
        table.add_column(col)
    for r in flagged:
        reasons = "; ".join(f"tier {x['tier']} {x['code']}" + (f" ({x['detail']})" if x["detail"] else "") for x in r["reasons"])
        table.add_row(r["question_id"], r["community"], str(r["masked"]), "yes" if r["refused"] else "", reasons)
    console.print(table)
