"""`verify_chain`: what ``valuemulch audit verify`` checks, read-only, in a process of its own.

Record by record: the sequence has no gap, each record links to the one before, its hash matches its
content, its JSON columns are the canonical text of what they hold (no duplicate keys, which SQL
readers and Python resolve differently), and each checkpoint is signed by a trusted key over the
head and length of the chain before it. What no signature covers (the records after the last
checkpoint) cannot be told from a log cut or rewritten there: those records are counted as at risk,
unless the operator's own copy of the head (``expect_head``) vouches for them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from valuemulch.errors import ConfigError
from valuemulch.serve._audit import _SELECT, AUDIT_ENV, GENESIS, HASHED_FIELDS, MAX_PROBLEMS, canonical_text, record_hash
from valuemulch.serve._audit_checkpoint import CHECKPOINT_ENDPOINT, checkpoint_problem, trusted_by_id

_TEXT = ("ts", "request_hash", "community", "model_id", "endpoint")
_JSON_AT = {"bounds": HASHED_FIELDS.index("bounds"), "answer": HASHED_FIELDS.index("answer")}


@dataclass
class ChainReport:
    """``ok``: no problem (the chain, the stored texts and every checkpoint hold, and the expected head is there).

    ``findings`` are what an intact chain still cannot prove, chiefly the ``at_risk`` records after
    ``signed_through``, the last record a trusted signature or the expected head vouches for.
    """

    ok: bool
    n_records: int
    problems: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    head: str = GENESIS
    last_seq: int = 0
    n_checkpoints: int = 0
    last_checkpoint: int = 0
    signed_through: int = 0
    at_risk: int = 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"has the key {twice!r} twice (SQL readers see the first value, Python the last)")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"holds {name}, which is not JSON")


def parse_stored(name: str, text: Any) -> dict[str, Any]:
    """The object a JSON column holds; ValueError for anything `append` could not have written."""
    if not isinstance(text, str):
        raise ValueError(f"{name} is stored as {type(text).__name__}, not text")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise ValueError(f"{name} is not valid JSON") from None
    except ValueError as err:
        raise ValueError(f"{name} {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} is a JSON {type(value).__name__}, not an object")
    return value


def _stored_fields(row: tuple[Any, ...]) -> dict[str, Any]:
    """The hashed fields as `append` hashed them; raises ValueError for a column no append could write."""
    fields = dict(zip(HASHED_FIELDS, row[: len(HASHED_FIELDS)], strict=True))
    if fields["certified"] not in (0, 1) or isinstance(fields["certified"], float):
        raise ValueError(f"certified is {fields['certified']!r}, not 0 or 1")
    fields["certified"] = bool(fields["certified"])
    for name in _TEXT:
        if not isinstance(fields[name], str):
            raise ValueError(f"{name} is stored as {type(fields[name]).__name__}, not text")
    if not (fields["certificate_id"] is None or isinstance(fields["certificate_id"], str)):
        raise ValueError(f"certificate_id is stored as {type(fields['certificate_id']).__name__}, not text")
    for name in _JSON_AT:
        fields[name] = parse_stored(name, fields[name])
    return fields


class _Walk:
    """One pass over the rows in seq order, keeping what the report needs."""

    def __init__(self, trusted: Sequence[Ed25519PublicKey], expect_head: str | None) -> None:
        self.trusted = trusted_by_id(list(trusted))
        self.expect_head = expect_head
        self.expect_seq: int | None = 0 if expect_head == GENESIS else None
        self.problems: list[str] = []
        self.n_problems = self.n_records = self.n_checkpoints = self.last_checkpoint = self.every = 0
        self.prev: tuple[int, str] | None = None  # the previous record's (seq, stored hash)

    def problem(self, text: str) -> None:
        self.n_problems += 1
        if self.n_problems <= MAX_PROBLEMS:
            self.problems.append(text)

    def row(self, row: tuple[Any, ...]) -> None:
        self.n_records += 1
        prev, seq, prev_hash, stored = self.prev, row[0], row[10], row[11]
        expected_seq = prev[0] + 1 if prev is not None else 1
        if seq != expected_seq:
            where = f"seq {seq} follows seq {prev[0]}" if prev is not None else f"the first record is seq {seq}, not 1"
            self.problem(f"gap: {where} (record deleted?)")
        elif prev_hash != (prev[1] if prev is not None else GENESIS):
            self.problem(f"seq {seq}: prev_hash does not link to {f'seq {prev[0]}' if prev is not None else 'the genesis hash'}")
        try:
            fields = _stored_fields(row)
        except ValueError as err:
            self.problem(f"seq {seq}: {err} (record edited?)")
            fields = None
        if fields is not None:
            self._content(seq, row, fields)
        if stored == self.expect_head:
            self.expect_seq = seq
        self.prev = (seq, stored)

    def _content(self, seq: int, row: tuple[Any, ...], fields: dict[str, Any]) -> None:
        prev_hash = row[10]
        if not isinstance(prev_hash, str) or record_hash(prev_hash, fields) != row[11]:
            self.problem(f"seq {seq}: hash does not match its content (record edited?)")
            return
        for name, at in _JSON_AT.items():
            if row[at] != canonical_text(fields[name]):
                self.problem(f"seq {seq}: {name} is not stored as the canonical JSON of its content (record edited?)")
        if fields["endpoint"] == CHECKPOINT_ENDPOINT:
            self.n_checkpoints += 1
            why, every = checkpoint_problem(seq, prev_hash, fields["answer"], self.trusted)
            if why is not None:
                self.problem(f"seq {seq}: {why}")
            else:
                self.last_checkpoint, self.every = seq, every

    def report(self) -> ChainReport:
        last_seq, head = self.prev if self.prev is not None else (0, GENESIS)
        if self.expect_head is not None and self.expect_seq is None:
            self.problem(
                f"the expected head {self.expect_head} is no record's hash: records were cut from the end or the log "
                f"was rewritten since it was taken (the head is now {head}, seq {last_seq})"
            )
        if self.n_problems > MAX_PROBLEMS:
            self.problems.append(f"... and {self.n_problems - MAX_PROBLEMS} more")
        signed_through = max(self.last_checkpoint, self.expect_seq or 0)
        report = ChainReport(
            ok=self.n_problems == 0,
            n_records=self.n_records,
            problems=self.problems,
            head=head,
            last_seq=last_seq,
            n_checkpoints=self.n_checkpoints,
            last_checkpoint=self.last_checkpoint,
            signed_through=signed_through,
            at_risk=max(last_seq - signed_through, 0),
        )
        report.findings = _findings(report, self.every, self.expect_head, self.expect_seq)
        return report


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _findings(report: ChainReport, every: int, expect_head: str | None, expect_seq: int | None) -> list[str]:
    """What an intact chain still does not prove, in words an operator can act on."""
    out: list[str] = []
    last, covered = report.last_seq, report.signed_through
    if report.n_records == 0 and expect_head is None:
        out.append(
            "the log is empty and nothing in it is signed: a log whose every record was deleted looks the same "
            "(check it against the head you keep with --expect-head)"
        )
    if report.at_risk:
        since = f"the last signed checkpoint (seq {report.last_checkpoint})" if report.last_checkpoint else "no signed checkpoint"
        out.append(
            f"{_records(report.at_risk)} at risk: seq {covered + 1}-{last} follow {since} and no signature covers them, "
            f"so the log is unverifiable beyond seq {covered}: records cut from its end, rewritten or appended after "
            f"seq {covered} leave no trace here (keep the head elsewhere and pass --expect-head)"
        )
    tail = last - report.last_checkpoint
    if every and tail > every:
        out.append(
            f"{tail} records follow the last checkpoint, more than the {every} the service writes between checkpoints: "
            f"a writer without the service's key appended them, or the log was rewritten after seq {report.last_checkpoint}"
        )
    if expect_head is not None and expect_seq is not None and expect_seq < last:
        out.append(f"the expected head is record {expect_seq}; {_records(last - expect_seq)} appended since")
    return out


def verify_chain(path: str | Path, trusted: Sequence[Ed25519PublicKey] = (), *, expect_head: str | None = None) -> ChainReport:
    """Walks the log at ``path`` read-only and reports every gap, broken link, edited record and bad
    checkpoint by seq; checkpoints count only when signed by one of the ``trusted`` keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"No audit log at {path}; expected the audit.sqlite the decision service writes. Pass its path (or set {AUDIT_ENV})."
        )
    walk = _Walk(trusted, expect_head.strip().lower() if expect_head is not None else None)
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as err:
        raise ConfigError(f"{path}: cannot open the audit log read-only ({err}); check the path and its permissions.") from None
    try:
        # One SELECT is one read snapshot, so appends made meanwhile do not show as problems.
        for row in con.execute(f"{_SELECT} ORDER BY seq"):
            walk.row(row)
    except sqlite3.DatabaseError as err:
        raise ConfigError(
            f"{path}: not a readable audit log ({err}); expected the SQLite file with a 'decisions' table "
            f"that the decision service writes."
        ) from None
    finally:
        con.close()
    return walk.report()
