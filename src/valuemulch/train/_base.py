"""What every training method shares: the config base, the run on a testbed, and its provenance.

The artifact says what it was trained on (testbed, split, the hash of the training items and of the
whole testbed), with which seed and code version, so a certificate can check it and anyone can
train it again.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from valuemulch.data import TESTBEDS, Testbed, load_testbed, read_norms, resolve_data_root
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy
from valuemulch.types import Norms

# what a pydantic error type means, said as "must be ..." (the rest keep pydantic's own words)
_ALLOWED = {
    "greater_than": "> {gt}",
    "greater_than_equal": ">= {ge}",
    "less_than": "< {lt}",
    "less_than_equal": "<= {le}",
    "literal_error": "one of {expected}",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
}


class _BaseConfig(BaseModel):
    """Fields every training run has; ``extra="forbid"`` so a misspelt key fails instead of doing nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    RUN_FIELDS: ClassVar[frozenset[str]] = frozenset({"out"})

    seed: int = Field(0, description="Training seed (for policies that take one).")
    out: Path | None = Field(None, description="Where to write what the run trains.")

    @classmethod
    def hyperparameters(cls) -> list[str]:
        """The fields that configure the method itself (what ``--set key=value`` may change)."""
        return [name for name in cls.model_fields if name not in cls.RUN_FIELDS]

    @classmethod
    def parse(cls, values: dict[str, Any]) -> Self:
        """Build the config, turning pydantic's errors into one ``ConfigError`` that names each field,
        what it allows and what came."""
        try:
            return cls(**values)
        except ValidationError as err:
            raise ConfigError(explain(cls, err)) from None


def explain(cls: type[BaseModel], err: ValidationError) -> str:
    """``The 'epochs' field of EncoderConfig must be > 0; got 0.`` for each error, joined."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            parts.append(f"{cls.__name__} has no field '{field}'; valid fields: {sorted(cls.model_fields)}.")
            continue
        template = _ALLOWED.get(e["type"])
        allowed = template.format(**e.get("ctx", {})) if template else str(e["msg"]).removeprefix("Value error, ")
        if not field:  # a check across fields says what came itself
            parts.append(f"{cls.__name__} needs {allowed}.")
            continue
        parts.append(f"The '{field}' field of {cls.__name__} must be {allowed}; got {e['input']!r}.")
    return " ".join(parts)


class _PolicyConfig(_BaseConfig):
    """Fields of a run that fits a policy on a testbed's train split."""

    RUN_FIELDS: ClassVar[frozenset[str]] = frozenset({"testbed", "out", "data", "add_norms"})

    seed: int = Field(0, ge=0, description="Training seed (for policies that take one).")  # the policies' SEED rule
    testbed: str = Field(description=f"Testbed: one of {sorted(TESTBEDS)}.")
    out: Path | None = Field(None, description="Directory to write the model artifact to (created; replaced if it holds one).")
    data: Path | None = Field(None, description="Data directory (else $VALUEMULCH_DATA, else the user cache).")
    add_norms: Path | None = Field(None, description="Also train on these items (your own communities, any supported format).")

    def policy_params(self) -> dict[str, Any]:
        """The policy's keyword arguments: the hyper-parameter fields, without the run's."""
        return self.model_dump(include=set(self.hyperparameters()))

    @field_validator("testbed")
    @classmethod
    def _known_testbed(cls, value: str) -> str:
        if value not in TESTBEDS:
            raise ValueError(f"one of {sorted(TESTBEDS)} (run `valuemulch testbeds` to list them)")
        return value


@dataclass
class Trained:
    policy: Policy
    provenance: dict[str, Any]
    seconds: float
    items: int
    questions: int
    communities: list[str]


class TrainingRun:
    """The data of one run (the testbed's train split of seen communities, plus the organisation's own
    items when given) and, once fitted, the provenance that records both separately."""

    def __init__(self, config: _PolicyConfig, testbed: Testbed | None = None) -> None:
        self.config = config
        self.testbed = testbed or load_testbed(config.testbed, resolve_data_root(config.data))
        self.testbed_items = self.testbed.items("train", "seen")
        self.extra: Norms | None = read_norms(config.add_norms) if config.add_norms is not None else None
        self.norms = self.testbed_items
        if self.extra is not None and len(self.extra):
            clash = sorted(set(self.extra.communities) & set(self.testbed.communities))
            if clash:
                raise ConfigError(
                    f"--add-norms holds communities the testbed already has ({clash[:5]}); give your communities their own ids."
                )
            self.norms = self.testbed_items.merged(self.extra)
        self._start = time.perf_counter()

    def finish(self, policy: Policy, policy_name: str, *, encoder_id: str | None) -> Trained:
        """Stop the clock and write down what was trained, on what, with what."""
        seconds = time.perf_counter() - self._start
        tb, extra = self.testbed, self.extra
        provenance = {
            "trained_on": {
                "testbed": tb.name,
                "split": "train",
                "communities": tb.seen,
                "items": len(self.testbed_items),
                "items_hash": self.testbed_items.content_hash(),
                "testbed_hash": tb.norms.content_hash(),
                "extra": None
                if extra is None or not len(extra)
                else {
                    "source": str(self.config.add_norms or ""),
                    "items": len(extra),
                    "communities": extra.communities,
                    "items_hash": extra.content_hash(),
                },
            },
            "policy": policy_name,
            "params": (params := policy.get_params(deep=False)),
            "seed": params.get("seed"),
            "encoder_id": encoder_id,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "fit_seconds": round(seconds, 2),
            "environment": {"valuemulch": version("valuemulch"), "python": platform.python_version()},
        }
        norms = self.norms
        return Trained(policy, provenance, seconds, len(norms), len(norms.questions), norms.communities)
