"""The ``valuemulch`` command line. Each command loads its inputs, calls one library function, and
prints a Rich table or JSON. User errors print one line and exit 2; bugs keep their traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from valuemulch.bounds import audit, load_org_policy
from valuemulch.certify import (
    CertifyConfig,
    CommunitySet,
    Evaluation,
    ItemSet,
    Refusals,
    Report,
    certify,
    default_key_dir,
    default_policy_file,
    evaluate,
    evaluate_on_testbed,
    init_keys,
    trusted_keys,
    verify,
)
from valuemulch.data import (
    SPLITS,
    TESTBEDS,
    Split,
    list_recorded,
    load_testbed,
    read_norms,
    resolve_data_root,
    write_csv,
    write_jsonl,
)
from valuemulch.deploy import Registry
from valuemulch.errors import ConfigError, ValuemulchError
from valuemulch.pipeline import run_pipeline
from valuemulch.policies import Policy, policy_class, policy_names
from valuemulch.training import Trained, adapt, train

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Train, certify and deploy models of many communities' views, inside bounds."
)
data_app = typer.Typer(no_args_is_help=True, help="Inspect and convert survey data.")
app.add_typer(data_app, name="data")
bounds_app = typer.Typer(no_args_is_help=True, help="Three-tier bounds: red lines, the organisation's policy, personalisation.")
app.add_typer(bounds_app, name="bounds")
keys_app = typer.Typer(no_args_is_help=True, help="The Ed25519 key that signs certificates.")
app.add_typer(keys_app, name="keys")
registry_app = typer.Typer(no_args_is_help=True, help="The local registry of models and their certificates.")
app.add_typer(registry_app, name="registry")
audit_app = typer.Typer(no_args_is_help=True, help="The decision service's hash-chained audit log.")
app.add_typer(audit_app, name="audit")
console = Console(width=None if sys.stdout.isatty() else 200)  # pipes and CI logs get full rows
F = TypeVar("F", bound=Callable[..., Any])

DataOpt = Annotated[Path | None, typer.Option("--data", help="Data directory (else $VALUEMULCH_DATA, else the user cache).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def user_errors(fn: F) -> F:
    """Turn ValuemulchError into one line on stderr and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValuemulchError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
@user_errors
def testbeds(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the testbeds with their communities, questions and items per split."""
    root = resolve_data_root(data)
    summaries = [load_testbed(name, root).summary() for name in sorted(TESTBEDS)]
    if as_json:
        print(json.dumps({"data_root": str(root), "testbeds": summaries}, indent=2))
        return
    for s in summaries:
        table = Table(title=f"{s['name']}: {s['description']}")
        for col in ("split", "questions", "items (seen)", "items (unseen)"):
            table.add_column(col, justify="right" if col != "split" else "left")
        for split, row in s["splits"].items():  # type: ignore[attr-defined]
            table.add_row(split, str(row["questions"]), str(row["items_seen"]), str(row["items_unseen"]))
        console.print(table)
        console.print(f"communities ({s['n_communities']}): {', '.join(s['communities'])}")  # type: ignore[arg-type]
        console.print(f"unseen (onboarding only): {', '.join(s['unseen'])}")  # type: ignore[arg-type]
        console.print(f"frontier items: {s['frontier_items']}   data hash: {str(s['data_hash'])[:16]}\n")


@app.command()
@user_errors
def policies(data: DataOpt = None, as_json: JsonOpt = False) -> None:
    """List the policies the CLI can build, and the recorded frontier runs found in the data."""
    rows = [
        {"name": n, "oracle": policy_class(n).oracle, "description": policy_class(n).description}
        for n in policy_names()
        if n != "recorded"
    ]
    try:
        recorded = list_recorded(resolve_data_root(data))
    except ValuemulchError:
        recorded = []
    rows += [{"name": n, "oracle": False, "description": "recorded frontier-LLM output"} for n in recorded]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="policies")
    table.add_column("name")
    table.add_column("kind")
    table.add_column("description")
    for r in rows:
        table.add_row(str(r["name"]), "ORACLE" if r["oracle"] else "", str(r["description"]))
    console.print(table)


@app.command(name="evaluate")
@user_errors
def evaluate_cmd(
    testbed: Annotated[str | None, typer.Option(help=f"Testbed: one of {sorted(TESTBEDS)}.")] = None,
    policy: Annotated[str | None, typer.Option(help="Policy name (see `valuemulch policies`).")] = None,
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
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a policy: one-minus-JSD, representativeness, TV (and more) with bootstrap CIs."""
    if (policy is None) == (model is None):
        raise ConfigError("Give exactly one of --policy NAME or --model DIR.")
    if (testbed is None) == (norms is None):
        raise ConfigError("Give exactly one of --testbed NAME or --norms PATH.")
    if split not in SPLITS:
        raise ConfigError(f"--split must be one of {list(SPLITS)}, got '{split}'.")
    if items not in ("all", "frontier"):
        raise ConfigError(f"--items must be 'all' or 'frontier', got '{items}'.")
    if communities not in ("seen", "unseen", "all"):
        raise ConfigError(f"--communities must be seen, unseen or all, got '{communities}'.")
    if refusals not in ("keep", "drop"):
        raise ConfigError(f"--refusals must be 'keep' or 'drop', got '{refusals}'.")
    loaded: Policy | None = Policy.load(model) if model is not None else None
    if norms is not None:
        if loaded is None:
            raise ConfigError("--norms evaluates a saved model: pass --model DIR (named baselines need a testbed to fit on).")
        result = evaluate(
            loaded, read_norms(norms), n_boot=n_boot, seed=seed, policy_label=str(model), refusals=cast(Refusals, refusals)
        )
        result.context = {"norms": str(norms), "refusals": refusals, "n_boot": n_boot, "seed": seed}
    else:
        assert testbed is not None
        tb = load_testbed(testbed, resolve_data_root(data))
        chosen: str | Policy = loaded if loaded is not None else str(policy)
        result = evaluate_on_testbed(
            chosen,
            tb,
            split=cast(Split, split),
            items=cast(ItemSet, items),
            communities=cast(CommunitySet, communities),
            n_boot=n_boot,
            seed=seed,
            refusals=cast(Refusals, refusals),
        )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        _print_evaluation(result)


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _print_evaluation(result: Evaluation) -> None:
    d = result.to_dict()
    title = f"{d['policy']}{' (ORACLE)' if d['oracle'] else ''} on {d.get('testbed', d.get('norms'))}"
    if "split" in d:
        title += f" / {d['split']} / items={d['items']} / communities={d['communities']}"
    table = Table(title=title)
    for col in ("metric", "mean", "95% CI", "items", "excluded", "worst community", "spread"):
        table.add_column(col)
    for name, m in d["metrics"].items():
        worst = m["worst_community"]
        table.add_row(
            name,
            _fmt(m["mean"]),
            f"[{_fmt(m['ci'][0])}, {_fmt(m['ci'][1])}]",
            str(m["n"]),
            str(m["n_excluded"]),
            f"{worst[0]} ({_fmt(worst[1])})" if worst else "n/a",
            _fmt(m["spread"]),
        )
    console.print(table)
    if d["skipped"]:
        console.print(f"skipped: {d['skipped']}")
    if d["compared"]:
        comp = Table(title=f"recorded frontier outputs, and {d['policy']} on exactly their items")
        for col in ("recorded policy", "items", "1-JSD them", "1-JSD this", "TV them", "TV this", "TV this-them [95% CI]"):
            comp.add_column(col, no_wrap=col == "recorded policy")
        for name, c in d["compared"].items():
            if not c.get("n_items"):
                continue
            same = next(v for k, v in c.items() if k.endswith("_on_same_items"))
            diff = c["paired_difference"]["tv"]
            comp.add_row(
                name,
                str(c["n_items"]),
                _fmt(c["metrics"]["one_minus_jsd"]["mean"]),
                _fmt(same["one_minus_jsd"]["mean"]),
                _fmt(c["metrics"]["tv"]["mean"]),
                _fmt(same["tv"]["mean"]),
                f"{_fmt(diff['mean_diff'])} [{_fmt(diff['ci'][0])}, {_fmt(diff['ci'][1])}]",
            )
        console.print(comp)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are read as JSON when they parse (numbers, true/false), else kept as text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value (e.g. --set epochs=40), got '{pair}'.")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _bar(description: str) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _save(trained: Trained, out: Path) -> Path:
    return trained.policy.save(out, provenance=trained.provenance)


@app.command(name="train")
@user_errors
def train_cmd(
    testbed: Annotated[str, typer.Option(help=f"Testbed: one of {sorted(TESTBEDS)}.")],
    out: Annotated[Path, typer.Option(help="Directory to write the model artifact to (created; replaced if it holds one).")],
    policy: Annotated[str, typer.Option(help="Policy name (see `valuemulch policies`).")] = "encoder",
    seed: Annotated[int, typer.Option(help="Training seed (for policies that take one).")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Hyper-parameter override key=value; repeat for more.")] = None,
    add_norms: Annotated[
        Path | None, typer.Option(help="Also train on these items (your own communities, any supported format).")
    ] = None,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a policy on the testbed's train split (seen communities) and save it to --out."""
    tb = load_testbed(testbed, resolve_data_root(data))
    params = _parse_params(set_ or [])
    extra = read_norms(add_norms) if add_norms is not None else None
    with _bar(f"training {policy} on {testbed}") as bar:
        task = bar.add_task("fit", total=None)
        trained = train(
            policy,
            tb,
            seed=seed,
            params=params,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            extra=extra,
            extra_source=str(add_norms or ""),
        )
    path = _save(trained, out)
    dev = evaluate(trained.policy, tb.items("dev", "seen"), n_boot=200, seed=0)
    summary = {
        "model": str(path),
        "policy": policy,
        "testbed": testbed,
        "seed": trained.provenance["seed"],
        "items": trained.items,
        "questions": trained.questions,
        "communities": len(trained.communities),
        "fit_seconds": round(trained.seconds, 1),
        "dev": {m: dev.summaries[m].mean for m in ("one_minus_jsd", "representativeness", "tv")},
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    console.print(
        f"trained [bold]{policy}[/] on {testbed}: {trained.items} items, {trained.questions} questions, "
        f"{len(trained.communities)} communities, seed {summary['seed']}, {trained.seconds:.1f} s"
    )
    console.print(
        "dev split: "
        + ", ".join(f"{m} {_fmt(v)}" for m, v in summary["dev"].items())  # type: ignore[attr-defined]
        + f"\nsaved to {path}; next: valuemulch evaluate --model {path} --testbed {testbed}"
    )


@app.command(name="adapt")
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
    if (norms is None) == (testbed is None):
        raise ConfigError("Give exactly one of --norms PATH or --testbed NAME.")
    if norms is not None:
        source, answers = str(norms), read_norms(norms)
    else:
        source, answers = f"testbed:{testbed}/train", load_testbed(str(testbed), resolve_data_root(data)).items("train", "all")
    with _bar(f"adapting to {community}") as bar:
        task = bar.add_task("adapt", total=None)
        trained = adapt(
            model, community, answers, k=k, seed=seed, source=source, progress=lambda d, t: bar.update(task, completed=d, total=t)
        )
    path = _save(trained, out)
    used = trained.provenance["adapted"][-1]["questions"]
    if as_json:
        print(json.dumps({"model": str(path), "community": community, "k": k, "seed": seed, "questions": used}, indent=2))
        return
    console.print(f"adapted to [bold]{community}[/] from {k} questions in {trained.seconds:.1f} s; saved to {path}")
    console.print(f"questions used (skipped when evaluating on the same norms): {', '.join(used)}")


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
        print(json.dumps({"norms": str(norms), "n_items": len(rows), "n_masked": sum(bool(r["masked"]) for r in rows),
                          "n_refused": sum(r["refused"] for r in rows), "items": rows}, indent=1))  # fmt: skip
        return
    table = Table(title=f"bounds check: {norms} ({len(rows)} items, {len(flagged)} masked or refused)")
    for col in ("question", "community", "masked", "refused", "reasons"):
        table.add_column(col)
    for r in flagged:
        reasons = "; ".join(f"tier {x['tier']} {x['code']}" + (f" ({x['detail']})" if x["detail"] else "") for x in r["reasons"])
        table.add_row(r["question_id"], r["community"], str(r["masked"]), "yes" if r["refused"] else "", reasons)
    console.print(table)


@app.command(name="certify")
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
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Certify a model: agreement per community with CIs beside baselines and frontier models, bounds
    probes, a verdict by explicit rules; signed. Exit code 1 when the model is not certified."""
    if testbed is None:
        testbed = str(Policy.read_provenance(model).get("trained_on", {}).get("testbed") or "")
        if not testbed:
            raise ConfigError(f"{model} does not say which testbed it was trained on; pass --testbed.")
    config = CertifyConfig(
        testbed=testbed, policy_file=str(policy_file or default_policy_file()), n_boot=n_boot, seed=seed, adapt_k=adapt_k
    )
    with console.status("certifying") as status:
        written = certify(
            model,
            out,
            config,
            resolve_data_root(data),
            key or default_key_dir() / "signing.key",
            progress=lambda m: status.update(m),
        )
    _print_verdict(written.certificate, written.directory, as_json)
    if not written.certified:
        raise typer.Exit(1)


def _print_verdict(cert: Report, directory: Path, as_json: bool) -> None:
    seen = cert.evaluation.seen.metrics
    summary = {
        "certificate": str(directory / "certificate.json"),
        "report": str(directory / "report.html"),
        "certificate_id": cert.certificate_id,
        "certified": cert.verdict.certified,
        "one_minus_jsd": seen["one_minus_jsd"].model_dump(mode="json"),
        "tv": seen["tv"].model_dump(mode="json"),
        "rules": [r.model_dump(mode="json") for r in cert.verdict.rules],
    }
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    verdict = "[bold green]CERTIFIED[/]" if cert.verdict.certified else "[bold red]NOT CERTIFIED[/]"
    m = seen["one_minus_jsd"]
    console.print(
        f"{verdict}  {cert.model.label} on {cert.testbed.name}: 1-JSD {_fmt(m.mean)} [{_fmt(m.ci[0])}, {_fmt(m.ci[1])}]"
    )
    for rule in cert.verdict.rules:
        console.print(f"  {'pass' if rule.passed else '[red]FAIL[/]'}  {rule.id}: {rule.detail}")
    console.print(f"certificate: {summary['certificate']}\nreport: {summary['report']}")


@app.command(name="verify")
@user_errors
def verify_cmd(
    certificate: Annotated[Path, typer.Argument(help="The certificate.json to check.")],
    key: Annotated[list[Path] | None, typer.Option(help="Trusted public key file; repeat for more (default: your own).")] = None,
    model: Annotated[Path | None, typer.Option(help="The certified model's directory, if it moved.")] = None,
    data: DataOpt = None,
) -> None:
    """Check the signature and hashes, re-run the evaluation and compare every number. Exit 0 or 1."""
    trusted = trusted_keys(key or [])
    if not trusted:
        raise ConfigError("No trusted public key: pass --key PUBLIC_KEY_FILE, or run `valuemulch keys init` to make your own.")
    with console.status("re-running the certification") as status:
        result = verify(certificate, trusted, resolve_data_root(data), model, progress=lambda m: status.update(m))
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


@registry_app.command("list")
@user_errors
def registry_list(as_json: JsonOpt = False) -> None:
    """The registered models, their certificates and status."""
    registry = Registry()
    entries = registry.list()
    if as_json:
        print(json.dumps({"registry": str(registry.path), "models": [e.to_dict() for e in entries]}, indent=2))
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


@app.command(name="serve")
@user_errors
def serve_cmd(
    model: Annotated[str | None, typer.Option(help="Registry id or model directory (default: the promoted model).")] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    policy_file: Annotated[Path | None, typer.Option(help="Tier-2 organisation policy (.toml or .yaml).")] = None,
    admin_key_file: Annotated[
        Path | None, typer.Option(help="File holding the SHA-256 (hex) of the admin API key (`valuemulch admin-key`).")
    ] = None,
    audit: Annotated[
        Path | None, typer.Option(help="Audit log (default: $VALUEMULCH_AUDIT or ~/.local/share/valuemulch/audit.sqlite).")
    ] = None,
    allow_uncertified: Annotated[
        bool, typer.Option(help="Development only: serve an uncertified model; answers say so.")
    ] = False,
    key: Annotated[
        list[Path] | None, typer.Option(help="Public key whose certificates to trust; repeat for more (default: your own).")
    ] = None,
) -> None:
    """Serve a certified model over HTTP: /v1/decide, /v1/distribution, /v1/chat/completions, ..."""
    import uvicorn

    from valuemulch.deploy._service import ServiceConfig, create_app

    key_hash = None
    if admin_key_file is not None:
        key_hash = admin_key_file.read_text(encoding="utf-8").strip().lower()
        if len(key_hash) != 64 or any(c not in "0123456789abcdef" for c in key_hash):
            raise ConfigError(f"{admin_key_file}: expected the 64 hex digits `valuemulch admin-key` writes, got something else.")
    config = ServiceConfig(
        model=model,
        audit=audit,
        policy_file=policy_file,
        admin_key_hash=key_hash,
        allow_uncertified=allow_uncertified,
        trusted_keys=list(key or []),
    )
    import torch

    torch.set_num_threads(1)  # one request per thread already; intra-op threads would only fight over the cores
    app_ = create_app(config)
    uvicorn.run(app_, host=host, port=port, log_level="warning", workers=1)


@app.command(name="admin-key")
@user_errors
def admin_key(
    out: Annotated[Path, typer.Option(help="Where to write the key's SHA-256 (give it to `serve --admin-key-file`).")],
) -> None:
    """Create an admin API key: prints it once, stores only its hash."""
    import hashlib
    import secrets

    if out.exists():
        raise ConfigError(f"{out} exists; choose another path (a key is shown only once, so it is never overwritten).")
    key = secrets.token_urlsafe(32)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(hashlib.sha256(key.encode()).hexdigest() + "\n", encoding="utf-8")
    typer.echo(f"admin key (shown once, store it safely): {key}\nhash written to {out}")


@audit_app.command("verify")
@user_errors
def audit_verify(
    audit: Annotated[
        Path | None, typer.Option(help="Audit log (default: $VALUEMULCH_AUDIT or ~/.local/share/valuemulch/audit.sqlite).")
    ] = None,
) -> None:
    """Check the audit log's hash chain record by record. Exit 0 when intact, 1 otherwise."""
    from valuemulch.deploy._audit import default_audit_path, verify_chain

    path = audit or default_audit_path()
    report = verify_chain(path)
    if report.ok:
        typer.echo(f"audit log {path}: {report.n_records} records, chain intact")
        return
    typer.echo(f"audit log {path}: {report.n_records} records, chain BROKEN:", err=True)
    for problem in report.problems:
        typer.echo(f"  {problem}", err=True)
    raise typer.Exit(1)


@app.command(name="pipeline")
@user_errors
def pipeline_cmd(
    testbed: Annotated[str, typer.Option(help=f"Testbed: one of {sorted(TESTBEDS)}.")] = "us-32",
    out: Annotated[Path, typer.Option(help="New directory for the model and its certificate.")] = Path("runs/us-32"),
    seed: Annotated[int, typer.Option(help="Training and bootstrap seed.")] = 0,
    n_boot: Annotated[int, typer.Option(help="Bootstrap resamples for every CI.")] = 1000,
    data: DataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The main job: train the encoder policy, certify it, register it. Exit code 1 if not certified."""
    with _bar("training") as bar:
        task = bar.add_task("fit", total=None)
        result = run_pipeline(
            testbed,
            out,
            resolve_data_root(data),
            seed=seed,
            n_boot=n_boot,
            on_step=lambda m: bar.update(task, description=m),
            on_train=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if result.new_key is not None and not as_json:
        console.print(f"created a signing key at {result.new_key} (see `valuemulch keys init --help`)")
    if as_json:
        cert = result.certificate
        print(json.dumps({"model": str(result.model_dir), "registry_id": result.entry.id, "seconds": result.seconds,
                          "certificate": str(result.certificate_path), "certified": cert.verdict.certified,
                          "one_minus_jsd": cert.evaluation.seen.metrics["one_minus_jsd"].model_dump(mode="json")}, indent=2))  # fmt: skip
    else:
        _print_verdict(result.certificate, result.certificate_path.parent, False)
        console.print(
            f"model: {result.model_dir}  registered as {result.entry.id}\n"
            f"time: train {result.seconds['train']:.0f} s, certify {result.seconds['certify']:.0f} s, total {result.seconds['total']:.0f} s\n"
            f"next: valuemulch verify {result.certificate_path}"
        )
    if not result.certificate.verdict.certified:
        raise typer.Exit(1)


@data_app.command("export")
@user_errors
def data_export(
    out: Annotated[Path, typer.Option(help="Output file: .jsonl or .csv (canonical format).")],
    norms: Annotated[Path | None, typer.Option(help="Input data in any supported format.")] = None,
    testbed: Annotated[str | None, typer.Option(help="Export a testbed instead (all communities, all splits).")] = None,
    data: DataOpt = None,
) -> None:
    """Convert data to the canonical JSONL or CSV."""
    if (norms is None) == (testbed is None):
        raise ConfigError("Give exactly one of --norms PATH or --testbed NAME.")
    source = read_norms(norms) if norms is not None else load_testbed(str(testbed), resolve_data_root(data)).norms
    if out.suffix.lower() not in (".jsonl", ".csv"):
        raise ConfigError(f"--out must end in .jsonl or .csv, got '{out.name}'.")
    written = (write_jsonl if out.suffix.lower() == ".jsonl" else write_csv)(source, out)
    typer.echo(
        f"wrote {len(source)} items to {written} (renormalised on input: {source.renormalised}; skipped: {source.skipped or 'none'})"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
