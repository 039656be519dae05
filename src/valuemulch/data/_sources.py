"""Choosing a command's input norms, and writing norms in the canonical format the path names."""

from __future__ import annotations

from pathlib import Path

from valuemulch.data._canonical import write_csv, write_jsonl
from valuemulch.data._load import read_norms, resolve_data_root
from valuemulch.data._testbeds import Split, load_testbed
from valuemulch.errors import ConfigError
from valuemulch.types import Norms


def norms_or_testbed(
    norms: Path | None, testbed: str | None, data: Path | None = None, *, split: Split | None = None
) -> tuple[str, Norms]:
    """Read exactly one of a data path (any supported format) or a testbed, with a label of where from.

    A testbed gives every community's items of ``split``, or its whole data when ``split`` is None.
    The data directory is resolved only for a testbed, so a path works without one.

    Returns:
        ``(source, norms)``: the path as given, or ``testbed:<name>`` (``testbed:<name>/<split>``).

    Raises:
        ConfigError: both or neither are given.
    """
    if (norms is None) == (testbed is None):
        raise ConfigError("Give exactly one of --norms PATH or --testbed NAME.")
    if norms is not None:
        return str(norms), read_norms(norms)
    loaded = load_testbed(str(testbed), resolve_data_root(data))
    if split is None:
        return f"testbed:{testbed}", loaded.norms
    return f"testbed:{testbed}/{split}", loaded.items(split, "all")


def write_norms(norms: Norms, path: Path) -> Path:
    """Write ``norms`` as canonical JSONL or CSV, as the suffix of ``path`` says; nothing else is written.

    Raises:
        ConfigError: the suffix is neither ``.jsonl`` nor ``.csv``.
    """
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise ConfigError(f"--out must end in .jsonl or .csv, got '{path.name}'.")
    return (write_jsonl if suffix == ".jsonl" else write_csv)(norms, path)
