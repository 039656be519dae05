"""Model responses on disk, so that re-runs, ``verify`` and cross-fit folds never pay for a call twice.

One SQLite file (WAL, so several threads and processes write at once), one row per request, keyed
by the SHA-256 of the canonical JSON of the model's identity (endpoint, model name, revision or file
hash) and the full request (messages, parameters, seed). Nothing about the caller's API key is kept.
A file that is not this cache, or that SQLite finds damaged, is refused with what to do: a cache
that answers some requests and silently loses others would make two runs disagree.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valuemulch.errors import ConfigError
from valuemulch.filemodes import private_file, private_sqlite_sidecars
from valuemulch.settings import Settings, env_name

CACHE_FILE = "lm_responses.sqlite"
APPLICATION_ID = 0x564D4C52  # "VMLR": PRAGMA application_id of a ValueMulch response cache
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, request TEXT NOT NULL,"
    " response TEXT NOT NULL, created REAL NOT NULL)"
)


def default_response_cache_path() -> Path:
    """``<Settings().cache>/lm_responses.sqlite`` (``$VALUEMULCH_CACHE`` moves it)."""
    return Settings().cache / CACHE_FILE


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, no NaN, so equal requests hash equally."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def request_key(identity: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"model": identity, "request": request}).encode("utf-8")).hexdigest()


class CorruptCacheError(ConfigError):
    """The cache file is not a readable response cache."""

    def __init__(self, path: Path, *, got: str) -> None:
        super().__init__(
            f"{path}: expected a ValueMulch response cache (a SQLite database), got {got}. Fix: delete the file "
            f"(it holds only cached model responses; they are asked again) or point {env_name('cache')} elsewhere."
        )


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    path: Path

    def __str__(self) -> str:
        return f"{self.hits} hits, {self.misses} misses ({self.path})"


_enabled: ContextVar[bool] = ContextVar("valuemulch_response_cache", default=True)


def response_caching() -> bool:
    """False inside `no_response_cache` (``--no-cache``): every model response is asked for again."""
    return _enabled.get()


@contextmanager
def no_response_cache() -> Iterator[None]:
    """Ask models afresh inside the block: no response is read from or written to a cache."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)


class ResponseCache:
    """Responses by `request_key`; ``hits`` and ``misses`` count this object's look-ups."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_response_cache_path()
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # one connection, shared by the client's worker threads
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        created = private_file(self.path)  # owner-only: the rows say what was asked
        self._check_header()
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            if created:
                private_sqlite_sidecars(self.path)
            check = db.execute("PRAGMA quick_check").fetchall()
            if check != [("ok",)]:
                raise CorruptCacheError(self.path, got=f"a damaged database (quick_check: {check[0][0]!r})")
            db.execute("BEGIN IMMEDIATE")  # two processes creating the file at once: one makes it, one finds it
            try:
                app = db.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if app not in (0, APPLICATION_ID) or (app == 0 and "responses" in tables):
                    raise CorruptCacheError(self.path, got=f"another application's database (application_id {app:#x})")
                db.execute(SCHEMA)
                if app == 0:  # new, or a file this cache adopts (the guard's older verdict cache)
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            private_sqlite_sidecars(self.path)
        except sqlite3.DatabaseError as err:
            db.close()
            raise self._error(err) from None
        except CorruptCacheError:
            db.close()
            raise
        return db

    def _check_header(self) -> None:
        with self.path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
        if head and head != SQLITE_HEADER:
            raise CorruptCacheError(self.path, got=f"a file that starts with {head!r}")

    def _error(self, err: sqlite3.DatabaseError) -> ConfigError:
        if "locked" in str(err) or "busy" in str(err):
            return ConfigError(
                f"{self.path}: the response cache stayed locked by another process for {BUSY_TIMEOUT_S:g} s ({err}); "
                "wait for it to finish, or give this run its own cache (VALUEMULCH_CACHE)."
            )
        return CorruptCacheError(self.path, got=f"an unreadable database ({err})")

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached response, or None (a miss); counts either way."""
        try:
            with self._lock:
                row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.DatabaseError as err:
            raise self._error(err) from None
        if row is None:
            with self._lock:
                self.misses += 1
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            raise CorruptCacheError(self.path, got=f"a row that is not JSON (key {key[:12]})") from None
        if not isinstance(value, dict):
            raise CorruptCacheError(self.path, got=f"a row that is not a JSON object (key {key[:12]})")
        with self._lock:
            self.hits += 1
        return value

    def put(self, key: str, model: str, request: Mapping[str, Any], response: Mapping[str, Any]) -> None:
        """Keep a response (committed at once: a run that fails later keeps it). The first writer wins."""
        row = (key, model, canonical_json(request), canonical_json(response), time.time())
        try:
            with self._lock:
                self._db.execute("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?)", row)
        except sqlite3.DatabaseError as err:
            raise self._error(err) from None

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])

    def stats(self) -> CacheStats:
        return CacheStats(self.hits, self.misses, self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()
