"""`stack`: the community layer. Calibrated backbones, pooled per community, chosen by inner CV.

A backbone is anything that answers (community, question) without reading that item's human data:
a recorded frontier run replayed (it stands in for calling the model), the `encoder` trained on the
train split, the option-text prior, an `lm` policy. The numbers live in ``_stack_math`` and
``_stack_cv``; this module builds the backbones, gathers their answers and keeps the artifact.

Fitting is two steps, so that cross-fitting (``valuemulch.certify``) can fit the backbones once on
the train split and the layer on other folds of the evaluated questions: ``fit_backbones`` then
``fit_layer``. ``fit`` does both on the same items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from valuemulch.data import list_recorded
from valuemulch.errors import ConfigError
from valuemulch.policies._base import OPTIONAL_TEXT, TEXT, Constraint, Policy, Progress, Rng, build, integer, register
from valuemulch.policies._params import parse_params
from valuemulch.policies._recorded import PREFIX, RecordedPolicy
from valuemulch.policies._stack_cv import Grid, fit_stack
from valuemulch.policies._stack_math import Item, Layer
from valuemulch.types import NormItem, Norms, Question

WILDCARD = "recorded:*"
BACKBONES_HELP = (
    "comma-separated backbones: 'recorded:*' (every recorded run that answers the items), "
    "'recorded:<model>/<method>/<task>', or any policy that learns from the train split (encoder, option-text-prior, lm, ...), "
    "with parameters as name(key=value;key=value), e.g. lm(steering=few-shot;shots=5)"
)


def _specs(text: str) -> list[str]:
    """The comma-separated backbones; commas inside ``name(key=value;...)`` do not split."""
    specs, depth, start = [], 0, 0
    for i, ch in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            break
        if ch == "," and depth == 0:
            specs.append(text[start:i].strip())
            start = i + 1
    specs = [s for s in specs if s]
    if not specs or depth != 0:
        raise ConfigError(
            f"The 'backbones' parameter of StackPolicy must name at least one backbone ({BACKBONES_HELP}), with balanced "
            f"parentheses; got {text!r}."
        )
    return specs


def _learned(spec: str) -> tuple[str, dict[str, Any]]:
    """``lm(steering=few-shot;shots=5)`` -> ``("lm", {"steering": "few-shot", "shots": 5})``."""
    name, paren, rest = spec.partition("(")
    if not paren:
        return spec, {}
    if not rest.endswith(")") or not name.strip():
        raise ConfigError(f"A backbone with parameters is written name(key=value;key=value), e.g. lm(steering=few-shot;shots=5); got {spec!r}.")
    pairs = [p.strip() for p in rest[:-1].split(";") if p.strip()]
    return name.strip(), parse_params(pairs)


@register
class StackPolicy(Policy):
    """Per community, a calibrated pool of backbones; inner cross-validation (folds by question-text
    hash) chooses linear or log-linear pooling, the regularisation and the shrinkage of community
    weights towards shared ones, or falls back to the best single calibrated backbone."""

    name = "stack"
    description = "The community layer: recorded frontier runs, the encoder and priors, calibrated and pooled per community."
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "backbones": TEXT,
        "data_root": OPTIONAL_TEXT,
        "inner_folds": integer(2),
    }

    def __init__(self, *, backbones: str = "recorded:*,encoder", data_root: str | None = None, inner_folds: int = 5) -> None:
        self.backbones = backbones
        self.data_root = data_root
        self.inner_folds = inner_folds

    # -- fitting ----------------------------------------------------------------------------
    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        self.fit_backbones(norms, progress=progress, rng=rng)
        self.fit_layer(norms)

    def fit_backbones(self, norms: Norms, *, progress: Progress | None = None, rng: Rng = None) -> None:
        """Build every named backbone; those that learn, learn from ``norms`` (the train split)."""
        self._validate_params()
        named: list[tuple[str, Policy]] = []
        for spec in _specs(self.backbones):
            if spec == WILDCARD:  # without a data root there are no recorded runs to list
                named += [self._recorded(name) for name in (list_recorded(self._root()) if self.data_root else [])]
            elif spec.startswith(PREFIX):
                named.append(self._recorded(spec.removeprefix(PREFIX)))
            else:
                name, params = _learned(spec)
                model = build(name, **params).fit(norms, progress=progress, rng=rng)
                named.append((spec if params else model.label, model))
        self._keep(named)
        self.wildcard_ = WILDCARD in _specs(self.backbones)

    def _keep(self, named: Sequence[tuple[str, Policy]]) -> None:
        """The backbones, one per label (a run listed twice counts once); the layer knows them by label."""
        unique = dict(named)
        self.labels_, self.models_ = list(unique), list(unique.values())

    def fit_layer(self, norms: Norms) -> None:
        """Fit the layer on ``norms``: every backbone must answer some of its items (a ``recorded:*``
        run that answers none is left out)."""
        if not hasattr(self, "models_"):
            raise ConfigError("StackPolicy.fit_layer needs its backbones: call fit(norms) or fit_backbones(train) first.")
        items = list(norms)
        answers = self._answers(items)
        pairs = list(zip(self.labels_, self.models_, strict=True))
        named = {label for label, m in pairs if not (self.wildcard_ and isinstance(m, RecordedPolicy))}
        silent = [label for label, rows in answers.items() if all(p is None for p in rows)]
        for label in silent:
            if label in named or not self.wildcard_:
                raise ConfigError(
                    f"Backbone '{label}' answers none of the {len(items)} items the layer is fitted on. Recorded runs answer "
                    "test questions only: evaluate with --cross-fit K (the layer is then fitted on other folds of the "
                    "evaluated questions), or drop it from --set backbones=..."
                )
        keep = [(label, m) for label, m in pairs if label not in silent]
        if not keep:
            raise ConfigError(f"No backbone answers any of the {len(items)} items; check --set backbones=... ({BACKBONES_HELP}).")
        self._keep(keep)
        answers = {label: answers[label] for label in self.labels_}
        self.layer_ = fit_stack(_items(items), answers, [i.distribution for i in items], Grid(n_folds=self.inner_folds))
        self._fitted = True

    def for_refit(self) -> StackPolicy:
        """A copy to fit a new layer with (cross-fitting a saved model): its learned backbones, plus,
        under ``recorded:*``, every recorded run at the data root, including those the saved layer
        left out because they answered none of its items."""
        self.check_fitted()
        copy = StackPolicy(**self.get_params(deep=False))
        named = list(zip(self.labels_, self.models_, strict=True))
        if self.wildcard_ and self.data_root:
            named += [self._recorded(name) for name in list_recorded(self._root())]
        copy._keep(named)
        copy.wildcard_ = self.wildcard_
        return copy

    def summary(self) -> dict[str, Any]:
        """The fitted layer as a reader sees it (`Layer.summary`)."""
        self.check_fitted()
        return self.layer_.summary()

    # -- predicting -------------------------------------------------------------------------
    def covers(self, community: str, question: Question) -> bool:
        return self.is_fitted() and any(m.covers(community, question) for m in self.models_)

    def known_communities(self) -> list[str] | None:
        known = [set(k) for m in self.models_ if (k := m.known_communities()) is not None] if hasattr(self, "models_") else []
        return sorted(set.intersection(*known)) if known else None

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        items = [_Query(community, q) for q in questions]
        return self.layer_.predict(_items(items), self._answers(items))

    def _answers(self, items: Sequence[NormItem | _Query]) -> dict[str, list[np.ndarray | None]]:
        """Each backbone's answer to each item, None where it is silent; one call per community."""
        out: dict[str, list[np.ndarray | None]] = {}
        by_community: dict[str, list[int]] = {}
        for j, item in enumerate(items):
            by_community.setdefault(item.community, []).append(j)
        for label, model in zip(self.labels_, self.models_, strict=True):
            rows: list[np.ndarray | None] = [None] * len(items)
            for community, idx in by_community.items():
                asked = [j for j in idx if model.covers(community, items[j].question)]
                for j, p in zip(
                    asked, model.predict(community, [items[j].question for j in asked]) if asked else [], strict=True
                ):
                    rows[j] = np.asarray(p, dtype=np.float64)
            out[label] = rows
        return out

    # -- data root ------------------------------------------------------------------------------
    def _root(self) -> Path:
        if self.data_root is None:
            raise ConfigError("StackPolicy with recorded backbones needs the data root: pass --data DIR or set VALUEMULCH_DATA.")
        return Path(self.data_root)

    def _recorded(self, run: str) -> tuple[str, RecordedPolicy]:
        model = RecordedPolicy(run=run, data_root=str(self._root())).fit(Norms())
        return model.label, model

    def use_data_root(self, root: Path) -> None:
        """Replay the recorded backbones from ``root``: a saved layer evaluated with another --data
        replays that root's runs (a recorded run stands in for calling the model)."""
        self.data_root = str(root)
        for model in getattr(self, "models_", []):
            model.use_data_root(root)

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "layer": self.layer_.to_dict(),
            "backbones": [label if isinstance(m, RecordedPolicy) else None for label, m in zip(self.labels_, self.models_, strict=True)],
            "labels": list(self.labels_),
            "wildcard": self.wildcard_,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.layer_ = Layer.from_dict(state["layer"])
        self.wildcard_ = bool(state["wildcard"])
        self._recorded_labels = list(state["backbones"])
        self._labels = list(state.get("labels") or [])  # older artifacts: learned backbones go by their own label
        self._fitted = True

    def save_files(self, directory: Path) -> None:
        for k, model in enumerate(self.models_):
            if not isinstance(model, RecordedPolicy):
                model.save(directory / "backbones" / str(k))

    def load_files(self, directory: Path) -> None:
        named: list[tuple[str, Policy]] = []
        for k, label in enumerate(self._recorded_labels):
            if label:
                named.append(self._recorded(label.removeprefix(PREFIX)))
            else:
                model = Policy.load(directory / "backbones" / str(k))
                named.append((self._labels[k] if self._labels else model.label, model))
        self._keep(named)
        if sorted(self.labels_) != sorted(self.layer_.backbones):
            raise ConfigError(
                f"{directory}: the saved backbones {self.labels_} are not the layer's {list(self.layer_.backbones)}."
            )


class _Query:
    """An item to predict, without a target (what ``_answers`` needs of a NormItem)."""

    def __init__(self, community: str, question: Question) -> None:
        self.community = community
        self.question = question


def _items(items: Sequence[NormItem | _Query]) -> list[Item]:
    return [Item(i.community, i.question.id, i.question.n_options, i.question.text) for i in items]
