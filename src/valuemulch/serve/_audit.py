"""The decision service's audit log: every decision, appended to one SQLite file as a hash chain.

Each record stores the SHA-256 of the previous record's hash plus its own canonical JSON, so that
editing, deleting or reordering a record breaks the chain where it happened, and `verify_chain` (run
by a separate process, ``valuemulch audit verify``) names the record. The JSON columns hold exactly
that canonical text, so no SQL reader can see other values than the hash covers. The service
acknowledges a request only after `AuditLog.append` returns, which is after COMMIT with WAL and
``synchronous=FULL``: a ``kill -9`` (or power loss) then can lose only records that were never
acknowledged. A log opened with a signing key also writes a signed checkpoint every
``checkpoint_every`` records and when it is closed (see `_audit_checkpoint`), so that history up to
the last checkpoint cannot be cut or rewritten unnoticed. The file and its directory are created
owner-only (600 and 700). ``VALUEMULCH_AUDIT`` overrides the location.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from valuemulch.errors import ConfigError, DataError
from valuemulch.filemodes import private_file, private_sqlite_sidecars
from valuemulch.serve._audit_checkpoint import CHECKPOINT_ENDPOINT, CHECKPOINT_EVERY, checkpoint_fields, make_checkpoint
from valuemulch.settings import Settings, env_name

logger = logging.getLogger(__name__)
AUDIT_ENV = env_name("audit")
GENESIS = "0" * 64
# The fields a record's hash covers, in the order of the table's columns.
HASHED_FIELDS = (
    "seq",
    "ts",
    "request_hash",
    "community",
    "model_id",
    "certificate_id",
    "certified",
    "endpoint",
    "bounds",
    "answer",
)
COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, request_hash TEXT NOT NULL,"
    " community TEXT NOT NULL, model_id TEXT NOT NULL, certificate_id TEXT, certified INTEGER NOT NULL,"
    " endpoint TEXT NOT NULL, bounds TEXT NOT NULL, answer TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL UNIQUE)"
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM decisions"
_INSERT = f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# A partial index: the last checkpoint is one index read, however long the log.
_CHECKPOINT_INDEX = (
    f"CREATE INDEX IF NOT EXISTS decisions_checkpoints ON decisions (seq) WHERE endpoint = '{CHECKPOINT_ENDPOINT}'"
)
_LAST_CHECKPOINT = f"SELECT COALESCE(MAX(seq), 0) FROM decisions WHERE endpoint = '{CHECKPOINT_ENDPOINT}'"
_PAGE = 500  # rows `records` reads per lock hold, so that a long listing never stalls appends
MAX_PROBLEMS = 20


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays (what models return) become plain numbers and lists.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_text(value: Any) -> str:
    """The one JSON text a value hashes as: sorted keys, no spaces, UTF-8 kept, no NaN or Infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_jsonable)


def _non_finite(value: Any, where: str) -> tuple[str, float] | None:
    """Where in ``value`` the first NaN or Infinity is (``answer['p'][2]``) and what it is, for the error message."""
    if not isinstance(value, float) and hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, value)
    if isinstance(value, dict):
        items: Any = ((f"{where}[{k!r}]", v) for k, v in value.items())
    elif isinstance(value, list | tuple):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for at, v in items:
        found = _non_finite(v, at)
        if found is not None:
            return found
    return None


def _to_json(name: str, value: Any) -> str:
    if not isinstance(value, dict):
        raise DataError("audit record", field=name, expected="a dict", got=value, fix=f"pass {name} as a dict of JSON values.")
    bad = _non_finite(value, name)
    if bad is not None:
        raise DataError(
            "audit record",
            field=bad[0],
            expected="a finite number (JSON, and so the audit log, has no NaN or Infinity)",
            got=bad[1],
            fix="do not acknowledge a decision whose numbers are not finite; fix the model output, or record null.",
        )
    try:
        return canonical_text(value)
    except (TypeError, ValueError) as err:
        raise DataError(
            "audit record",
            field=name,
            expected="JSON values only (str keys; str, int, finite float, bool, None, list, dict)",
            got=value,
            fix=f"convert {name} to plain JSON values before appending ({err}).",
        ) from None


def _check_text(name: str, value: Any, *, optional: bool = False) -> None:
    # A non-str would be stored converted by the TEXT column's affinity and then no longer match its hash.
    if not (isinstance(value, str) or (optional and value is None)):
        raise DataError(
            "audit record",
            field=name,
            expected="a str" + (" or None" if optional else ""),
            got=value,
            fix=f"pass {name} as a string.",
        )


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 hex of ``prev_hash`` followed by the canonical JSON of the hashed fields of ``fields``."""
    missing = [name for name in HASHED_FIELDS if name not in fields]
    if missing:
        raise ConfigError(
            f"record_hash needs the fields {', '.join(HASHED_FIELDS)}; {', '.join(missing)} missing from "
            f"{sorted(fields)}. Pass a Record's fields (`Record.to_dict()`)."
        )
    content = canonical_text({name: fields[name] for name in HASHED_FIELDS})
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def request_hash(body: bytes | dict[str, Any]) -> str:
    """SHA-256 hex of the request exactly as received (a dict hashes as its canonical JSON)."""
    if isinstance(body, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(body)).hexdigest()
    if isinstance(body, dict):
        return hashlib.sha256(canonical_text(body).encode("utf-8")).hexdigest()
    raise ConfigError(
        f"request_hash expects the raw request bytes or a dict, got {type(body).__name__}; pass `await request.body()`."
    )


@dataclass(frozen=True)
class Record:
    seq: int
    ts: str
    request_hash: str
    community: str
    model_id: str
    certificate_id: str | None
    certified: bool
    endpoint: str
    bounds: dict[str, Any]
    answer: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _record(row: tuple[Any, ...]) -> Record:
    return Record(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        bool(row[6]),
        row[7],
        json.loads(row[8]),
        json.loads(row[9]),
        row[10],
        row[11],
    )


def _last(con: sqlite3.Connection) -> tuple[int, str]:
    """The last record's (seq, hash), or (0, the genesis hash) in an empty log."""
    last = con.execute("SELECT seq, hash FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(last[0]), str(last[1])) if last is not None else (0, GENESIS)


def _insert(con: sqlite3.Connection, fields: dict[str, Any]) -> Record:
    """Insert the record ``fields`` describe (all columns but ts and hash), storing its JSON as canonical text."""
    fields = {**fields, "ts": datetime.now(UTC).isoformat(timespec="microseconds")}
    digest = record_hash(fields["prev_hash"], fields)
    row = {**fields, "hash": digest, "certified": int(fields["certified"])}
    row["bounds"], row["answer"] = canonical_text(fields["bounds"]), canonical_text(fields["answer"])
    con.execute(_INSERT, tuple(row[name] for name in COLUMNS))
    return Record(**{name: fields[name] for name in COLUMNS if name != "hash"}, hash=digest)


class AuditUnavailable(Exception):
    """The audit log cannot take a record now (locked, full, I/O error): the decision must not be sent."""


def _fields(
    *,
    request_hash: str,
    community: str,
    model_id: str,
    certificate_id: str | None,
    certified: bool,
    endpoint: str,
    bounds: dict[str, Any],
    answer: dict[str, Any],
) -> dict[str, Any]:
    """A decision's fields, checked, as they read back (so its hash is what `verify_chain` recomputes)."""
    for name, value in (("request_hash", request_hash), ("community", community), ("model_id", model_id), ("endpoint", endpoint)):
        _check_text(name, value)
    _check_text("certificate_id", certificate_id, optional=True)
    if certified not in (True, False):
        raise DataError("audit record", field="certified", expected="a bool", got=certified, fix="pass certified as True or False.")
    if endpoint == CHECKPOINT_ENDPOINT:
        raise DataError(
            "audit record", field="endpoint", expected="a route", got=endpoint, fix="checkpoints are written by the log itself."
        )
    return {
        "request_hash": request_hash,
        "community": community,
        "model_id": model_id,
        "certificate_id": certificate_id,
        "certified": bool(certified),
        "endpoint": endpoint,
        "bounds": json.loads(_to_json("bounds", bounds)),
        "answer": json.loads(_to_json("answer", answer)),
    }


class AuditLog:
    """Appends decisions to the hash chain at ``path`` (`Settings.audit` by default); safe across threads and processes.

    One connection per instance, shared by the service's worker threads: a lock serialises its use
    within the process, and ``BEGIN IMMEDIATE`` serialises writers across processes, so each append
    reads the true last record before linking to it. With ``signing_key`` (the service's), a signed
    checkpoint follows in the same transaction once ``checkpoint_every`` records have no checkpoint
    after them, and `close` writes one too.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        busy_timeout: float = 30.0,
        max_bytes: int | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else Settings().audit
        if checkpoint_every < 1:
            raise ConfigError(
                f"checkpoint_every must be at least 1 record, got {checkpoint_every}; the default is {CHECKPOINT_EVERY}."
            )
        self._key = signing_key
        self.checkpoint_every = checkpoint_every
        self._lock = threading.Lock()
        self._closed = False
        created = private_file(self.path)  # before SQLite opens it: its -wal and -shm take this file's mode
        self.max_bytes = max_bytes
        self._con = sqlite3.connect(self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        try:
            self._open(created)
        except sqlite3.DatabaseError as err:
            self._con.close()
            raise ConfigError(
                f"{self.path}: cannot open as an audit log ({err}); expected an SQLite file, "
                f"point {AUDIT_ENV} at a new or existing audit.sqlite."
            ) from None
        except BaseException:
            self._con.close()
            raise

    def _open(self, created: bool) -> None:
        mode = self._con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ConfigError(
                f"{self.path}: the audit log needs SQLite's WAL mode, got journal mode '{mode}'; "
                f"put it on a local filesystem (set {AUDIT_ENV} to a file path)."
            )
        self._con.execute("PRAGMA synchronous=FULL")
        if self.max_bytes is not None:  # a cap, so a full log is refused like a full disk (SQLITE_FULL), not a crash
            page = int(self._con.execute("PRAGMA page_size").fetchone()[0])
            self._con.execute(f"PRAGMA max_page_count = {max(1, self.max_bytes // page)}")
        self._con.execute(_SCHEMA)
        self._con.execute("CREATE INDEX IF NOT EXISTS decisions_request_hash ON decisions (request_hash)")
        self._con.execute(_CHECKPOINT_INDEX)
        found = tuple(row[1] for row in self._con.execute("PRAGMA table_info(decisions)"))
        if found != COLUMNS:
            raise ConfigError(
                f"{self.path}: table 'decisions' has columns {found}, expected {COLUMNS}; "
                f"this file is not a valuemulch audit log, point {AUDIT_ENV} at another path."
            )
        if created:
            private_sqlite_sidecars(self.path)

    def append(self, **entry: Any) -> Record:
        """Commits one decision linked to the last record (`append_many` of one)."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Sequence[dict[str, Any]]) -> list[Record]:
        """Commits decisions linked in order to the last record, in one transaction: all are durable
        when this returns, or none was written. Each entry has the fields of a record (request_hash,
        community, model_id, certificate_id, certified, endpoint, bounds, answer).

        Raises:
            AuditUnavailable: the log could not be written (locked past the busy timeout, disk or
                size cap full, I/O error); nothing of ``entries`` is in it.
        """
        checked = [_fields(**entry) for entry in entries]
        out = []
        try:
            with self._lock, self._transaction() as con:
                for fields in checked:
                    prev_seq, prev_hash = _last(con)
                    record = _insert(con, {**fields, "seq": prev_seq + 1, "prev_hash": prev_hash})
                    out.append(record)
                    if self._key is not None and record.seq - con.execute(_LAST_CHECKPOINT).fetchone()[0] >= self.checkpoint_every:
                        self._insert_checkpoint(con, record.seq, record.hash, "every")
        except sqlite3.OperationalError as err:
            raise AuditUnavailable(f"{self.path}: {err}") from err
        return out

    def checkpoint(self, reason: str = "requested") -> Record | None:
        """Sign the chain's head now (None without a signing key, or when the last record is a checkpoint)."""
        if self._key is None:
            return None
        with self._lock, self._transaction() as con:
            last = con.execute("SELECT seq, hash, endpoint FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
            if last is not None and last[2] == CHECKPOINT_ENDPOINT:
                return None
            seq, head = (last[0], last[1]) if last is not None else (0, GENESIS)
            return self._insert_checkpoint(con, seq, head, reason)

    def _insert_checkpoint(self, con: sqlite3.Connection, count: int, head: str, reason: str) -> Record:
        assert self._key is not None
        answer = make_checkpoint(self._key, count=count, head=head, every=self.checkpoint_every, reason=reason)
        return _insert(con, checkpoint_fields(count + 1, head, answer))

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` on the shared connection (callers hold the lock); rolled back on any error."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql, params).fetchall()

    def count(self) -> int:
        """Records in the log: the last seq, since appends number them 1, 2, ... with no gap (a primary-key read, not a scan)."""
        return int(self._fetch("SELECT COALESCE(MAX(seq), 0) FROM decisions")[0][0])

    def last(self) -> Record | None:
        rows = self._fetch(f"{_SELECT} ORDER BY seq DESC LIMIT 1")
        return _record(rows[0]) if rows else None

    def get(self, seq: int) -> Record | None:
        rows = self._fetch(f"{_SELECT} WHERE seq = ?", (seq,))
        return _record(rows[0]) if rows else None

    def find(self, request_hash: str) -> list[Record]:
        """Every decision made for this request (a retried request appears more than once)."""
        return [_record(r) for r in self._fetch(f"{_SELECT} WHERE request_hash = ? ORDER BY seq", (request_hash,))]

    def records(self, start: int = 1) -> Iterator[Record]:
        """Records with ``seq >= start`` in seq order, read a page at a time."""
        after = start - 1
        while True:
            rows = self._fetch(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", (after, _PAGE))
            yield from (_record(r) for r in rows)
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    def close(self) -> None:
        """Sign the head (with a signing key: a clean shutdown ends on a checkpoint), then close; once only."""
        if self._closed:
            return
        try:
            if self._key is not None:
                self.checkpoint("close")
        except (AuditUnavailable, sqlite3.OperationalError) as err:  # a full or locked log still closes
            logger.warning("%s: the closing checkpoint could not be written (%s); audit verify will report the records at risk.", self.path, err)
        finally:
            with self._lock:
                self._closed = True
                self._con.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
