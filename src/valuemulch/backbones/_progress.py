"""Prompt progress: model backends say how many prompts they finished; a command line shows it.

A context variable rather than a parameter, because the calls that send prompts sit many layers
below the command that shows a bar (certify -> evaluation -> policy -> backbone -> backend). The
callback is read in the caller's thread and may then be called from worker threads, so it must be
thread-safe (Rich's progress is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class PromptProgress:
    """``planned(n)``: n more prompts are about to be sent; ``done(n, cached)``: n finished."""

    planned: Callable[[int], None]
    done: Callable[[int, bool], None]


_current: ContextVar[PromptProgress | None] = ContextVar("valuemulch_prompt_progress", default=None)


def _nothing(n: int, cached: bool = False) -> None:
    return None


SILENT = PromptProgress(planned=_nothing, done=_nothing)


def prompt_progress() -> PromptProgress:
    """The active reporter (silent when nothing shows progress)."""
    return _current.get() or SILENT


@contextmanager
def showing_prompts(reporter: PromptProgress) -> Iterator[None]:
    """Send every backend's prompt counts to ``reporter`` inside the block."""
    token = _current.set(reporter)
    try:
        yield
    finally:
        _current.reset(token)
