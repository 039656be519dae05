"""The CLI end to end, as a user runs it: a real `valuemulch` process, JSON out, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"


def run(*args: str, data: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "VALUEMULCH_DATA"}
    if data is not None:
        env["VALUEMULCH_DATA"] = str(data)
    env["XDG_CACHE_HOME"] = "/nonexistent-valuemulch-cache"
    proc = subprocess.run([sys.executable, "-m", "valuemulch.cli", *args], capture_output=True, text=True, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_missing_data_is_one_actionable_line() -> None:
    proc = run("testbeds", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "VALUEMULCH_DATA" in lines[0] and "Traceback" not in proc.stderr


def test_bad_options_are_one_line_errors(data_root: Path) -> None:
    for args, needle in [
        (("evaluate", "--testbed", "us-32", "--policy", "unifrom"), "valuemulch policies"),
        (("evaluate", "--testbed", "us-33", "--policy", "uniform"), "valuemulch testbeds"),
        (("evaluate", "--testbed", "us-32", "--policy", "uniform", "--split", "val"), "--split"),
        (("evaluate", "--testbed", "us-32", "--policy", "uniform", "--items", "frontier", "--split", "dev"), "test split"),
    ]:
        proc = run(*args, data=data_root, check=False)
        assert proc.returncode == 2, args
        assert needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_testbeds_json(data_root: Path) -> None:
    out = json.loads(run("testbeds", "--json", data=data_root).stdout)
    by_name = {t["name"]: t for t in out["testbeds"]}
    assert set(by_name) == {"us-32", "global-32"}
    for t in by_name.values():
        assert t["n_communities"] == 32 and len(t["unseen"]) == 8
        assert set(t["splits"]) == {"train", "dev", "test"}
        assert sum(s["questions"] for s in t["splits"].values()) == t["n_questions"]


def test_evaluate_json_schema_and_reference_figures(data_root: Path) -> None:
    uniform = json.loads(
        run("evaluate", "--testbed", "us-32", "--policy", "uniform", "--split", "test", "--json", "--n-boot", "200", data=data_root).stdout
    )
    for key in ("n_items", "metrics", "per_community", "skipped", "compared"):
        assert key in uniform
    for name in ("one_minus_jsd", "representativeness", "tv"):
        m = uniform["metrics"][name]
        assert m["ci"][0] <= m["mean"] <= m["ci"][1]
        assert len(uniform["per_community"]) == 24 and all(name in v for v in uniform["per_community"].values())
    oracle = json.loads(
        run("evaluate", "--testbed", "us-32", "--policy", "pooled-oracle", "--json", "--n-boot", "200", data=data_root).stdout
    )
    assert oracle["oracle"] is True and uniform["oracle"] is False
    # figures measured independently on the same data (docs/baselines.md explains the refusal choice)
    assert 0.55 < uniform["metrics"]["one_minus_jsd"]["mean"] < 0.65
    assert 0.90 < oracle["metrics"]["one_minus_jsd"]["mean"] < 0.96
    dropped = json.loads(
        run("evaluate", "--testbed", "us-32", "--policy", "uniform", "--refusals", "drop", "--json", "--n-boot", "50", data=data_root).stdout
    )
    assert 0.70 < dropped["metrics"]["one_minus_jsd"]["mean"] < 0.80
    # the recorded frontier runs that cover test items are compared on exactly their items
    assert any(k.startswith("recorded:anthropic_opus/") for k in uniform["compared"])


def test_table_output_names_policy_and_metrics(data_root: Path) -> None:
    out = run("evaluate", "--testbed", "global-32", "--policy", "option-text-prior", "--items", "frontier", "--n-boot", "50", data=data_root).stdout
    assert (
        "option-text-prior" in out
        and "one_minus_jsd" in out
        and "recorded:anthropic_opus/express_distribution/task3_easy_hard@globalopinionqa" in out
    )


def test_policies_lists_baselines_oracles_and_recorded(data_root: Path) -> None:
    rows = json.loads(run("policies", "--json", data=data_root).stdout)
    names = {r["name"]: r for r in rows}
    assert {"uniform", "position-prior", "option-text-prior", "pooled-oracle", "majority", "noise-ceiling"} <= set(names)
    assert names["pooled-oracle"]["oracle"] and not names["uniform"]["oracle"]
    assert sum(n.startswith("recorded:") for n in names) == 84


def test_export_and_evaluate_saved_model_on_norms(tmp_path: Path) -> None:
    out = tmp_path / "fixture.jsonl"
    run("data", "export", "--norms", str(FIXTURES / "opinionqa"), "--out", str(out))
    assert out.read_text().count("\n") > 5
    from valuemulch.data import read_jsonl
    from valuemulch.policies import build

    build("option-text-prior").fit(read_jsonl(out)).save(tmp_path / "model")
    result = json.loads(
        run("evaluate", "--model", str(tmp_path / "model"), "--norms", str(out), "--json", "--n-boot", "20").stdout
    )
    assert result["n_items"] == len(read_jsonl(out))


def test_export_refuses_unknown_suffix_and_writes_nothing(tmp_path: Path) -> None:
    proc = run("data", "export", "--norms", str(FIXTURES / "opinionqa"), "--out", str(tmp_path / "x.parquet"), check=False)
    assert proc.returncode == 2 and not (tmp_path / "x.parquet").exists()


@pytest.mark.parametrize("testbed", ["us-32", "global-32"])
def test_frontier_items_json(testbed: str, data_root: Path) -> None:
    d = json.loads(
        run("evaluate", "--testbed", testbed, "--policy", "uniform", "--items", "frontier", "--json", "--n-boot", "50", data=data_root).stdout
    )
    assert d["items"] == "frontier" and d["n_items"] > 200
    compared = {k: v for k, v in d["compared"].items() if v.get("n_items")}
    assert len(compared) >= 30
    for entry in compared.values():
        assert set(entry["metrics"]) == {"one_minus_jsd", "representativeness", "tv"}
        assert entry["n_items"] <= d["n_items"]


def test_evaluate_cross_fits_a_stack_beside_the_frontier_runs(data_root: Path) -> None:
    """`--cross-fit K` with `--set backbones=...`: the JSON names each question's fold, and the layer is
    compared with every recorded run on exactly the items that run answers."""
    opus = "recorded:anthropic_opus/express_distribution/task3_easy_hard@globalopinionqa"
    args = ("evaluate", "--testbed", "global-32", "--policy", "stack", "--items", "frontier", "--n-boot", "50")
    proc = run(*args, "--set", f"backbones={opus},option-text-prior", "--cross-fit", "3", "--json", data=data_root)
    out = json.loads(proc.stdout)
    assert out["cross_fit"]["folds"] == 3 and set(out["cross_fit"]["fold_of"].values()) == {0, 1, 2}
    assert out["n_items"] > 0 and out["metrics"]["tv"]["mean"] < 0.5
    assert "stack_on_same_items" in out["compared"][opus] and "paired_difference" in out["compared"][opus]
    refused = run(*args, "--set", f"backbones={opus}", check=False, data=data_root)  # no --cross-fit: fitted on train
    assert refused.returncode != 0 and "--cross-fit" in refused.stderr and "Traceback" not in refused.stderr



def test_train_refuses_a_stack_over_a_run_that_answers_no_train_question(data_root: Path, tmp_path: Path) -> None:
    """Recorded runs answer test questions only: `train --policy stack` over one says how to fix it
    (`evaluate --cross-fit K`) and writes nothing."""
    opus = "recorded:anthropic_opus/express_distribution/task3_easy_hard@globalopinionqa"
    out = tmp_path / "x"
    refused = run("train", "--testbed", "global-32", "--policy", "stack", "--set", f"backbones={opus}", "--out", str(out), check=False, data=data_root)
    assert refused.returncode != 0 and "--cross-fit" in refused.stderr and "Traceback" not in refused.stderr
    assert not out.exists()
