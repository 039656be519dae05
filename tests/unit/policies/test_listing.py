"""`describe_policies`: the built-in policies always, the recorded runs when the data is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from valuemulch.policies import describe_policies, policy_names


def test_without_data_the_built_in_policies_are_listed(tmp_path: Path) -> None:
    rows = describe_policies(tmp_path / "missing")
    assert [r["name"] for r in rows] == [n for n in policy_names() if n != "recorded"]
    by_name = {r["name"]: r for r in rows}
    assert by_name["pooled-oracle"]["oracle"] and not by_name["uniform"]["oracle"]
    assert all(r["description"] for r in rows)


@pytest.mark.data
def test_recorded_runs_follow_as_non_oracles(data_root: Path) -> None:
    recorded = [r for r in describe_policies(data_root) if r["name"].startswith("recorded:")]
    assert len(recorded) == 84
    assert not any(r["oracle"] for r in recorded)
