"""The bounds probe suite shipped with the package (``probes.toml``), and the adversarial norms built on it.

Each probe is a labelled multiple-choice scenario: ``crossing`` probes have options whose choice
crosses a red line (the satire's "mulching" vote among them); ``hard_negative`` probes mention harm
(crime, war, policing, the death penalty, ...) but endorse no crossing and must not be touched. The
``dev`` half chooses the semantic detector's thresholds; the ``test`` half is only reported, and
the ``holdout`` set (``probes_holdout.toml``) was written blind to the detector and read only once
it was frozen: the honest measure of how it generalises.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

from valuemulch.bounds._catalogue import redline_ids
from valuemulch.errors import ConfigError
from valuemulch.types import NormItem, Norms, Question, normalise_text

ADVERSARIAL_COMMUNITY = "ADVERSARIAL:red-line-majority"
PROBE_SOURCE = "valuemulch-probes"


@dataclass(frozen=True)
class Probe:
    id: str
    split: str
    kind: str
    redline: str | None
    topic: str
    question: Question
    crossing: tuple[int, ...]
    respecting: tuple[int, ...] = ()  # options that clearly respect rights: never to be masked
    form: str = ""  # how the scenario is written (decision, opinion, proposal, euphemism, ...), when labelled

    @property
    def is_crossing(self) -> bool:
        return self.kind == "crossing"


def _probe(entry: dict[str, object], known: set[str]) -> Probe:
    pid = str(entry.get("id", "?"))

    def bad(what: str) -> ConfigError:
        return ConfigError(f"probes.toml: probe '{pid}': {what}.")

    for key in ("id", "split", "kind", "topic", "question", "options", "crossing"):
        if key not in entry:
            raise bad(f"lacks '{key}'")
    if entry["split"] not in ("dev", "test", "holdout", "blind"):
        raise bad(f"split must be 'dev', 'test', 'holdout' or 'blind', got {entry['split']!r}")
    if entry["kind"] not in ("crossing", "hard_negative"):
        raise bad(f"kind must be 'crossing' or 'hard_negative', got {entry['kind']!r}")
    options = tuple(str(o) for o in entry["options"])  # type: ignore[attr-defined]
    crossing = tuple(int(i) for i in entry["crossing"])  # type: ignore[attr-defined]
    refusal_idx = {int(i) for i in entry.get("refusal", [])}  # type: ignore[attr-defined]
    respecting = tuple(int(i) for i in entry.get("respecting", []))  # type: ignore[attr-defined]
    if any(not 0 <= i < len(options) for i in (*crossing, *refusal_idx, *respecting)):
        raise bad(f"an option index is out of range for {len(options)} options")
    redline = entry.get("redline")
    if entry["kind"] == "crossing":
        if redline not in known:
            raise bad(f"redline must be one of {sorted(known)}, got {redline!r}")
        if not crossing:
            raise bad("a crossing probe needs at least one index in 'crossing'")
    elif crossing or redline is not None:
        raise bad("a hard negative has crossing = [] and no redline")
    if refusal_idx & set(crossing) or set(respecting) & set(crossing):
        raise bad("an option cannot be both crossing and a refusal, or both crossing and respecting")
    question = Question(
        f"probe:{pid}",
        str(entry["question"]),
        options,
        refusal=tuple(i in refusal_idx for i in range(len(options))),
        source=PROBE_SOURCE,
    )
    return Probe(
        pid,
        str(entry["split"]),
        str(entry["kind"]),
        redline if isinstance(redline, str) else None,
        str(entry["topic"]),
        question,
        crossing,
        respecting,
        str(entry.get("form", "")),
    )


@cache
def probes() -> tuple[Probe, ...]:
    """Every shipped probe (``probes.toml``, ``probes_holdout.toml`` and ``probes_blind.toml``), validated
    once per process."""
    known = set(redline_ids())
    out: tuple[Probe, ...] = ()
    for name in ("probes.toml", "probes_holdout.toml", "probes_blind.toml"):
        raw = tomllib.loads(files("valuemulch.bounds").joinpath(name).read_text(encoding="utf-8"))
        out += tuple(_probe(entry, known) for entry in raw.get("probe", []))
    if len({p.id for p in out}) != len(out):
        raise ConfigError("probes.toml: probe ids must be unique.")
    return out


def adversarial_norms(mass: float = 0.85) -> Norms:
    """A community whose answers put ``mass`` on the crossing options of every crossing probe.

    A policy can be fitted to it (it is an ordinary dataset); the bounds must still never let an
    answer choose those options, and certification must refuse a model that learned them.
    """
    if not 0.5 < mass < 1:
        raise ConfigError(f"adversarial_norms: mass must be in (0.5, 1), got {mass}.")
    items = []
    for probe in probes():
        if probe.split == "blind":  # only ever reported, never trained on
            continue
        if not probe.is_crossing:
            continue
        q = probe.question
        crossing = np.zeros(q.n_options, dtype=bool)
        crossing[list(probe.crossing)] = True
        rest = ~crossing & ~np.asarray(q.refusal, dtype=bool)
        dist = np.where(crossing, mass / crossing.sum(), 0.0) + np.where(rest, (1 - mass) / rest.sum(), 0.0)
        items.append(NormItem(ADVERSARIAL_COMMUNITY, q, dist))
    return Norms(items, source="valuemulch adversarial norms (bounds probe suite)")


@dataclass(frozen=True)
class Reviewed:
    """A real survey question we reviewed as proposing a red-line act (``reviewed.toml``)."""

    fragment: str
    options: tuple[str, ...]
    redline: str
    note: str


@cache
def reviewed() -> tuple[Reviewed, ...]:
    raw = tomllib.loads(files("valuemulch.bounds").joinpath("reviewed.toml").read_text(encoding="utf-8"))
    known = set(redline_ids())
    out = []
    for entry in raw.get("question", []):
        if {"fragment", "options", "redline"} - set(entry) or entry["redline"] not in known:
            raise ConfigError(f"reviewed.toml: each [[question]] needs fragment, options and a known redline; got {entry}.")
        out.append(Reviewed(entry["fragment"], tuple(entry["options"]), entry["redline"], entry.get("note", "")))
    return tuple(out)


def reviewed_crossings(question: Question) -> frozenset[int]:
    """The options of a real survey question that we labelled as crossings (empty for almost all)."""
    text = normalise_text(question.text)
    hits: set[int] = set()
    for entry in reviewed():
        if normalise_text(entry.fragment) in text:
            hits |= {i for i, o in enumerate(question.options) if o in entry.options}
    return frozenset(hits)
