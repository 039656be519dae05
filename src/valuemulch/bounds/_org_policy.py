"""Tier 2: the deploying organisation's policy file (TOML or YAML), validated with clear errors.

max_divergence = 0.2                      # JSD distance allowed between a community's answer and the population's
allowed_communities = ["POLPARTY:*", "Japan"]  # shell-style patterns; absent = every community
[[no_personalise]]                        # answer with the population distribution
topic = "elections"
keywords = ["election", "ballot"]
[[refuse]]                                # do not answer at all
topic = "medical dosing"
keywords = ["dosage", "overdose"]
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from valuemulch.bounds._text import canonical
from valuemulch.errors import ConfigError

KEYS = {"max_divergence", "allowed_communities", "no_personalise", "refuse"}


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]

    def matches(self, text: str) -> bool:
        """Whether a keyword is in ``text``, both read in canonical form (``over\u200bdose`` is "overdose")."""
        text = canonical(text)
        return any(re.search(rf"\b{re.escape(canonical(k))}\b", text, re.IGNORECASE) for k in self.keywords)


@dataclass(frozen=True)
class OrgPolicy:
    max_divergence: float | None = None
    allowed_communities: tuple[str, ...] | None = None
    no_personalise: tuple[Topic, ...] = field(default_factory=tuple)
    refuse: tuple[Topic, ...] = field(default_factory=tuple)

    def allows(self, community: str) -> bool:
        return self.allowed_communities is None or any(fnmatch.fnmatchcase(community, p) for p in self.allowed_communities)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "policy") -> OrgPolicy:
        def fail(field_name: str, expected: str, got: Any, fix: str) -> ConfigError:
            return ConfigError(f"{where}: field '{field_name}': expected {expected}, got {got!r}. Fix: {fix}")

        if not isinstance(raw, dict):
            raise fail(
                "(top level)", "a table of settings", type(raw).__name__, "write key = value settings (see docs/bounds.md)"
            )
        unknown = set(raw) - KEYS
        if unknown:
            raise fail(sorted(unknown)[0], f"one of {sorted(KEYS)}", sorted(unknown)[0], "remove or correct the key")
        budget = raw.get("max_divergence")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget <= 1):
            raise fail("max_divergence", "a number in [0, 1] (a Jensen-Shannon distance)", budget, "e.g. max_divergence = 0.2")
        allowed = raw.get("allowed_communities")
        if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) and a for a in allowed)):
            raise fail("allowed_communities", "a list of community ids or patterns", allowed, 'e.g. ["POLPARTY:*", "Japan"]')
        topics: dict[str, tuple[Topic, ...]] = {}
        for key in ("no_personalise", "refuse"):
            entries = raw.get(key, [])
            if not isinstance(entries, list):
                raise fail(key, "a list of {topic, keywords} tables", entries, f"write [[{key}]] tables")
            parsed = []
            for i, entry in enumerate(entries):
                ok = isinstance(entry, dict) and set(entry) == {"topic", "keywords"} and isinstance(entry["topic"], str)
                keywords = entry.get("keywords") if isinstance(entry, dict) else None
                if (
                    not ok
                    or not isinstance(keywords, list)
                    or not keywords
                    or not all(isinstance(k, str) and k.strip() for k in keywords)
                ):
                    raise fail(
                        f"{key}[{i}]",
                        "a table with 'topic' (text) and 'keywords' (non-empty list of text)",
                        entry,
                        'e.g. topic = "x", keywords = ["y"]',
                    )
                parsed.append(Topic(entry["topic"], tuple(k.strip() for k in keywords)))
            topics[key] = tuple(parsed)
        return cls(
            None if budget is None else float(budget),
            None if allowed is None else tuple(allowed),
            topics["no_personalise"],
            topics["refuse"],
        )


def load_org_policy(path: str | Path) -> OrgPolicy:
    """Read and validate a policy file; ``.toml``, ``.yaml`` or ``.yml``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such policy file; pass --policy-file with a .toml or .yaml file.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            raw: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(text) or {}
            except yaml.YAMLError as err:
                raise ConfigError(f"{path}: not valid YAML: {err}. Fix the syntax at the position shown.") from None
        else:
            raise ConfigError(f"{path}: expected a .toml, .yaml or .yml policy file, got '{path.suffix or 'no suffix'}'.")
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.').upper()}: {err}. Fix the syntax at the position shown."
        ) from None
    return OrgPolicy.from_dict(raw, where=str(path))
