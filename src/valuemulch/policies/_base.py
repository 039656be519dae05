"""The one interface every policy follows, baselines and recorded frontier models included.

As in scikit-learn: hyper-parameters are keyword-only ``__init__`` arguments that ``__init__`` only
stores; ``fit`` (written once, here) checks them against the class's ``parameter_constraints``, has
the subclass's ``_fit`` learn state (attributes ending in ``_``), marks the policy fitted and returns
``self``; ``predict`` refuses to run before ``fit``. What a policy can do beyond that (``adapt``) is declared by class attributes, never probed.
Policies register by name so the CLI and a saved artifact can rebuild them.
"""

from __future__ import annotations

import copy
import inspect
import json
import numbers
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
#: What ``fit(rng=...)`` takes: None (the policy's own ``seed`` parameter), an int seed, or a numpy Generator.
Rng = int | np.random.Generator | None


@dataclass(frozen=True)
class Constraint:
    """What one hyper-parameter may be: ``allowed`` says it in words, ``test`` checks a value."""

    allowed: str
    test: Callable[[Any], bool]


def one_of(*values: Any) -> Constraint:
    return Constraint(f"one of {list(values)}", lambda v: v in values)


def integer(minimum: int) -> Constraint:
    return Constraint(
        f"an integer >= {minimum}", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= minimum
    )


def real(*, above: float | None = None, at_least: float | None = None, below: float | None = None) -> Constraint:
    """A number ``> above`` (or ``>= at_least``) and ``< below``; None leaves that side open."""
    words = [f"> {above:g}" if above is not None else "", f">= {at_least:g}" if at_least is not None else ""]
    words.append(f"< {below:g}" if below is not None else "")

    def test(v: Any) -> bool:
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not np.isfinite(x := float(v)):
            return False
        return (above is None or x > above) and (at_least is None or x >= at_least) and (below is None or x < below)

    return Constraint("a number " + " and ".join(w for w in words if w), test)


BOOLEAN = Constraint("True or False", lambda v: isinstance(v, bool))
TEXT = Constraint("a string", lambda v: isinstance(v, str))
OPTIONAL_TEXT = Constraint("a string or None", lambda v: v is None or isinstance(v, str))
SEED = integer(0)


def seed_from(rng: Rng, seed: int) -> int:
    """The seed one fit uses: ``seed`` (the parameter) when ``rng`` is None, ``rng`` itself when it is
    an int, else one draw from the Generator. Policies build their own generators from it."""
    if rng is None:
        return seed
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**63))
    if SEED.test(rng):
        return int(rng)
    raise ConfigError(f"fit(rng=...) takes None, a non-negative int seed or a numpy Generator; got {rng!r}.")


class Policy:
    """Predicts, for a community, a distribution over each question's options."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when the policy reads the evaluated questions' human data: a reference, never deployable.
    oracle: ClassVar[bool] = False
    #: True when ``adapt`` onboards a new community into the fitted policy.
    supports_adapt: ClassVar[bool] = False
    #: What each hyper-parameter may be; ``fit`` checks them all before it learns anything.
    parameter_constraints: ClassVar[dict[str, Constraint]] = {}
    _fitted: bool = False  # set by fit and set_state (or load), never inferred from attribute names

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, norms: Norms, *, progress: Progress | None = None, rng: Rng = None) -> Self:
        """Check the hyper-parameters, learn from ``norms`` and mark the policy fitted.

        ``progress(done, total)`` hears from policies that train for a while. ``rng`` (an int seed or
        a numpy Generator) replaces the ``seed`` parameter for this fit; no global random state is
        read or changed.
        """
        self._validate_params()
        self._fitted = False
        self._fit(norms, progress=progress, rng=rng)
        self._fitted = True
        return self

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        raise NotImplementedError

    def _validate_params(self) -> None:
        """Raise a ConfigError naming the parameter, the class, what is allowed and what was given."""
        for param, constraint in self.parameter_constraints.items():
            value = getattr(self, param)
            if not constraint.test(value):
                raise ConfigError(
                    f"The '{param}' parameter of {type(self).__name__} must be {constraint.allowed}; got {value!r}."
                )

    def is_fitted(self) -> bool:
        return self._fitted

    def check_fitted(self) -> None:
        if not self.is_fitted():
            raise NotFittedError(
                f"{type(self).__name__} ('{self.name}') is not fitted: call fit(norms) or Policy.load(DIR) first."
            )

    # -- predicting -------------------------------------------------------------------------
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

    def use_data_root(self, root: Path) -> None:
        """Read what the policy replays from data (recorded runs) under ``root`` from now on; a saved
        model evaluated with another ``--data`` then replays that root's files. Most policies read none."""

    def known_communities(self) -> list[str] | None:
        """The communities the fitted policy answers for (what a deployment serves), or None when it
        answers for any community given (baselines, references, recorded runs)."""
        return None

    def adapt(self, community: str, norms: Norms, *, k: int = 20, seed: int = 0, progress: Progress | None = None) -> Self:
        """Onboard ``community`` from ``k`` of its answers in ``norms``; only where ``supports_adapt``."""
        raise ConfigError(f"{type(self).__name__} ('{self.name}') cannot onboard new communities (supports_adapt is False).")

    # -- parameters -------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        return [p.name for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self" and p.kind not in skip]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters by name; with ``deep``, a Policy-valued one's own as ``outer__inner``."""
        out: dict[str, Any] = {}
        for param in self._param_names():
            value = getattr(self, param)
            if deep and isinstance(value, Policy):
                out.update((f"{param}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[param] = value
        return out

    def set_params(self, **params: Any) -> Self:
        """Set hyper-parameters by name, nested ones as ``outer__inner``; they are checked at the next ``fit``.

        Every key is checked before any is set, so a bad key changes nothing.
        """
        valid = self.get_params(deep=True)
        unknown = [key for key in params if key not in valid]
        if unknown:
            raise ConfigError(
                f"Invalid parameter '{unknown[0]}' for {type(self).__name__}; valid parameters are {sorted(valid)}."
            )
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            param, _, inner = key.partition("__")
            if inner:
                nested.setdefault(param, {})[inner] = value
            else:
                setattr(self, param, value)
        for param, inner_params in nested.items():
            getattr(self, param).set_params(**inner_params)
        return self

    def clone(self) -> Self:
        """An unfitted copy with the same hyper-parameters; Policy-valued ones are cloned in turn."""
        params = self.get_params(deep=False)
        return type(self)(**{k: v.clone() if isinstance(v, Policy) else copy.deepcopy(v) for k, v in params.items()})

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Learned state as JSON-able values (the default covers attributes ending in ``_``)."""
        return {k: _to_jsonable(v) for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` returned; the policy is then fitted (overrides call this last)."""
        for k, v in state.items():
            setattr(self, k, v)
        self._fitted = True

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
                "params": self.get_params(deep=False),
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
