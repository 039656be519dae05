"""The evaluation log: every raw model output an LLM policy read during a certification.

Certifying an ``lm`` (or a ``stack`` over ``lm`` backbones) asks a model thousands of questions; the
log keeps each answer as the model gave it (letter probabilities, replies, parse failures) with the
prompt that asked for it, one JSON object per line, bound to the signed certificate by its SHA-256.
That is what lets ``verify`` re-score a certification without calling a model that may have changed
(``replaying``), and ``verify --requery N`` ask the live model again on a sample (``live``) to
measure the drift. Like Inspect AI's eval logs, the log is the evidence, not a cache: a cache may be
cleared, the log travels with the certificate.

The active log is a context variable, because the calls that ask a model sit many layers below the
certification that wants them logged (certify -> evaluation -> stack -> backbone -> lm).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from valuemulch.errors import ConfigError

LOG_FILE = "evaluation_log.jsonl"
FIELDS = ("key", "model", "method", "community", "question_id", "order", "prompt", "raw", "parse_error")


def request_key(request: dict[str, Any]) -> str:
    """The SHA-256 of a request's canonical JSON (model identity, method, prompt and sampling settings)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EvaluationLog:
    """Raw outputs by request key, in the order first asked.

    ``replaying``: outputs come from the log and nothing is asked, except for the (community,
    question id) pairs in ``live``, which the model answers again (never from a cache).
    """

    def __init__(
        self, entries: Sequence[dict[str, Any]] = (), *, replaying: bool = False, live: Collection[tuple[str, str]] = ()
    ) -> None:
        self._entries: dict[str, dict[str, Any]] = {e["key"]: e for e in entries}
        self.replaying = replaying
        self.live = frozenset(live)
        self.replayed = 0
        self.asked_live = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries.values())

    def is_live(self, community: str, question_id: str) -> bool:
        return (community, question_id) in self.live

    def record(self, entry: dict[str, Any]) -> None:
        """Keep an output the first time its request is asked (later asks of the same request give the
        same answer: a cached endpoint, a deterministic local model, a per-prompt seed)."""
        with self._lock:
            self._entries.setdefault(entry["key"], entry)

    def known(self, key: str) -> dict[str, Any] | None:
        """The entry already recorded for ``key`` in this run, if any: a run never asks a request twice."""
        with self._lock:
            return self._entries.get(key)

    def output(self, key: str, *, community: str, question_id: str) -> dict[str, Any]:
        """The logged entry for ``key``; a clear error when the log has none (it does not belong to this
        model, data or code)."""
        entry = self._entries.get(key)
        if entry is None:
            raise ConfigError(
                f"The evaluation log has no answer for community {community!r} on question {question_id!r}: the log "
                "was not written by this model on this data with this code. Re-certify, or verify with the log it came with."
            )
        with self._lock:
            self.replayed += 1
        return entry

    def to_bytes(self) -> bytes:
        """One canonical JSON object per line (sorted keys, no spaces), in the order first asked."""
        lines = (
            json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            for e in self._entries.values()
        )
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def read(cls, path: Path, *, live: Collection[tuple[str, str]] = ()) -> EvaluationLog:
        """A log file for replay, every line checked for the fields replay needs."""
        entries = []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(
                f"{path}: cannot read the evaluation log ({err}); keep {LOG_FILE} beside certificate.json."
            ) from None
        for n, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{n}: not a JSON object ({err.msg}).") from None
            missing = [f for f in FIELDS if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise ConfigError(f"{path}:{n}: a log entry needs the fields {list(FIELDS)}; missing {missing}.")
            entries.append(entry)
        return cls(entries, replaying=True, live=live)


_active: ContextVar[EvaluationLog | None] = ContextVar("valuemulch_evaluation_log", default=None)


def active_log() -> EvaluationLog | None:
    return _active.get()


@contextmanager
def logging_to(log: EvaluationLog) -> Iterator[EvaluationLog]:
    """Record (or replay) every LLM output read inside the block in ``log``."""
    token = _active.set(log)
    try:
        yield log
    finally:
        _active.reset(token)
