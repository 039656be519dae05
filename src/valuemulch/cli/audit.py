"""`valuemulch audit`: verify the decision service's audit log, and copy it with SQLite's backup API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from valuemulch.certify import trusted_keys
from valuemulch.cli._errors import user_errors
from valuemulch.cli._options import AUDIT_HELP
from valuemulch.serve import ChainReport, backup_audit, export_audit, verify_chain
from valuemulch.settings import Settings

audit_app = typer.Typer(no_args_is_help=True, help="The decision service's hash-chained, signed audit log.")
AuditOpt = Annotated[Path | None, typer.Option(help=AUDIT_HELP)]


def _print(path: Path, report: ChainReport) -> None:
    state = "chain intact" if report.ok else "chain BROKEN:"
    typer.echo(f"audit log {path}: {report.n_records} records, {state}", err=not report.ok)
    for problem in report.problems:
        typer.echo(f"  {problem}", err=True)
    typer.echo(f"head: {report.head} (seq {report.last_seq}; keep it elsewhere, check it later with --expect-head)")
    where = f"the last at seq {report.last_checkpoint}" if report.last_checkpoint else "none valid"
    typer.echo(f"signed checkpoints: {report.n_checkpoints} ({where}); records at risk: {report.at_risk}")
    for finding in report.findings:
        typer.echo(f"finding: {finding}")


@audit_app.command("verify")
@user_errors
def audit_verify(
    audit: AuditOpt = None,
    key: Annotated[
        list[Path] | None,
        typer.Option(help="Public key of the service that signs the checkpoints; repeat for more (default: your own)."),
    ] = None,
    expect_head: Annotated[
        str | None, typer.Option(help="A head printed earlier and kept elsewhere: it must still be in the chain.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Exit 1 on any finding too, such as records no signature covers.")] = False,
) -> None:
    """Check the hash chain, the stored texts and the signed checkpoints record by record.

    Exit 0 when intact (findings, such as records at risk after the last checkpoint, are printed), 1 otherwise."""
    path = audit or Settings().audit
    report = verify_chain(path, trusted_keys(key or [], key_dir=Settings().keys), expect_head=expect_head)
    _print(path, report)
    if not report.ok or (strict and report.findings):
        raise typer.Exit(1)


@audit_app.command("backup")
@user_errors
def audit_backup(
    out: Annotated[Path, typer.Option(help="The new SQLite file to write (never overwritten).")], audit: AuditOpt = None
) -> None:
    """Copy the live log with SQLite's online backup API: one snapshot, WAL included, no -wal to carry."""
    copied = backup_audit(audit or Settings().audit, out)
    typer.echo(f"copied {copied.n_records} records to {copied.path}; head {copied.head} (seq {copied.last_seq})")


@audit_app.command("export")
@user_errors
def audit_export(
    out: Annotated[Path, typer.Option(help="The JSON Lines file to write (never overwritten).")], audit: AuditOpt = None
) -> None:
    """Write every record of one snapshot of the log (SQLite's backup API) as JSON Lines, in seq order."""
    copied = export_audit(audit or Settings().audit, out)
    typer.echo(f"exported {copied.n_records} records to {copied.path}; head {copied.head} (seq {copied.last_seq})")
