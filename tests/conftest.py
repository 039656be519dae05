"""Shared test fixtures: the real data directory (skipped cleanly when absent) and built testbeds."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
# Tests (and the CLI processes they start) keep embeddings out of the user's cache; the directory
# persists between runs so that a second local run is warm, and nothing depends on it being warm.
os.environ.setdefault("VALUEMULCH_CACHE", str(Path(tempfile.gettempdir()) / f"valuemulch-test-cache-{os.getuid()}"))


def _data_root() -> Path | None:
    value = os.environ.get("VALUEMULCH_DATA")
    if value and Path(value).is_dir():
        return Path(value)
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return shared if shared.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("real survey data not found: set VALUEMULCH_DATA=../shared/data")
    return root


@pytest.fixture(scope="session")
def us32(data_root: Path):  # type: ignore[no-untyped-def]
    from valuemulch.data import load_testbed

    return load_testbed("us-32", data_root)


@pytest.fixture(scope="session")
def global32(data_root: Path):  # type: ignore[no-untyped-def]
    from valuemulch.data import load_testbed

    return load_testbed("global-32", data_root)


HOME_ENV = {"VALUEMULCH_KEYS": "keys", "VALUEMULCH_REGISTRY": "registry.sqlite", "VALUEMULCH_AUDIT": "audit.sqlite"}


@contextmanager
def temporary_home(root: Path) -> Iterator[Path]:
    """Signing keys, registry and audit log under ``root``, for this process and the CLI processes it starts."""
    saved = {k: os.environ.get(k) for k in HOME_ENV}
    os.environ.update({k: str(root / name) for k, name in HOME_ENV.items()})
    try:
        yield root
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
