"""The per-user cache: where downloads, the default data directory and embeddings live."""

from __future__ import annotations

from pathlib import Path

from valuemulch.settings import Settings


def user_cache_dir() -> Path:
    """``$VALUEMULCH_CACHE``, else ``$XDG_CACHE_HOME/valuemulch`` (``~/.cache/valuemulch`` by default): `Settings.cache`."""
    return Settings().cache
