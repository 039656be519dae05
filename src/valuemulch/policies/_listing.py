"""The policies a user can name: the built-in ones and the recorded frontier runs in the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from valuemulch.data import list_recorded, resolve_data_root
from valuemulch.errors import ValuemulchError
from valuemulch.policies._base import policy_class, policy_names


def describe_policies(data: Path | None = None) -> list[dict[str, Any]]:
    """One row (``name``, ``oracle``, ``description``) per buildable policy, then per recorded run.

    Without a data directory the built-in policies are still listed: listing must not need data.
    """
    rows: list[dict[str, Any]] = [
        {"name": n, "oracle": policy_class(n).oracle, "description": policy_class(n).description}
        for n in policy_names()
        if n != "recorded"
    ]
    try:
        recorded = list_recorded(resolve_data_root(data))
    except ValuemulchError:
        recorded = []
    rows += [{"name": n, "oracle": False, "description": "recorded frontier-LLM output"} for n in recorded]
    return rows
