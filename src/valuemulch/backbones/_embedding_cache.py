"""An on-disk embedding cache: one SQLite file, rows keyed by encoder id and the text's hash.

Training re-embeds the same few thousand question and option texts on every run; the cache makes a
warm run skip the encoder entirely. Keys use the exact text (not a normalised form) because that is
what the encoder saw, and the encoder id, so vectors from different weights never mix.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from valuemulch.backbones._encoders import TextEncoder
from valuemulch.data import user_cache_dir
from valuemulch.filemodes import private_file, private_sqlite_sidecars

CACHE_FILE = "embeddings.sqlite"
MEMORY_ITEMS = 100_000  # ~150 MB of 384-d float32 vectors at most


def default_cache_path() -> Path:
    return user_cache_dir() / CACHE_FILE


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Embeds texts with ``encoder``, reading and writing ``path`` (the user cache by default)."""

    def __init__(self, encoder: TextEncoder, path: str | Path | None = None, *, batch_size: int = 256) -> None:
        self.encoder = encoder
        self.path = Path(path) if path is not None else default_cache_path()
        self.batch_size = batch_size
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, np.ndarray] = {}  # this process's recent vectors: a service asks again and again

    def _connect(self) -> sqlite3.Connection:
        created = private_file(self.path)  # owner-only: the texts' hashes say what was asked
        con = sqlite3.connect(self.path, timeout=30)
        con.execute("PRAGMA journal_mode=WAL")
        if created:
            private_sqlite_sidecars(self.path)
        con.execute(
            "CREATE TABLE IF NOT EXISTS vectors (encoder TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL,"
            " vector BLOB NOT NULL, PRIMARY KEY (encoder, key))"
        )
        return con

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors; only texts not cached yet reach the encoder."""
        unique = list(dict.fromkeys(texts))
        keys = {t: _key(t) for t in unique}
        found: dict[str, np.ndarray] = {k: v for k in keys.values() if (v := self._memory.get(k)) is not None}
        if len(found) == len(keys):
            self.hits += len(unique)
            return (
                np.stack([found[keys[t]] for t in texts]).astype(np.float32, copy=False)
                if texts
                else np.zeros((0, self.encoder.dim), dtype=np.float32)
            )
        con = self._connect()
        try:
            key_list = list(keys.values())
            for start in range(0, len(key_list), 900):  # SQLite's bound-parameter limit
                chunk = key_list[start : start + 900]
                rows = con.execute(
                    f"SELECT key, dim, vector FROM vectors WHERE encoder = ? AND key IN ({','.join('?' * len(chunk))})",
                    [self.encoder.id, *chunk],
                ).fetchall()
                for key, dim, blob in rows:
                    if dim == self.encoder.dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
            missing = [t for t in unique if keys[t] not in found]
            self.hits += len(unique) - len(missing)
            self.misses += len(missing)
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                vectors = np.asarray(self.encoder.encode(batch), dtype=np.float32)
                if vectors.shape != (len(batch), self.encoder.dim):
                    raise ValueError(
                        f"encoder '{self.encoder.id}' returned shape {vectors.shape} for {len(batch)} texts, "
                        f"expected ({len(batch)}, {self.encoder.dim})"
                    )
                with con:
                    con.executemany(
                        "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)",
                        [(self.encoder.id, keys[t], self.encoder.dim, v.tobytes()) for t, v in zip(batch, vectors, strict=True)],
                    )
                found.update({keys[t]: v for t, v in zip(batch, vectors, strict=True)})
        finally:
            con.close()
        if len(self._memory) > MEMORY_ITEMS:
            self._memory.clear()
        self._memory.update(found)
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([found[keys[t]] for t in texts]).astype(np.float32, copy=False)
