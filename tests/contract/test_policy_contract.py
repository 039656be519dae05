"""Every registered policy honours the same contract (scikit-learn's check_estimator, for policies)."""

from __future__ import annotations

import inspect
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from valuemulch.errors import ConfigError, NotFittedError
from valuemulch.policies import Policy, Progress, Rng, build, policy_class, policy_names
from valuemulch.types import NormItem, Norms, Question

NAMES = [n for n in policy_names() if n != "recorded"]  # recorded runs are checked on real data in tests/unit/data


def _norms(seed: int = 0) -> Norms:
    rng = np.random.default_rng(seed)
    items = []
    for qi in range(12):
        k = 2 + qi % 4
        options = (*tuple(f"opt {qi % 3}-{j}" for j in range(k - 1)), "Refused")
        q = Question(
            id=f"Q{qi}", text=f"Question number {qi}?", options=options, ordinal=tuple([*range(1, k), None]), source="test"
        )
        for c in ("A:x", "A:y", "B:z"):
            items.append(NormItem(c, q, rng.dirichlet(np.ones(k)), float(rng.integers(50, 500))))
    return Norms(items)


class Blend(Policy):
    """A test-local composite that holds two real policies (the shape of the stacking policy to come):
    ``weight`` times the first's answer plus the rest times the second's."""

    name = "test-blend"  # deliberately not registered: the registry is the CLI's list

    def __init__(self, *, first: Policy, second: Policy, weight: float = 0.5) -> None:
        self.first = first
        self.second = second
        self.weight = weight

    def _fit(self, norms: Norms, *, progress: Progress | None, rng: Rng) -> None:
        # As in scikit-learn's composites: the parameters are templates, the fitted parts are clones.
        self.first_ = self.first.clone().fit(norms, progress=progress, rng=rng)
        self.second_ = self.second.clone().fit(norms, progress=progress, rng=rng)

    def covers(self, community: str, question: Question) -> bool:
        return self.first_.covers(community, question) and self.second_.covers(community, question)

    def predict(self, community: str, questions: Sequence[Question]) -> list[np.ndarray]:
        self.check_fitted()
        pairs = zip(self.first_.predict(community, questions), self.second_.predict(community, questions), strict=True)
        return [self.weight * a + (1 - self.weight) * b for a, b in pairs]


def _global_rng_states() -> tuple[Any, ...]:
    kind, keys, *rest = np.random.get_state()
    return random.getstate(), (kind, keys.tobytes(), *rest), torch.get_rng_state()


@pytest.fixture(params=NAMES)
def policy(request: pytest.FixtureRequest) -> Policy:
    return build(request.param)


def _answers(policy: Policy, norms: Norms, community: str) -> list[np.ndarray]:
    return policy.predict(community, [i.question for i in norms if i.community == community])


def test_fit_accepts_progress_and_rng_returns_self_and_leaves_global_rngs_alone(policy: Policy) -> None:
    norms = _norms()
    calls: list[tuple[int, int]] = []
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = _global_rng_states()
    assert policy.fit(norms, progress=lambda done, total: calls.append((done, total)), rng=7) is policy
    _answers(policy, norms, "A:x")
    after = _global_rng_states()
    assert after[0] == before[0], "fit or predict reseeded or drew from Python's global random"
    assert after[1] == before[1], "fit or predict reseeded or drew from numpy's global RandomState"
    assert torch.equal(after[2], before[2]), "fit or predict reseeded or drew from torch's global generator"
    assert all(0 < done <= total for done, total in calls)


def test_predictions_are_valid_distributions(policy: Policy) -> None:
    norms = _norms()
    policy.fit(norms)
    for community in norms.communities:
        questions = [i.question for i in norms if i.community == community and policy.covers(community, i.question)]
        assert questions, f"{policy.name} covers nothing"
        for q, p in zip(questions, policy.predict(community, questions), strict=True):
            assert p.shape == (q.n_options,)
            assert np.all(np.isfinite(p)) and np.all(p >= 0)
            assert p.sum() == pytest.approx(1.0, abs=1e-9)


def test_predict_before_fit_raises(policy: Policy) -> None:
    q = _norms().items[0].question
    with pytest.raises(NotFittedError, match="fit"):
        policy.predict("A:x", [q])


def test_fitted_state_is_explicit(policy: Policy) -> None:
    policy.looks_learned_ = True  # type: ignore[attr-defined]  # an attribute ending in "_" is not fitted state
    assert not policy.is_fitted()
    with pytest.raises(NotFittedError):
        policy.predict("A:x", [_norms().items[0].question])
    policy.fit(_norms())
    assert policy.is_fitted() and not policy.clone().is_fitted()


def test_capabilities_are_declared(policy: Policy) -> None:
    cls = type(policy)
    assert isinstance(cls.supports_adapt, bool) and isinstance(cls.oracle, bool)
    norms = _norms()
    policy.fit(norms)
    known = policy.known_communities()
    assert known is None or sorted(known) == norms.communities
    if not cls.supports_adapt:
        with pytest.raises(ConfigError, match="supports_adapt"):
            policy.adapt("C:new", norms, k=2)


def test_save_load_identical(policy: Policy, tmp_path: Path) -> None:
    norms = _norms()
    policy.fit(norms)
    loaded = Policy.load(policy.save(tmp_path / "p"))
    assert type(loaded) is type(policy) and loaded.get_params() == policy.get_params() and loaded.is_fitted()
    qs = [i.question for i in norms if i.community == "A:y"]
    for a, b in zip(policy.predict("A:y", qs), loaded.predict("A:y", qs), strict=True):
        np.testing.assert_array_equal(a, b)


def test_same_seed_same_model_and_clone_is_unfitted(policy: Policy) -> None:
    norms = _norms()
    a, b = policy.fit(norms, rng=3), policy.clone().fit(norms, rng=np.int64(3))
    c, d = policy.clone().fit(norms, rng=np.random.default_rng(5)), policy.clone().fit(norms, rng=np.random.default_rng(5))
    for x, y, u, v in zip(*(_answers(p, norms, "B:z") for p in (a, b, c, d)), strict=True):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(u, v)
    assert not policy.clone().is_fitted()


def test_fit_checks_parameters_and_names_them(policy: Policy) -> None:
    with pytest.raises(
        ConfigError, match=rf"Invalid parameter 'no_such_param' for {type(policy).__name__}; valid parameters are \["
    ):
        policy.set_params(no_such_param=1)
    params = policy.get_params(deep=False)
    if not params:
        pytest.skip(f"{policy.name} has no parameters")
    param = sorted(params)[0]
    bad = policy.clone().set_params(**{param: object()})  # set_params stores; fit checks
    with pytest.raises(ConfigError, match=rf"The '{param}' parameter of {type(policy).__name__} must be .*; got <object"):
        bad.fit(_norms())


# -- composition ---------------------------------------------------------------------------------


def test_nested_get_params_set_params_and_clone(policy: Policy) -> None:
    inner = policy.get_params(deep=False)
    blend = Blend(first=policy, second=build("uniform"), weight=0.25)
    deep = blend.get_params(deep=True)
    assert {k.removeprefix("first__") for k in deep if k.startswith("first__")} == set(inner)
    assert deep["first"] is policy and blend.get_params(deep=False) == {"first": policy, "second": blend.second, "weight": 0.25}

    blend.set_params(**{f"first__{k}": v for k, v in inner.items()}, weight=0.75)  # every nested key is settable
    assert blend.weight == 0.75 and policy.get_params(deep=False) == inner
    with pytest.raises(ConfigError, match=r"Invalid parameter 'first__no_such_param' for Blend; valid parameters are \['first'"):
        blend.set_params(weight=0.5, first__no_such_param=1)
    assert blend.weight == 0.75  # a bad key changes nothing
    with pytest.raises(ConfigError, match="Invalid parameter 'weight__x'"):
        blend.set_params(weight__x=1)

    copy = blend.clone()
    assert copy.first is not policy and copy.second is not blend.second  # the clone recurses
    assert type(copy.first) is type(policy) and copy.get_params(deep=True).keys() == deep.keys()
    assert copy.first.get_params(deep=False) == inner and not copy.first.is_fitted()


def test_nested_set_params_reaches_the_inner_policy_and_fit_uses_it() -> None:
    norms = _norms()
    blend = Blend(first=build("position-prior"), second=build("option-text-prior"))
    blend.set_params(first__per_community=False, second__per_community=False, weight=1.0)
    assert blend.first.get_params() == {"per_community": False}
    blend.fit(norms, rng=0)
    assert not blend.first.is_fitted() and blend.first_.is_fitted()  # the templates stay unfitted
    pooled = build("position-prior", per_community=False).fit(norms)
    for a, b in zip(_answers(blend, norms, "A:x"), _answers(pooled, norms, "A:x"), strict=True):
        np.testing.assert_array_equal(a, b)
    refit = blend.clone().fit(norms, rng=0)
    for a, b in zip(_answers(blend, norms, "B:z"), _answers(refit, norms, "B:z"), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not blend.clone().is_fitted()


def test_every_registered_policy_declares_constraints_for_each_parameter() -> None:
    for name in policy_names():
        cls = policy_class(name)
        assert set(cls.parameter_constraints) == set(inspect.signature(cls).parameters), name
