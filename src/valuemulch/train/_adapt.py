"""Onboard a new community into a saved model from k of its answers, keeping the model's provenance."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from valuemulch.errors import ConfigError
from valuemulch.policies import Policy, Progress
from valuemulch.train._base import Trained
from valuemulch.types import Norms


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
