"""What one request, and one client, may cost the service: text, new questions, seconds and a rate.

A request that asks for many long, new questions can hold a worker for minutes (each new option text
goes through the encoder and the tier-1 detector). So every request carries a `Budget`: its text and
its uncached questions are counted before any model runs (413 past the caps), and the work checks
the deadline between questions (503 with ``Retry-After`` past it). A request stopped that way logs
nothing: an audit record is written only for an answer that is about to be sent. A per-client token
bucket (`RateLimit`) answers 429 before a request reaches a worker.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from valuemulch.serve._middleware import ServiceError, error_body
from valuemulch.settings import Limits
from valuemulch.types import Question

RETRY_AFTER_S = 5  # what an over-deadline answer tells the client to wait: the work done so far is cached
CLIENTS = 10_000  # token buckets kept (least recently seen dropped first), so many addresses cannot grow memory


def text_chars(questions: Sequence[Question]) -> int:
    return sum(len(q.text) + sum(len(o) for o in q.options) for q in questions)


@dataclass
class Budget:
    """One request's allowance: checked when it arrives, and between questions while it is answered."""

    limits: Limits
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        return self.started + self.limits.deadline_s

    def check_text(self, questions: Sequence[Question]) -> None:
        chars = text_chars(questions)
        if chars > self.limits.max_total_chars:
            raise ServiceError(
                413,
                "over_budget",
                f"This request holds {chars} characters of question and option text; one request may hold "
                f"{self.limits.max_total_chars}. Split it into smaller requests.",
                "questions",
            )

    def check_new(self, n_new: int) -> None:
        if n_new > self.limits.max_new_questions:
            raise ServiceError(
                413,
                "over_budget",
                f"This request asks {n_new} questions the service has not answered before; one request may ask "
                f"{self.limits.max_new_questions} new ones (answered ones are cached and cost nothing). Split it.",
                "questions",
            )

    def check_time(self) -> None:
        """503 past the deadline: the work stops here, and nothing of this request is logged."""
        if time.monotonic() > self.deadline:
            raise ServiceError(
                503,
                "over_deadline",
                f"This request needed more than its {self.limits.deadline_s:g} s of work and was stopped; nothing was logged. "
                f"The questions answered so far are cached: retry after {RETRY_AFTER_S} s, or send fewer new questions.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )


class _Buckets:
    """Token buckets per client: ``burst`` tokens, refilled at ``rate`` per second."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate, self.burst = per_minute / 60.0, float(burst)
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go, else the seconds until a token is free."""
        now = time.monotonic()
        with self._lock:
            tokens, seen = self._state.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._state[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._state) > CLIENTS:
                self._state.popitem(last=False)
        return wait


class RateLimit:
    """429 with ``Retry-After`` for a client (by address) past ``limits.rate_per_minute``; health is exempt,
    so a load balancer's probes never use a client's allowance."""

    EXEMPT = ("/v1/health",)

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.buckets = None if limits.rate_per_minute is None else _Buckets(limits.rate_per_minute, limits.rate_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http" or scope.get("path") in self.EXEMPT:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.buckets.take(client)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            message = f"Too many requests from {client}; this service allows {self.buckets.rate * 60:g} a minute. Retry after {retry} s."
            response = JSONResponse(error_body(429, "rate_limited", message), status_code=429, headers={"Retry-After": str(retry)})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
