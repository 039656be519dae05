"""`valuemulch bounds check`: which options the three tiers of bounds mask in a dataset, and why."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from valuemulch.bounds import audit, load_org_policy
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import GuardModelOpt, GuardUrlOpt, JsonOpt, config_help
from valuemulch.cli._output import console, print_json, progress_bar
from valuemulch.data import read_norms
from valuemulch.serve import make_guard
from valuemulch.settings import ServeSettings, Settings
from valuemulch.train import DetectorConfig, train_detector

bounds_app = typer.Typer(no_args_is_help=True, help="Three-tier bounds: red lines, the organisation's policy, personalisation.")


@bounds_app.command("check")
@user_errors
def bounds_check(
    norms: Annotated[Path, typer.Option(help="The dataset to audit, in any supported format.")],
    policy_file: Annotated[Path | None, typer.Option(help="Tier-2 organisation policy (.toml or .yaml).")] = None,
    guard_url: GuardUrlOpt = None,
    guard_model: GuardModelOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit a dataset: per item, which options the bounds mask and why, and which items they refuse."""
    policy = load_org_policy(policy_file) if policy_file is not None else None
    settings = Settings(serve=ServeSettings(guard_url=guard_url, guard_model=guard_model))
    rows = audit(read_norms(norms), policy, make_guard(settings))
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


@bounds_app.command("train")
@user_errors
def bounds_train(
    out: Annotated[Path, typer.Option(help=config_help(DetectorConfig, "out"))],
    seed: Annotated[int, typer.Option(help=config_help(DetectorConfig, "seed"))] = 0,
    epochs: Annotated[int, typer.Option(help=config_help(DetectorConfig, "epochs"))] = 4,
    lr: Annotated[float, typer.Option(help=config_help(DetectorConfig, "lr"))] = 5e-4,
    head_lr: Annotated[float, typer.Option(help=config_help(DetectorConfig, "head_lr"))] = 1e-3,
    head_init: Annotated[str, typer.Option(help=config_help(DetectorConfig, "head_init"))] = "lr",
    catalogue_weight: Annotated[float, typer.Option(help=config_help(DetectorConfig, "catalogue_weight"))] = 1.0,
    lora_r: Annotated[int, typer.Option(help=config_help(DetectorConfig, "lora_r"))] = 8,
    run: Annotated[str | None, typer.Option(help=config_help(DetectorConfig, "run"))] = None,
    threads: Annotated[int, typer.Option(help=config_help(DetectorConfig, "threads"))] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Train the tier-1 detector's classifier (LoRA adapters and a linear head on all-MiniLM-L6-v2) and
    write the file the package ships; from an empty embedding cache the defaults reproduce its tensors."""
    config = DetectorConfig.parse(
        {"out": out, "seed": seed, "epochs": epochs, "lr": lr, "head_lr": head_lr, "head_init": head_init,
         "catalogue_weight": catalogue_weight, "lora_r": lora_r, "run": run, "threads": threads}
    )  # fmt: skip
    with progress_bar("training the detector") as bar:
        task = bar.add_task("epochs", total=config.epochs)
        trained = train_detector(config, on_epoch=lambda epoch, _n, _loss, _s: bar.update(task, completed=epoch))
    path = Path(str(trained.path))
    summary = {"out": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "run": config.run_label(),
               "seconds": round(trained.seconds, 1), "losses": [round(x, 4) for x in trained.losses]}  # fmt: skip
    if as_json:
        print_json(summary)
        return
    console.print(f"trained the detector ({summary['run']}) in {trained.seconds:.0f} s, final loss {trained.losses[-1]:.4f}")
    console.print(f"wrote {path} (sha256 {summary['sha256']})")
