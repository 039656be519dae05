"""The one interface every policy follows, baselines and recorded frontier models included.

As in scikit-learn: hyper-parameters are keyword-only ``__init__`` arguments, ``fit`` learns state
(attributes ending in ``_``) and returns ``self``, ``predict`` refuses to run before ``fit``. Policies
register by name so the CLI and a saved artifact can rebuild them.
"""

from __future__ import annotations

import inspect
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np

from valuemulch.errors import ConfigError, NotFittedError
from valuemulch.types import Norms, Question

ARTIFACT_FILE = "policy.json"
ARTIFACT_VERSION = 1

_REGISTRY: dict[str, type[Policy]] = {}
P = TypeVar("P", bound="type[Policy]")
#: ``progress(done, total)``: policies that train for a while report through it (the CLI draws a bar).
Progress = Callable[[int, int], None]


class Policy:
    """Predicts, for a community, a distribution over each question's options."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when the policy reads the evaluated questions' human data: a reference, never deployable.
    oracle: ClassVar[bool] = False

    def fit(self, norms: Norms) -> Self:
        raise NotImplementedError

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        raise NotImplementedError

    def predict_communities(self, communities: Sequence[str], questions: Sequence[Question]) -> dict[str, list[np.ndarray]]:
        """Every community's answers to the same questions (policies override this to share the work)."""
        return {c: self.predict(c, questions) for c in communities}

    @property
    def label(self) -> str:
        """How reports name this policy (a recorded run adds which run)."""
        return self.name

    def covers(self, community: str, question: Question) -> bool:
        """Whether the policy answers this item (recorded outputs and oracles answer only some)."""
        return True

    def uncovered_reason(self, community: str, question: Question) -> str | None:
        """Why an item is not answered (evaluations count skips by reason), or None when it is."""
        return None if self.covers(community, question) else "not answered by the policy"

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def clone(self) -> Self:
        """An unfitted copy with the same hyper-parameters."""
        return type(self)(**self.get_params())

    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} ('{self.name}') is not fitted: call fit(norms) or Policy.load(DIR) first."
            )

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Learned state as JSON-able values (the default covers attributes ending in ``_``)."""
        return {k: _to_jsonable(v) for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def set_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def save_files(self, directory: Path) -> None:
        """Write learned state that does not belong in JSON (weights, adapters) into ``directory``."""

    def load_files(self, directory: Path) -> None:
        """Read back what ``save_files`` wrote; called after ``set_state``."""

    def save(self, directory: str | Path, *, provenance: dict[str, Any] | None = None) -> Path:
        """Write the artifact directory whole or not at all (built beside it, then renamed into place).

        ``provenance`` (what it was trained on, the data hash, the seed, ...) is stored as given.
        """
        self.check_fitted()
        directory = Path(directory)
        if directory.exists() and not (directory / ARTIFACT_FILE).is_file() and any(directory.iterdir()):
            raise ConfigError(f"{directory} exists and is not a policy artifact; choose an empty or new --out directory.")
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            payload = {
                "version": ARTIFACT_VERSION,
                "policy": self.name,
                "params": self.get_params(),
                "state": self.state(),
                "provenance": provenance or {},
            }
            (staging / ARTIFACT_FILE).write_text(json.dumps(payload, sort_keys=True, indent=1), encoding="utf-8")
            self.save_files(staging)
            if directory.exists():
                shutil.rmtree(directory)
            staging.replace(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return directory

    @staticmethod
    def read_provenance(directory: str | Path) -> dict[str, Any]:
        """What the artifact says it was trained on (empty for artifacts saved without it)."""
        payload = json.loads((Path(directory) / ARTIFACT_FILE).read_text(encoding="utf-8"))
        return dict(payload.get("provenance", {}))

    @staticmethod
    def load(directory: str | Path) -> Policy:
        path = Path(directory) / ARTIFACT_FILE
        if not path.is_file():
            raise ConfigError(
                f"{directory}: no {ARTIFACT_FILE} here; pass the directory that `valuemulch train` or Policy.save wrote."
            )
        payload = json.loads(path.read_text(encoding="utf-8"))
        policy = build(payload["policy"], **payload["params"])
        policy.set_state(payload["state"])
        policy.load_files(Path(directory))
        return policy


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def register(cls: P) -> P:
    """Class decorator: make a policy buildable by its ``name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"policy name {cls.name!r} is empty or taken")
    _REGISTRY[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    return sorted(_REGISTRY)


def policy_class(name: str) -> type[Policy]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"Unknown policy '{name}'. Expected one of {policy_names()} or 'recorded:<model>/<method>/<task>'; "
            "run `valuemulch policies` to list them."
        ) from None


def build(name: str, **params: Any) -> Policy:
    cls = policy_class(name)
    try:
        return cls(**params)
    except TypeError as err:
        raise ConfigError(f"Bad parameters for policy '{name}': {err}.") from None
