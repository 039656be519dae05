"""Copies of a live audit log, taken with SQLite's online backup API, never by copying the file.

In WAL mode the newest acknowledged records live in ``audit.sqlite-wal`` until SQLite checkpoints
them into the main file; a file copy without its -wal (or with a -wal from another moment) loses
them and still verifies, since a cut chain is a valid chain. ``Connection.backup`` reads the
database as one snapshot that includes the WAL, while the service keeps writing, so a copy holds
every record committed (and so acknowledged) before it started. Copies are owner-only (600).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from valuemulch.errors import ConfigError
from valuemulch.filemodes import FILE_MODE, private_dir, private_file, private_sqlite_sidecars
from valuemulch.serve._audit import _SELECT, AUDIT_ENV, GENESIS, _record, canonical_text


@dataclass(frozen=True)
class Copied:
    """What a copy holds: how many records, and the hash and seq of its last one (its head)."""

    path: Path
    n_records: int
    head: str
    last_seq: int


def _source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise ConfigError(
            f"No audit log at {path}; expected the audit.sqlite the decision service writes. Pass its path (or set {AUDIT_ENV})."
        )
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as err:
        raise ConfigError(f"{path}: cannot open the audit log read-only ({err}); check the path and its permissions.") from None


@contextmanager
def _fresh(out: Path) -> Iterator[Path]:
    """A new owner-only file beside ``out`` to write, moved to ``out`` once done (removed on failure)."""
    if out.exists():
        raise ConfigError(f"{out} exists; choose a new path (a copy never overwrites a file).")
    private_dir(out.parent)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    private_file(partial)
    try:
        yield partial
        private_sqlite_sidecars(partial)
        os.replace(partial, out)
    except BaseException:
        for leftover in (partial, Path(f"{partial}-journal")):
            leftover.unlink(missing_ok=True)
        raise


def _snapshot(path: Path, target: sqlite3.Connection) -> None:
    """Copy the whole log into ``target`` in one backup step: one read snapshot, WAL included."""
    source = _source(path)
    try:
        source.backup(target)  # pages=-1: a single step, so writes meanwhile neither tear nor restart it
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path}: cannot copy the audit log ({err}); expected the SQLite file the service writes.") from None
    finally:
        source.close()


def _summary(con: sqlite3.Connection, path: Path) -> Copied:
    try:
        n, last = con.execute("SELECT COUNT(*), MAX(seq) FROM decisions").fetchone()
        row = con.execute("SELECT hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.DatabaseError as err:
        raise ConfigError(f"{path}: the copy has no audit records table ({err}); is the source an audit log?") from None
    return Copied(path, int(n), row[0] if row is not None else GENESIS, int(last or 0))


def backup_audit(path: str | Path, out: str | Path) -> Copied:
    """A self-contained SQLite copy of the log at ``path`` (journal mode DELETE: no -wal to go with it)."""
    path, out = Path(path), Path(out)
    with _fresh(out) as partial:
        target = sqlite3.connect(partial)
        try:
            _snapshot(path, target)
            target.execute("PRAGMA journal_mode=DELETE")
            copied = _summary(target, out)
        finally:
            target.close()
    return copied


def export_audit(path: str | Path, out: str | Path) -> Copied:
    """Every record of a snapshot of the log, one canonical JSON object per line (JSON Lines), in seq order."""
    path, out = Path(path), Path(out)
    memory = sqlite3.connect(":memory:")
    try:
        _snapshot(path, memory)
        copied = _summary(memory, out)
        with _fresh(out) as partial:
            fd = os.open(partial, os.O_WRONLY | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                for row in memory.execute(f"{_SELECT} ORDER BY seq"):
                    fh.write(canonical_text(_record(row).to_dict()) + "\n")
    finally:
        memory.close()
    return copied
