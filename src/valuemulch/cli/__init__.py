"""The ``valuemulch`` command line: one module per command group, each command a thin layer that
loads its options, calls one library function and prints a Rich table or JSON. User errors print one
line and exit 2; bugs keep their traceback.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from valuemulch.cli import audit, bounds, certify, data, evaluate, registry, serve, train

__all__ = ["app"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Train, certify and deploy models of many communities' views, inside bounds."
)
app.add_typer(data.data_app, name="data")
app.add_typer(bounds.bounds_app, name="bounds")
app.add_typer(certify.keys_app, name="keys")
app.add_typer(registry.registry_app, name="registry")
app.add_typer(audit.audit_app, name="audit")


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# Registered in this order so that `valuemulch --help` lists them as it always has.
app.command()(data.testbeds)
app.command()(data.policies)
app.command(name="evaluate")(evaluate.evaluate_cmd)
app.command(name="train")(train.train_cmd)
app.command(name="adapt")(train.adapt_cmd)
app.command(name="certify")(certify.certify_cmd)
app.command(name="verify")(certify.verify_cmd)
app.command(name="serve")(serve.serve_cmd)
app.command(name="admin-key")(serve.admin_key)
app.command(name="pipeline")(train.pipeline_cmd)
