"""`valuemulch evaluate`: agreement metrics with bootstrap CIs, as a table or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from valuemulch.certify import EvaluateConfig, Evaluation, run_evaluation
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import POLICY_HELP, TESTBED_HELP, DataOpt, JsonOpt
from valuemulch.cli._output import console, fmt, fmt_ci, print_json
from valuemulch.policies import parse_params

COMPARED_COLUMNS = ("recorded policy", "items", "1-JSD them", "1-JSD this", "TV them", "TV this", "TV this-them [95% CI]")


@user_errors
def evaluate_cmd(
    testbed: Annotated[str | None, typer.Option(help=TESTBED_HELP)] = None,
    policy: Annotated[str | None, typer.Option(help=POLICY_HELP)] = None,
    model: Annotated[Path | None, typer.Option(help="A saved policy directory (instead of --policy).")] = None,
    norms: Annotated[Path | None, typer.Option(help="Evaluate on this data (any supported format) instead of a testbed.")] = None,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    items: Annotated[str, typer.Option(help="all, or frontier: only the items recorded frontier outputs cover.")] = "all",
    communities: Annotated[str, typer.Option(help="seen, unseen or all communities of the testbed.")] = "seen",
    refusals: Annotated[
        str, typer.Option(help="keep: score the full distribution; drop: remove refusal options from both sides and renormalise.")
    ] = "keep",
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A --policy hyper-parameter, key=value (e.g. backbones=recorded:*,encoder); repeat for more."),
    ] = None,
    cross_fit: Annotated[
        int | None,
        typer.Option(
            help="K: split the evaluated questions into K folds by a hash of their text and predict each with a layer fitted on the others (--policy stack)."
        ),
    ] = None,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a policy: one-minus-JSD, representativeness, TV (and more) with bootstrap CIs."""
    config = EvaluateConfig(
        testbed=testbed, policy=policy, model=model, norms=norms, split=split, items=items,
        communities=communities, refusals=refusals, n_boot=n_boot, seed=seed, data=data,
        params=parse_params(set_ or []), cross_fit=cross_fit,
    )  # fmt: skip
    with console.status("evaluating") as status:
        result = run_evaluation(config, progress=lambda m: status.update(m))
    if as_json:
        print_json(result.to_dict(), allow_nan=False)
    else:
        _print_evaluation(result)


def _print_evaluation(result: Evaluation) -> None:
    d = result.to_dict()
    console.print(_metrics_table(d))
    if d["skipped"]:
        console.print(f"skipped: {d['skipped']}")
    if d["compared"]:
        console.print(_compared_table(d))


def _metrics_table(d: dict[str, Any]) -> Table:
    title = f"{d['policy']}{' (ORACLE)' if d['oracle'] else ''} on {d.get('testbed', d.get('norms'))}"
    if "cross_fit" in d:
        title += f" (cross-fitted, {d['cross_fit']['folds']} folds by question)"
    if "split" in d:
        title += f" / {d['split']} / items={d['items']} / communities={d['communities']}"
    table = Table(title=title)
    for col in ("metric", "mean", "95% CI", "items", "excluded", "worst community", "spread"):
        table.add_column(col)
    for name, m in d["metrics"].items():
        worst = m["worst_community"]
        worst_cell = f"{worst[0]} ({fmt(worst[1])})" if worst else "n/a"
        table.add_row(name, fmt(m["mean"]), fmt_ci(m["ci"]), str(m["n"]), str(m["n_excluded"]), worst_cell, fmt(m["spread"]))
    return table


def _compared_table(d: dict[str, Any]) -> Table:
    """Each recorded frontier run beside this policy on exactly the items the run answers."""
    table = Table(title=f"recorded frontier outputs, and {d['policy']} on exactly their items")
    for col in COMPARED_COLUMNS:
        table.add_column(col, no_wrap=col == "recorded policy")
    for name, c in d["compared"].items():
        if not c.get("n_items"):
            continue
        same = next(v for k, v in c.items() if k.endswith("_on_same_items"))
        diff = c["paired_difference"]["tv"]
        table.add_row(
            name,
            str(c["n_items"]),
            fmt(c["metrics"]["one_minus_jsd"]["mean"]),
            fmt(same["one_minus_jsd"]["mean"]),
            fmt(c["metrics"]["tv"]["mean"]),
            fmt(same["tv"]["mean"]),
            f"{fmt(diff['mean_diff'])} {fmt_ci(diff['ci'])}",
        )
    return table
