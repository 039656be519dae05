"""Certificates: `certify` a model, `verify` a certificate, and `keys init` the key that signs them."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from valuemulch.backbones import no_response_cache
from valuemulch.certify import DRIFT_TOLERANCE, certify, certify_config, default_signing_key, init_keys, trusted_keys, verify
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import DataOpt, JsonOpt, NoCacheOpt, SampleCommunitiesOpt, SampleQuestionsOpt
from valuemulch.cli._output import console, print_verdict, stage_progress
from valuemulch.data import resolve_data_root
from valuemulch.errors import ConfigError

keys_app = typer.Typer(no_args_is_help=True, help="The Ed25519 key that signs certificates.")


@user_errors
def certify_cmd(
    model: Annotated[Path, typer.Argument(help="The model directory `valuemulch train` wrote.")],
    out: Annotated[Path, typer.Option(help="New directory for certificate.json, report.html and MODEL_CARD.md.")],
    testbed: Annotated[
        str | None, typer.Option(help="Testbed to certify on (default: the one the model was trained on).")
    ] = None,
    policy_file: Annotated[Path | None, typer.Option(help="Certification rules (TOML); default: the shipped policy.")] = None,
    key: Annotated[Path | None, typer.Option(help="Private signing key (default: the one `valuemulch keys init` made).")] = None,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for every CI.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstraps and of onboarding draws.")] = 0,
    adapt_k: Annotated[int, typer.Option(help="Answers each held-out community is onboarded from.")] = 10,
    cross_fit: Annotated[
        int | None,
        typer.Option(
            "--cross-fit",
            metavar="K",
            min=2,
            help="For a `stack` model: answer each of K folds of the test questions with a layer refitted on the other folds "
            "(over the model's backbones, plus every recorded run under recorded:*); the certificate says so.",
        ),
    ] = None,
    questions: SampleQuestionsOpt = None,
    communities: SampleCommunitiesOpt = None,
    no_cache: NoCacheOpt = False,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Certify a model: agreement per community with CIs beside baselines and frontier models, bounds
    probes, a verdict by explicit rules; signed. Exit code 1 when the model is not certified."""
    config = certify_config(
        model, testbed=testbed, policy_file=policy_file, n_boot=n_boot, seed=seed, adapt_k=adapt_k, cross_fit=cross_fit,
        questions=questions, communities=communities,
    )
    with stage_progress("certifying") as stage, no_response_cache() if no_cache else nullcontext():
        written = certify(model, out, config, resolve_data_root(data), key or default_signing_key(), progress=stage)
    print_verdict(written.certificate, written.directory, as_json)
    if not written.certified:
        raise typer.Exit(1)


@user_errors
def verify_cmd(
    certificate: Annotated[Path, typer.Argument(help="The certificate.json to check.")],
    key: Annotated[list[Path] | None, typer.Option(help="Trusted public key file; repeat for more (default: your own).")] = None,
    model: Annotated[Path | None, typer.Option(help="The certified model's directory, if it moved.")] = None,
    requery: Annotated[
        int | None,
        typer.Option(
            metavar="N", min=1, help="Also ask the live language model again on N seeded test items and report each metric's drift."
        ),
    ] = None,
    requery_tolerance: Annotated[
        float, typer.Option(min=0, help="The largest drift of a metric's mean over the re-asked items that still verifies.")
    ] = DRIFT_TOLERANCE,
    data: DataOpt = None,
) -> None:
    """Check the signature and hashes, re-score the evaluation (an LLM's from its evaluation log) and
    compare every number; ``--requery N`` also asks the live model. Exit 0 or 1."""
    trusted = trusted_keys(key or [])
    if not trusted:
        raise ConfigError("No trusted public key: pass --key PUBLIC_KEY_FILE, or run `valuemulch keys init` to make your own.")
    with stage_progress("re-running the certification") as stage:
        result = verify(
            certificate, trusted, resolve_data_root(data), model, stage, requery=requery, requery_tolerance=requery_tolerance
        )
    for line in result.checks:
        console.print(f"ok    {line}")
    for line in result.problems:
        console.print(f"[red]FAIL[/]  {line}")
    console.print("[bold green]verified[/]" if result.ok else "[bold red]verification failed[/]")
    if not result.ok:
        raise typer.Exit(1)


@keys_app.command("init")
@user_errors
def keys_init(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to write the key pair (default: $VALUEMULCH_KEYS or ~/.config/valuemulch/keys)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing key pair.")] = False,
) -> None:
    """Create the Ed25519 key pair that signs certificates (the private key is readable by its owner only)."""
    pair = init_keys(directory, force=force)
    typer.echo(f"private key: {pair.private} (mode 600)\npublic key:  {pair.public}\nkey id:      {pair.key_id}")
