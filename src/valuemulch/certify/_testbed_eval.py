"""Evaluate a named or saved policy on a testbed split, fitted the honest way for its kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from valuemulch.certify._crossfit import cross_fit as cross_fitted
from valuemulch.certify._evaluate import Evaluation, Refusals, evaluate
from valuemulch.data import Split, Testbed, list_recorded
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy, make_policy
from valuemulch.types import Norms

ItemSet = Literal["all", "frontier"]
CommunitySet = Literal["seen", "unseen", "all"]


def fit_for_testbed(policy: Policy, testbed: Testbed) -> Policy:
    """Deployable policies learn from the train split of seen communities only; oracles read every
    item of the testbed (that is what makes them oracles); recorded outputs load their files and
    ignore the norms.
    """
    if policy.oracle:
        return policy.fit(testbed.norms)
    return policy.fit(testbed.items("train", "seen"))


def recorded_for(testbed: Testbed) -> list[Policy]:
    """Every recorded frontier run that answers some of this testbed's test items."""
    test_items = testbed.items("test", "all")
    runs = []
    for name in list_recorded(testbed.data_root):
        policy = make_policy(name, data_root=testbed.data_root).fit(Norms())
        if any(policy.covers(i.community, i.question) for i in test_items):
            runs.append(policy)
    return runs


def evaluation_items(testbed: Testbed, split: Split, items: ItemSet, communities: CommunitySet) -> Norms:
    if items == "frontier":
        if split != "test":
            raise ConfigError(
                "--items frontier is defined on the test split only (frontier questions are test questions); drop --split or use --split test."
            )
        if not len(testbed.frontier_items):
            raise ConfigError(
                f"{testbed.name}: no recorded frontier outputs under {testbed.data_root}/distributional_alignment/results."
            )
        chosen = {"seen": testbed.seen, "unseen": testbed.unseen, "all": testbed.communities}[communities]
        return testbed.frontier_items.filter(communities=chosen)
    return testbed.items(split, communities)


def evaluate_on_testbed(
    policy: str | Policy,
    testbed: Testbed,
    *,
    split: Split = "test",
    items: ItemSet = "all",
    communities: CommunitySet = "seen",
    compare_recorded: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    refusals: Refusals = "keep",
    params: dict[str, Any] | None = None,
    cross_fit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """Evaluate on a testbed. A name builds the policy (with ``params``) and fits it; a `Policy` is
    used as given. Either replays recorded runs from the testbed's data root. With ``cross_fit`` K,
    a community layer is fitted per fold of the evaluated questions (`certify._crossfit`)."""
    chosen = evaluation_items(testbed, split, items, communities)
    named = isinstance(policy, str)
    if isinstance(policy, str):
        policy = make_policy(policy, data_root=testbed.data_root, **(params or {}))
    policy.use_data_root(testbed.data_root)
    if named and cross_fit is None:
        policy = fit_for_testbed(policy, testbed)
    plan: dict[str, Any] | None = None
    if cross_fit is not None:
        fitted = cross_fitted(policy, testbed.items("train", "seen"), chosen, folds=cross_fit, seed=seed, progress=progress)
        policy, plan = fitted, fitted.plan.to_dict() | {"layers": fitted.summaries()}
    compare = recorded_for(testbed) if compare_recorded and split == "test" else []
    compare = [p for p in compare if p.label != policy.label]
    result = evaluate(policy, chosen, compare=compare, n_boot=n_boot, seed=seed, refusals=refusals)
    context: dict[str, Any] = {
        "testbed": testbed.name,
        "split": split,
        "items": items,
        "communities": communities,
        "refusals": refusals,
        "data_hash": testbed.norms.content_hash(),
        "n_boot": n_boot,
        "seed": seed,
    }
    if plan is not None:
        context["cross_fit"] = plan
    result.context = context
    return result
