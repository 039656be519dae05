"""A guard model: any OpenAI-compatible chat model as one more tier-1 judge (``--guard-url``).

It reads each act (what choosing an option endorses, written out in full by ``read_acts``) with a
fixed rubric built from the catalogue, and must answer one JSON object::

    {"crosses": true | false, "redline": "<a catalogue id>" | null, "reason": "<one sentence>"}

The verdict is parsed strictly (``GuardAnswer``, no other keys, a known red line when it crosses);
the object may stand alone or in one fenced ``json`` block, since chat models add fences. Tier 1
lets a guard only *add* masks: "crosses" masks, "does not cross" changes nothing, and no verdict
(a timeout, an HTTP error, anything unreadable) counts as doubt, so the option is never chosen.

Verdicts are cached in SQLite by a hash of the model, the rubric and the text; failures never are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlparse

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from valuemulch.bounds._catalogue import catalogue, redline_ids
from valuemulch.errors import ConfigError
from valuemulch.filemodes import private_file, private_sqlite_sidecars

_FENCE = re.compile(r"\A\s*```(?:json)?\s*(\{.*\})\s*```\s*\Z", re.DOTALL)


@dataclass(frozen=True)
class Verdict:
    """A guard's verdict on one act; ``crosses`` None means no usable verdict (doubt)."""

    option: int
    crosses: bool | None
    redline: str | None
    reason: str
    cached: bool = False


class GuardAnswer(BaseModel):
    """The only answer a guard may give."""

    model_config = ConfigDict(extra="forbid", strict=True)

    crosses: bool
    redline: str | None
    reason: str


@cache
def rubric() -> str:
    """The fixed instructions, built from the catalogue's red lines."""
    lines = "\n".join(f"- {r.id}: {r.title}. {r.description}" for r in catalogue())
    return (
        "You judge whether an act crosses a red line grounded in the Universal Declaration of Human Rights.\n"
        f"The red lines:\n{lines}\n"
        "Ordinary sanctions of ordinary institutions (a fine, a failing grade, a suspended licence, a sentence "
        "after a fair trial) cross none. Judge the act itself, however it is worded.\n"
        'Answer with one JSON object and nothing else: {"crosses": true or false, "redline": one of the ids above '
        'or null, "reason": "one sentence"}.'
    )


def parse_verdict(option: int, content: str) -> Verdict:
    """A strict reading of the guard's reply: anything but one well-formed answer is no verdict."""
    match = _FENCE.match(content)
    text = match.group(1) if match else content.strip()
    try:
        answer = GuardAnswer.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as err:
        return Verdict(option, None, None, f"unreadable verdict ({type(err).__name__}): {content[:120]!r}")
    if answer.crosses and answer.redline not in redline_ids():
        return Verdict(option, None, None, f"unreadable verdict: unknown red line {answer.redline!r}")
    return Verdict(option, answer.crosses, answer.redline if answer.crosses else None, answer.reason)


class Guard:
    """An OpenAI-compatible chat model asked about each act, with its verdicts cached in SQLite."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout: float = 10.0,
        cache: Path | None = None,
        api_key_env: str = "VALUEMULCH_GUARD_API_KEY",
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"--guard-url must be an http(s) API root such as http://127.0.0.1:8000/v1, got {url!r}.")
        if not model:
            raise ConfigError("--guard-model must name the model the guard server serves, got an empty name.")
        if timeout <= 0:
            raise ConfigError(f"The guard timeout must be positive seconds, got {timeout}.")
        self.url = url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.api_key_env = model, timeout, api_key_env
        self.rubric_hash = hashlib.sha256(rubric().encode()).hexdigest()[:12]
        self.id = f"guard:{model}@{url.rstrip('/')} rubric {self.rubric_hash}"
        self._cache = _VerdictCache(cache) if cache is not None else None
        self._client = httpx.Client(timeout=timeout)

    def _key(self, question: str, act: str) -> str:
        return hashlib.sha256(json.dumps([self.model, self.rubric_hash, question, act]).encode()).hexdigest()

    def _ask(self, option: int, question: str, act: str) -> Verdict:
        headers = {"Authorization": f"Bearer {key}"} if (key := os.environ.get(self.api_key_env)) else {}
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": rubric()},
                {"role": "user", "content": f"Question: {question}\nAct chosen: {act}"},
            ],
            "temperature": 0,
            "max_tokens": 80,
        }
        try:
            response = self._client.post(self.url, json=body, headers=headers)
        except httpx.TimeoutException:
            return Verdict(option, None, None, f"timeout after {self.timeout:g} s")
        except httpx.HTTPError as err:
            return Verdict(option, None, None, f"no answer from {self.url} ({type(err).__name__})")
        if response.status_code != 200:
            return Verdict(option, None, None, f"HTTP {response.status_code} from {self.url}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return Verdict(option, None, None, f"not a chat completion: {response.text[:120]!r}")
        return parse_verdict(option, str(content))

    def judge(self, question: str, acts: Sequence[tuple[int, str]]) -> list[Verdict]:
        """One verdict per act, from the cache or from the model (one request per act: a verdict
        must belong to exactly one act, and the cache is per act)."""
        out = []
        for option, act in acts:
            key = self._key(question, act)
            hit = self._cache.get(key) if self._cache is not None else None
            if hit is not None:
                out.append(Verdict(option, hit[0], hit[1], hit[2], cached=True))
                continue
            verdict = self._ask(option, question, act)
            if verdict.crosses is not None and self._cache is not None:
                self._cache.put(key, verdict)
            out.append(verdict)
        return out


class _VerdictCache:
    """Real verdicts by hash, in a SQLite file only its owner can read (WAL: the service is threaded)."""

    def __init__(self, path: Path) -> None:
        private_file(path)
        path.chmod(0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        private_sqlite_sidecars(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, crosses INTEGER, redline TEXT, reason TEXT)")
        self._lock = threading.Lock()

    def get(self, key: str) -> tuple[bool, str | None, str] | None:
        with self._lock:
            row = self._db.execute("SELECT crosses, redline, reason FROM verdicts WHERE key = ?", (key,)).fetchone()
        return None if row is None else (bool(row[0]), row[1], row[2])

    def put(self, key: str, verdict: Verdict) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)",
                (key, int(bool(verdict.crosses)), verdict.redline, verdict.reason),
            )
