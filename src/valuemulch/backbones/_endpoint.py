"""One client for OpenAI-compatible ``/chat/completions`` endpoints (the ``lm`` policy's and the guard's).

httpx with a bounded pool of concurrent requests, timeouts, and retries with exponential backoff and
full jitter that honour ``Retry-After``. Threads rather than asyncio: every caller is synchronous
(policies, the guard inside a threaded service, code already inside an event loop), and one
``httpx.Client`` is thread-safe with a connection pool sized to the concurrency. A request that
cannot be answered raises `EndpointError`, which names the URL, the status and the fix.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import httpx

from valuemulch.errors import ConfigError

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 120.0
#: Worth asking again: the server is busy, restarting or behind a proxy that timed out.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
RUNS_HINT = "check that the server runs and base_url ends with its API root (e.g. http://host:8000/v1)"


class EndpointError(ConfigError):
    """An endpoint gave no usable answer; ``reason`` is the short form (the guard records it as doubt)."""

    def __init__(self, message: str, *, url: str, status: int | None, reason: str) -> None:
        super().__init__(message)
        self.url, self.status, self.reason = url, status, reason


@dataclass(frozen=True)
class Retries:
    """How often, and how patiently, a request is tried again.

    ``attempts`` counts every try (1 = never retry). The wait before try ``k`` (from 0) is drawn
    uniformly from ``[0, min(max_s, base_s * 2**k)]`` (full jitter, so many clients do not retry in
    step), and is never shorter than a ``Retry-After`` the server sent; a server asking for more than
    ``max_retry_after_s`` fails the request at once instead of stalling the run.
    """

    attempts: int = 5
    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_s < 0 or self.max_s < 0 or self.max_retry_after_s < 0:
            raise ConfigError(f"Retries need attempts >= 1 and non-negative waits; got {self}.")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.max_s, self.base_s * 2.0**attempt))
        return backoff if retry_after is None else max(backoff, retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _fix(status: int, api_key_env: str) -> str:
    if status in (401, 403):
        return f"check ${api_key_env} (the endpoint's API key)"
    if status == 404:
        return "check base_url and the model name"
    if status in (400, 422):
        return "the server rejected the request's parameters (logprobs, n, seed?); check what it supports"
    return "check the server's log"


class ChatEndpoint:
    """``POST {base_url}/chat/completions`` with bounded concurrency, timeouts and retries."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = HTTP_TIMEOUT_S,
        concurrency: int = 4,
        retries: Retries | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1 request at a time, got {concurrency}.")
        if timeout <= 0:
            raise ConfigError(f"The endpoint timeout must be positive seconds, got {timeout}.")
        self.root = base_url.rstrip("/")
        self.url = self.root + "/chat/completions"
        self.api_key_env, self.timeout, self.concurrency = api_key_env, timeout, concurrency
        self.retries = retries or Retries()
        self._rng = random.Random()
        self._rng_lock = threading.Lock()
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), limits=limits)

    def close(self) -> None:
        self._client.close()

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)  # read per request, never stored
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _wait(self, attempt: int, retry_after: float | None, what: str) -> None:
        if retry_after is not None and retry_after > self.retries.max_retry_after_s:
            raise EndpointError(
                f"POST {self.url} {what} and asks to wait {retry_after:g} s (Retry-After), more than "
                f"max_retry_after_s={self.retries.max_retry_after_s:g}; try again later or lower the concurrency.",
                url=self.url,
                status=None,
                reason=f"{what}, Retry-After {retry_after:g} s",
            )
        with self._rng_lock:
            delay = self.retries.delay(attempt, retry_after, self._rng)
        logger.info("POST %s %s; retry %d in %.2f s", self.url, what, attempt + 1, delay)
        time.sleep(delay)

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """One completion, tried up to ``retries.attempts`` times on timeouts, lost connections and 408/429/5xx."""
        attempts = self.retries.attempts
        for attempt in range(attempts):
            last = attempt == attempts - 1
            tries = f" after {attempts} attempts" if attempts > 1 else ""
            try:
                response = self._client.post(self.url, json=body, headers=self._headers())
            except httpx.TimeoutException as err:
                if last:
                    raise EndpointError(
                        f"POST {self.url} timed out ({type(err).__name__}, timeout {self.timeout:g} s){tries}; "
                        "raise the timeout or lower the concurrency, and check that the server is not overloaded.",
                        url=self.url,
                        status=None,
                        reason=f"timeout after {self.timeout:g} s",
                    ) from None
                self._wait(attempt, None, f"timed out ({type(err).__name__})")
                continue
            except httpx.HTTPError as err:
                if last:
                    raise EndpointError(
                        f"POST {self.url} failed ({type(err).__name__}: {err}){tries}; {RUNS_HINT}.",
                        url=self.url,
                        status=None,
                        reason=f"no answer from {self.url} ({type(err).__name__})",
                    ) from None
                self._wait(attempt, None, f"failed ({type(err).__name__})")
                continue
            status = response.status_code
            if status == 200:
                return self._read(response)
            if status in RETRY_STATUSES and not last:
                self._wait(attempt, parse_retry_after(response.headers.get("retry-after")), f"answered HTTP {status}")
                continue
            raise EndpointError(
                f"POST {self.url} answered HTTP {status}{tries}: {response.text[:300]!r}; {_fix(status, self.api_key_env)}.",
                url=self.url,
                status=status,
                reason=f"HTTP {status} from {self.url}",
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _read(self, response: httpx.Response) -> dict[str, Any]:
        try:
            payload = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not payload.get("choices"):
            raise EndpointError(
                f"POST {self.url} answered HTTP 200 without a chat completion ('choices'): {response.text[:200]!r}; "
                "is base_url an OpenAI-compatible API root?",
                url=self.url,
                status=200,
                reason=f"not a chat completion: {response.text[:120]!r}",
            )
        return payload

    def post_many(
        self, bodies: Sequence[dict[str, Any]], on_answer: Callable[[int, dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every body's completion, in order, at most ``concurrency`` in flight.

        ``on_answer(i, payload)`` runs as each answer arrives (the cache stores it there), so a run
        that fails later keeps what it was already given. The first failure cancels what has not
        started and is raised once the requests in flight are done.
        """
        if not bodies:
            return []
        if self.concurrency == 1 or len(bodies) == 1:
            out = []
            for i, body in enumerate(bodies):
                out.append(self.post(body))
                if on_answer is not None:
                    on_answer(i, out[-1])
            return out

        def one(i: int) -> dict[str, Any]:
            payload = self.post(bodies[i])
            if on_answer is not None:
                on_answer(i, payload)
            return payload

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(bodies)), thread_name_prefix="endpoint") as pool:
            futures: list[Future[dict[str, Any]]] = [pool.submit(one, i) for i in range(len(bodies))]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                for future in futures:
                    future.cancel()
                wait(futures)
                raise failed.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
