"""Train a policy on a testbed's train split, or onboard a new community, and save it with provenance.

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
from typing import Any

from valuemulch.data import Testbed
from valuemulch.errors import ConfigError
from valuemulch.policies import Policy, Progress, make_policy
from valuemulch.types import Norms


@dataclass
class Trained:
    policy: Policy
    provenance: dict[str, Any]
    seconds: float
    items: int
    questions: int
    communities: list[str]


def _environment() -> dict[str, str]:
    return {"valuemulch": version("valuemulch"), "python": platform.python_version()}


def train(
    policy_name: str,
    testbed: Testbed,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    extra: Norms | None = None,
    extra_source: str = "",
) -> Trained:
    """Fit ``policy_name`` on the train split of the testbed's seen communities (oracles excepted:
    they are references that read every item, so they are refused here), plus ``extra`` items (an
    organisation's own communities) when given; the provenance records both separately."""
    params = dict(params or {})
    probe = make_policy(policy_name, data_root=testbed.data_root)
    if probe.oracle:
        raise ConfigError(
            f"'{policy_name}' is an oracle (it reads the evaluated questions' human data); it is a reference for "
            "`valuemulch evaluate`, not something to train and deploy."
        )
    if "seed" in probe.get_params():
        params.setdefault("seed", seed)
    policy = make_policy(policy_name, data_root=testbed.data_root, **params)
    testbed_items = testbed.items("train", "seen")
    norms = testbed_items
    if extra is not None and len(extra):
        clash = sorted(set(extra.communities) & set(testbed.communities))
        if clash:
            raise ConfigError(
                f"--add-norms holds communities the testbed already has ({clash[:5]}); give your communities their own ids."
            )
        norms = testbed_items.merged(extra)
    start = time.perf_counter()
    policy.fit(norms, progress=progress)
    seconds = time.perf_counter() - start
    provenance = {
        "trained_on": {
            "testbed": testbed.name,
            "split": "train",
            "communities": testbed.seen,
            "items": len(testbed_items),
            "items_hash": testbed_items.content_hash(),
            "testbed_hash": testbed.norms.content_hash(),
            "extra": None
            if extra is None or not len(extra)
            else {
                "source": extra_source,
                "items": len(extra),
                "communities": extra.communities,
                "items_hash": extra.content_hash(),
            },
        },
        "policy": policy_name,
        "params": policy.get_params(),
        "seed": policy.get_params().get("seed"),
        "encoder_id": getattr(policy, "encoder_id_", None),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "fit_seconds": round(seconds, 2),
        "environment": _environment(),
    }
    return Trained(policy, provenance, seconds, len(norms), len(norms.questions), norms.communities)


def adapt(
    model_dir: str | Path,
    community: str,
    norms: Norms,
    *,
    k: int = 20,
    seed: int = 0,
    source: str = "",
    progress: Progress | None = None,
) -> Trained:
    """Onboard ``community`` into the saved model from ``k`` of its answers in ``norms``."""
    policy = Policy.load(model_dir)
    if not policy.supports_adapt:
        raise ConfigError(
            f"Policy '{policy.name}' cannot onboard new communities; train an `encoder` policy to use `valuemulch adapt`."
        )
    start = time.perf_counter()
    policy.adapt(community, norms, k=k, seed=seed, progress=progress)
    seconds = time.perf_counter() - start
    provenance = Policy.read_provenance(model_dir)
    used = policy.adapted_[community]["questions"]  # type: ignore[attr-defined]
    provenance["adapted"] = [
        *provenance.get("adapted", []),
        {
            "community": community,
            "k": k,
            "seed": seed,
            "norms": source,
            "norms_hash": norms.filter(communities=[community]).content_hash(),
            "questions": used,
            "from_model": str(model_dir),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    ]
    return Trained(policy, provenance, seconds, k, k, [community])
