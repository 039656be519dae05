"""Making models: `train`, `adapt` (onboard a community) and `pipeline` (train, certify, register)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from valuemulch.backbones import no_response_cache
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import POLICY_HELP, TESTBED_HELP, DataOpt, JsonOpt, NoCacheOpt, config_help
from valuemulch.cli._output import console, fmt, print_json, print_verdict, progress_bar, stage_progress
from valuemulch.data import load_testbed, norms_or_testbed, resolve_data_root
from valuemulch.policies import parse_params
from valuemulch.train import EncoderConfig, make_config
from valuemulch.train.pipeline import SavedModel, adapt_and_save, run_pipeline, train_and_save


@user_errors
def train_cmd(
    testbed: Annotated[str, typer.Option(help=config_help(EncoderConfig, "testbed"))],
    out: Annotated[Path, typer.Option(help=config_help(EncoderConfig, "out"))],
    policy: Annotated[str, typer.Option(help=POLICY_HELP)] = "encoder",
    seed: Annotated[int, typer.Option(help=config_help(EncoderConfig, "seed"))] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Hyper-parameter override key=value; repeat for more.")] = None,
    add_norms: Annotated[Path | None, typer.Option(help=config_help(EncoderConfig, "add_norms"))] = None,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a policy on the testbed's train split (seen communities) and save it to --out."""
    params = parse_params(set_ or [])
    config = make_config(policy, overrides=params, testbed=testbed, out=out, seed=seed, data=data, add_norms=add_norms)
    tb = load_testbed(testbed, resolve_data_root(data))
    with stage_progress(f"training {policy} on {testbed}") as stage:
        saved = train_and_save(config, tb, progress=lambda done, total: stage(f"training {policy} on {testbed}: {done}/{total}"))
    trained = saved.trained
    summary = {
        "model": str(saved.path), "policy": policy, "testbed": testbed, "seed": trained.provenance["seed"],
        "items": trained.items, "questions": trained.questions, "communities": len(trained.communities),
        "fit_seconds": round(trained.seconds, 1), "dev": saved.dev,
    }  # fmt: skip
    if as_json:
        print_json(summary)
    else:
        _print_trained(saved, policy, testbed)


def _print_trained(saved: SavedModel, policy: str, testbed: str) -> None:
    trained, path = saved.trained, saved.path
    console.print(
        f"trained [bold]{policy}[/] on {testbed}: {trained.items} items, {trained.questions} questions, "
        f"{len(trained.communities)} communities, seed {trained.provenance['seed']}, {trained.seconds:.1f} s"
    )
    console.print(
        "dev split: " + ", ".join(f"{m} {fmt(v)}" for m, v in saved.dev.items())
        + f"\nsaved to {path}; next: valuemulch evaluate --model {path} --testbed {testbed}"
    )  # fmt: skip


@user_errors
def adapt_cmd(
    model: Annotated[Path, typer.Option(help="A saved model directory (from `valuemulch train`).")],
    community: Annotated[str, typer.Option(help="The new community's id, as it appears in the norms.")],
    out: Annotated[Path, typer.Option(help="Directory to write the adapted model to.")],
    norms: Annotated[Path | None, typer.Option(help="The community's answers, in any supported format.")] = None,
    testbed: Annotated[
        str | None, typer.Option(help="Instead of --norms: take the answers from this testbed's train split.")
    ] = None,
    k: Annotated[int, typer.Option(help="How many answered questions to fit from.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed for choosing the k questions and fitting.")] = 0,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Onboard a new community from k of its answered questions, without retraining the rest."""
    source, answers = norms_or_testbed(norms, testbed, data, split="train")
    with progress_bar(f"adapting to {community}") as bar:
        task = bar.add_task("adapt", total=None)
        saved = adapt_and_save(
            model, community, answers, out, source=source, k=k, seed=seed,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
        )  # fmt: skip
    used = saved.trained.provenance["adapted"][-1]["questions"]
    if as_json:
        print_json({"model": str(saved.path), "community": community, "k": k, "seed": seed, "questions": used})
        return
    console.print(f"adapted to [bold]{community}[/] from {k} questions in {saved.trained.seconds:.1f} s; saved to {saved.path}")
    console.print(f"questions used (skipped when evaluating on the same norms): {', '.join(used)}")


@user_errors
def pipeline_cmd(
    testbed: Annotated[str, typer.Option(help=TESTBED_HELP)] = "us-32",
    out: Annotated[Path, typer.Option(help="New directory for the model and its certificate.")] = Path("runs/us-32"),
    seed: Annotated[int, typer.Option(help="Training and bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for every CI.")] = 1000,
    policy: Annotated[str, typer.Option(help=POLICY_HELP)] = "encoder",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Hyper-parameter override key=value; repeat for more.")] = None,
    no_cache: NoCacheOpt = False,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: train a policy (the encoder by default), certify it, register it. Exit code 1 if not certified."""
    with stage_progress("training") as stage, no_response_cache() if no_cache else nullcontext():
        result = run_pipeline(
            testbed, out, resolve_data_root(data), policy=policy, overrides=parse_params(set_ or []), seed=seed,
            n_boot=n_boot, on_step=stage, on_train=lambda done, total: stage(f"training {policy}: {done}/{total}"),
        )  # fmt: skip
    cert = result.certificate
    if as_json:
        print_json({"model": str(result.model_dir), "registry_id": result.entry.id, "seconds": result.seconds,
                    "certificate": str(result.certificate_path), "certified": cert.verdict.certified,
                    "one_minus_jsd": cert.evaluation.seen.metrics["one_minus_jsd"].model_dump(mode="json")})  # fmt: skip
    else:
        if result.new_key is not None:
            console.print(f"created a signing key at {result.new_key} (see `valuemulch keys init --help`)")
        print_verdict(cert, result.certificate_path.parent, False)
        console.print(
            f"model: {result.model_dir}  registered as {result.entry.id}\n"
            f"time: train {result.seconds['train']:.0f} s, certify {result.seconds['certify']:.0f} s, total {result.seconds['total']:.0f} s\n"
            f"next: valuemulch verify {result.certificate_path}"
        )
    if not cert.verdict.certified:
        raise typer.Exit(1)
