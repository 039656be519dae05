"""How results look: the Rich console, JSON on stdout, numbers to three places, progress bars, and
the certification verdict that `certify` and `pipeline` both print."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from valuemulch.backbones import PromptProgress, showing_prompts
from valuemulch.certify import CERTIFICATE, Report

console = Console(width=None if sys.stdout.isatty() else 200)  # pipes and CI logs get full rows


def print_json(document: Any, *, indent: int = 2, allow_nan: bool = True) -> None:
    """The ``--json`` output: the document alone on stdout, so it pipes into ``jq``."""
    print(json.dumps(document, indent=indent, allow_nan=allow_nan))


def fmt(x: float | None, digits: int = 3) -> str:
    """A metric for a table: three places, ``n/a`` where there is no value."""
    return "n/a" if x is None else f"{x:.{digits}f}"


def fmt_ci(ci: list[float | None] | tuple[float | None, float | None]) -> str:
    """A confidence interval as ``[low, high]``."""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def progress_bar(description: str) -> Progress:
    """A bar on stderr that vanishes when done, so stdout holds only the result."""
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


class _Rate(ProgressColumn):
    """Prompts per second over the last few updates (Rich's own speed estimate)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:.1f} prompts/s" if task.speed else "", style="progress.data.speed")


@contextmanager
def stage_progress(title: str) -> Iterator[Callable[[str], None]]:
    """A stage line (spinner, what runs now, time so far) and, once a language model is asked anything,
    a prompt bar with ETA and prompts per second. Yields the function that names the current stage.

    At the end it prints how many model answers came from the response cache and how many were asked.
    """
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
        TimeRemainingColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    )  # fmt: skip
    stage = progress.add_task(title, total=None)
    lock = threading.Lock()
    counts = {"cached": 0, "asked": 0}
    prompts: list[Any] = []

    def planned(n: int) -> None:
        with lock:
            if not prompts:
                prompts.append(progress.add_task("language-model prompts", total=0))
            progress.update(prompts[0], total=(progress.tasks[prompts[0]].total or 0) + n)

    def done(n: int, cached: bool) -> None:
        with lock:
            counts["cached" if cached else "asked"] += n
            if prompts:
                progress.advance(prompts[0], n)

    with progress, showing_prompts(PromptProgress(planned=planned, done=done)):
        yield lambda message: progress.update(stage, description=message)
    if counts["cached"] or counts["asked"]:
        total = counts["cached"] + counts["asked"]
        console.print(
            f"language-model answers: {total} ({counts['cached']} from the response cache, {counts['asked']} asked)",
            highlight=False,
        )


def print_verdict(cert: Report, directory: Path, as_json: bool) -> None:
    """A certificate's verdict: headline agreement, every rule passed or failed, where the files are."""
    seen = cert.evaluation.seen.metrics
    summary = {
        "certificate": str(directory / CERTIFICATE),
        "report": str(directory / "report.html"),
        "certificate_id": cert.certificate_id,
        "certified": cert.verdict.certified,
        "one_minus_jsd": seen["one_minus_jsd"].model_dump(mode="json"),
        "tv": seen["tv"].model_dump(mode="json"),
        "rules": [r.model_dump(mode="json") for r in cert.verdict.rules],
    }
    if as_json:
        print_json(summary)
        return
    verdict = "[bold green]CERTIFIED[/]" if cert.verdict.certified else "[bold red]NOT CERTIFIED[/]"
    m = seen["one_minus_jsd"]
    console.print(f"{verdict}  {cert.model.label} on {cert.testbed.name}: 1-JSD {fmt(m.mean)} {fmt_ci(m.ci)}")
    for rule in cert.verdict.rules:
        console.print(f"  {'pass' if rule.passed else '[red]FAIL[/]'}  {rule.id}: {rule.detail}")
    console.print(f"certificate: {summary['certificate']}\nreport: {summary['report']}")
