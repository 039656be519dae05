"""A guard model: any OpenAI-compatible chat model as one more tier-1 judge (``--guard-url``).

It reads each act (what choosing an option endorses, written out in full by ``read_acts``) with a
fixed rubric built from the catalogue, and must answer one JSON object::

    {"crosses": true | false, "redline": "<a catalogue id>" | null, "reason": "<one sentence>"}

The verdict is parsed strictly (``GuardAnswer``, no other keys, a known red line when it crosses);
the object may stand alone or in one fenced ``json`` block, since chat models add fences. Tier 1
lets a guard only *add* masks: "crosses" masks, "does not cross" changes nothing, and no verdict
(a timeout, an HTTP error, anything unreadable) counts as doubt, so the option is never chosen.

Readable verdicts are cached (the shared response cache, keyed by the endpoint, the model and the whole
request: rubric, question and act); failures and unreadable replies never are.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, ValidationError

from valuemulch.backbones import ChatEndpoint, EndpointError, ResponseCache, Retries, request_key
from valuemulch.bounds._catalogue import catalogue, redline_ids
from valuemulch.errors import ConfigError

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
    """An OpenAI-compatible chat model asked about each act, with its readable verdicts cached.

    It shares the ``lm`` policy's client and response cache (``ChatEndpoint``, ``ResponseCache``),
    with one attempt per act: inside a request's deadline a failure is doubt, not a wait.
    """

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
        self._endpoint = ChatEndpoint(url, api_key_env=api_key_env, timeout=timeout, concurrency=1, retries=Retries(attempts=1))
        self.url = self._endpoint.url
        self.model, self.timeout, self.api_key_env = model, timeout, api_key_env
        self.rubric_hash = hashlib.sha256(rubric().encode()).hexdigest()[:12]
        self.id = f"guard:{model}@{url.rstrip('/')} rubric {self.rubric_hash}"
        self._identity = {"endpoint": self._endpoint.root, "model": model, "role": "guard"}
        self._cache = ResponseCache(cache) if cache is not None else None

    def _body(self, question: str, act: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [
                {"role": "system", "content": rubric()},
                {"role": "user", "content": f"Question: {question}\nAct chosen: {act}"},
            ],
            "temperature": 0,
            "max_tokens": 80,
        }

    @staticmethod
    def _read(option: int, payload: dict[str, Any]) -> Verdict:
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return Verdict(option, None, None, f"not a chat completion: {str(payload)[:120]!r}")
        return parse_verdict(option, str(content))

    def judge(self, question: str, acts: Sequence[tuple[int, str]]) -> list[Verdict]:
        """One verdict per act, from the cache or from the model (one request per act: a verdict
        must belong to exactly one act, and the cache is per act). Only readable verdicts are cached."""
        out = []
        for option, act in acts:
            body = self._body(question, act)
            key = request_key(self._identity, body)
            hit = self._cache.get(key) if self._cache is not None else None
            if hit is not None:
                cached = self._read(option, hit)
                out.append(Verdict(option, cached.crosses, cached.redline, cached.reason, cached=True))
                continue
            try:
                payload = self._endpoint.post(body)
            except EndpointError as err:
                out.append(Verdict(option, None, None, err.reason))
                continue
            verdict = self._read(option, payload)
            if verdict.crosses is not None and self._cache is not None:
                self._cache.put(key, self.id, body, payload)
            out.append(verdict)
        return out
