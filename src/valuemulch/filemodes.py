"""Owner-only files on disk: what ValueMulch creates (audit log, registry, caches, collected data) is
mode 600 in directories mode 700, whatever the umask, and `loose_modes` names what is not.

The audit log holds the questions deployers asked, and the registry and caches say what was run on
what; none of it is for other users of the machine. Modes are set explicitly (``chmod`` after
creating), because ``mkdir(mode=...)`` and ``os.open(..., mode)`` are both filtered by the umask.
Only what is created here is changed: an existing directory (``/tmp``, a shared data root) keeps
its mode, and `loose_modes` is how ``serve`` warns about it instead.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def private_dir(path: str | Path) -> Path:
    """``path`` as a directory; each directory created on the way (parents too) is mode 700."""
    path = Path(path)
    missing: list[Path] = []
    here = path
    while not here.exists():
        missing.append(here)
        if here.parent == here:
            break
        here = here.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it meanwhile: its mode is its creator's
            continue
        directory.chmod(DIR_MODE)
    return path


def private_file(path: str | Path) -> bool:
    """Create ``path`` empty with mode 600 (in a `private_dir`) unless it exists; True when created here.

    Call it before ``sqlite3.connect``: SQLite gives its -wal and -shm files the database file's mode.
    """
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return True


def private_sqlite_sidecars(path: str | Path) -> None:
    """Mode 600 on the database's -wal, -shm and -journal files that exist now (SQLite made them)."""
    for suffix in SQLITE_SIDECARS:
        sidecar = Path(f"{path}{suffix}")
        try:
            if stat.S_IMODE(sidecar.stat().st_mode) != FILE_MODE:
                sidecar.chmod(FILE_MODE)
        except FileNotFoundError:
            continue


def loose_modes(paths: Iterable[str | Path]) -> list[str]:
    """Each existing path (with its SQLite sidecars) that group or others may read, write or enter,
    as ``"PATH is mode 0644, expected 0600"``; paths that do not exist are skipped."""
    found: list[str] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        candidates = [path] if path.is_dir() else [path, *(Path(f"{path}{s}") for s in SQLITE_SIDECARS)]
        for candidate in candidates:
            if candidate in seen:
                continue
            seen.add(candidate)
            try:
                mode = stat.S_IMODE(candidate.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                expected = DIR_MODE if candidate.is_dir() else FILE_MODE
                found.append(f"{candidate} is mode {mode:04o}, expected {expected:04o}")
    return found
