"""The certificate's provenance (code, packages, environment, timing) and its content id.

Split from ``_certificate``: what is measured lives there, what identifies the run lives here.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from valuemulch.certify._certificate import Built, Progress, build_body
from valuemulch.certify._config import CertifyConfig
from valuemulch.certify._record import GitInfo, Provenance
from valuemulch.data import Testbed

PACKAGES = ("numpy", "torch", "sentence-transformers", "transformers", "safetensors", "cryptography")


def _git(cwd: Path) -> GitInfo:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        ).stdout
        return GitInfo(commit=commit, dirty=bool(dirty.strip()))
    except (OSError, subprocess.SubprocessError):
        return GitInfo(commit=None, dirty=None)


def _packages() -> dict[str, str | None]:
    packages: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return packages


def certificate_id(document: dict[str, Any], canonical: Callable[[dict[str, Any]], bytes]) -> str:
    """The first 16 hex digits of the SHA-256 of the canonical JSON of all but the id and the signature."""
    body = {k: v for k, v in document.items() if k not in ("certificate_id", "signature")}
    return hashlib.sha256(canonical(body)).hexdigest()[:16]


def build_certificate(
    model_dir: str | Path,
    testbed: Testbed,
    config: CertifyConfig,
    canonical: Callable[[dict[str, Any]], bytes],
    progress: Progress | None = None,
) -> Built:
    """The unsigned certificate: the body plus provenance, timestamps and its id."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    built = build_body(model_dir, testbed, config, progress)
    finished = datetime.now(UTC)
    report = built.report
    report.created = finished.isoformat(timespec="seconds")
    report.provenance = Provenance(
        valuemulch=version("valuemulch"),
        git=_git(Path(__file__).parent),
        python=platform.python_version(),
        platform=platform.platform(),
        packages=_packages(),
        started=started.isoformat(timespec="seconds"),
        finished=finished.isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - t0, 3),
    )
    report.certificate_id = certificate_id(report.document(), canonical)
    return built
