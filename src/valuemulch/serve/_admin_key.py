"""The admin API key: shown to its owner once; the service keeps only its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from valuemulch.errors import ConfigError


def create_admin_key(out: Path) -> str:
    """Make a new key, write its SHA-256 (hex) to ``out`` and return the key itself.

    Raises:
        ConfigError: ``out`` exists; a key is shown only once, so its hash is never overwritten.
    """
    if out.exists():
        raise ConfigError(f"{out} exists; choose another path (a key is shown only once, so it is never overwritten).")
    key = secrets.token_urlsafe(32)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(hashlib.sha256(key.encode()).hexdigest() + "\n", encoding="utf-8")
    return key


def read_admin_key_hash(path: Path) -> str:
    """The hash `create_admin_key` wrote, lower-cased.

    Raises:
        ConfigError: the file does not hold 64 hex digits (a key pasted in place of its hash, say).
    """
    key_hash = path.read_text(encoding="utf-8").strip().lower()
    if len(key_hash) != 64 or any(c not in "0123456789abcdef" for c in key_hash):
        raise ConfigError(f"{path}: expected the 64 hex digits `valuemulch admin-key` writes, got something else.")
    return key_hash
