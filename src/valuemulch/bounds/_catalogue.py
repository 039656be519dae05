"""Tier 1: the red-line catalogue shipped with the package.

The catalogue (``redlines.toml``) is data, not code, so that a reviewer can read every red line, its
grounding in the Universal Declaration of Human Rights, the patterns and examples that detect it
and what it does not cover, without reading Python. ``_detect`` turns it into a detector.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from valuemulch.errors import ConfigError

TAG_PREFIX = "redline:"


@dataclass(frozen=True)
class RedLine:
    id: str
    title: str
    udhr: tuple[int, ...]
    description: str
    patterns: tuple[re.Pattern[str], ...]
    examples: tuple[str, ...]  # statements that cross it (the semantic detector's positives)
    benign: tuple[str, ...]  # statements on the same topics that cross nothing (its counter-examples)


@cache
def catalogue() -> tuple[RedLine, ...]:
    """The shipped red lines, checked once per process."""
    lines = []
    for entry in _raw().get("redline", []):
        missing = {"id", "title", "udhr", "description", "patterns", "examples", "benign"} - set(entry)
        if missing:
            raise ConfigError(f"redlines.toml: red line {entry.get('id', '?')!r} lacks {sorted(missing)}.")
        lines.append(
            RedLine(
                entry["id"],
                entry["title"],
                tuple(entry["udhr"]),
                entry["description"],
                tuple(re.compile(p, re.IGNORECASE) for p in entry["patterns"]),
                tuple(entry["examples"]),
                tuple(entry["benign"]),
            )
        )
    if len({line.id for line in lines}) != len(lines):
        raise ConfigError("redlines.toml: red line ids must be unique.")
    return tuple(lines)


def redline_ids() -> list[str]:
    return [line.id for line in catalogue()]


@cache
def _raw() -> dict[str, Any]:
    return tomllib.loads(files("valuemulch.bounds").joinpath("redlines.toml").read_text(encoding="utf-8"))


def out_of_scope() -> tuple[str, ...]:
    """Statements that mention harm or share a red line's topic but cross none: the counter-examples."""
    examples = _raw().get("out_of_scope", {}).get("examples", [])
    if not examples:
        raise ConfigError("redlines.toml: [out_of_scope] needs a non-empty 'examples' list.")
    return (*examples, *(b for line in catalogue() for b in line.benign))


@cache
def _statements() -> dict[str, Any]:
    return tomllib.loads(files("valuemulch.bounds").joinpath("statements.toml").read_text(encoding="utf-8"))


def training_statements() -> tuple[list[tuple[str, str]], list[str]]:
    """The semantic detector's training data: ``(statement, red line)`` crossings and benign statements,
    from the catalogue and ``statements.toml``."""
    extra = _statements()
    known = redline_ids()
    unknown = set(extra.get("crossing", {})) - set(known)
    if unknown:
        raise ConfigError(f"statements.toml: [crossing] has unknown red lines {sorted(unknown)}; expected {known}.")
    crossing = [(t, line.id) for line in catalogue() for t in (*line.examples, *extra.get("crossing", {}).get(line.id, []))]
    benign = [*out_of_scope(), *extra.get("benign", {}).get("statements", [])]
    overlap = {t for t, _ in crossing} & set(benign)
    if overlap:
        raise ConfigError(f"redlines.toml/statements.toml: statements labelled both crossing and benign: {sorted(overlap)[:3]}.")
    return crossing, benign


def semantic_settings() -> dict[str, Any]:
    """The semantic detector's encoder, adapter and thresholds (``[semantic]`` in ``redlines.toml``),
    and the logistic regression's own (``regression``, from ``[semantic.regression]``)."""
    settings = _raw().get("semantic", {})
    missing = {"encoder", "threshold_low", "threshold_high", "contrast", "act_cues", "regression"} - set(settings)
    missing |= {
        f"regression.{k}"
        for k in ("l2", "threshold_low", "threshold_high", "contrast")
        if k not in settings.get("regression", {})
    }
    if missing:
        raise ConfigError(f"redlines.toml: [semantic] lacks {sorted(missing)}.")
    return {**settings, "act_cues": re.compile("|".join(f"(?:{c})" for c in settings["act_cues"]), re.IGNORECASE)}


def tier1_settings() -> dict[str, Any]:
    """``[tier1]`` of ``redlines.toml``: the score at most which an option of a decision about people is
    cleared (``cleared``), and the score from which an unmasked option is never chosen (``doubt``)."""
    settings = _raw().get("tier1", {})
    missing = {"cleared", "doubt"} - set(settings)
    if missing:
        raise ConfigError(f"redlines.toml: [tier1] lacks {sorted(missing)}.")
    values = [("cleared", settings["cleared"])] + [("doubt", d) for d in settings["doubt"]]
    if not isinstance(settings["doubt"], list) or any(not isinstance(v, int | float) or not 0 <= v <= 1 for _, v in values):
        raise ConfigError(
            f"redlines.toml: [tier1] needs cleared in [0, 1] and doubt as a list of numbers in [0, 1], got {settings}."
        )
    return settings
