"""`valuemulch train`, `evaluate --model` and `adapt` end to end, as real processes on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import run

from valuemulch.data import write_jsonl
from valuemulch.types import NormItem, Norms

FAST = ["--set", "epochs=3", "--set", "hidden=64"]


@pytest.fixture(scope="module")
def model(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "model"
    summary = json.loads(
        run(
            "train",
            "--testbed",
            "us-32",
            "--policy",
            "encoder",
            "--seed",
            "7",
            *FAST,
            "--out",
            str(out),
            "--json",
            data=data_root,
        ).stdout
    )
    assert summary["model"] == str(out) and summary["seed"] == 7 and summary["communities"] == 24
    assert 0 < summary["dev"]["one_minus_jsd"] < 1
    return out


def test_artifact_carries_config_encoder_data_hash_and_seed(model: Path, us32) -> None:  # type: ignore[no-untyped-def]
    payload = json.loads((model / "policy.json").read_text())
    assert payload["policy"] == "encoder" and payload["params"]["epochs"] == 3 and payload["params"]["seed"] == 7
    prov = payload["provenance"]
    assert prov["encoder_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert prov["trained_on"]["testbed"] == "us-32" and prov["trained_on"]["split"] == "train"
    assert prov["trained_on"]["items_hash"] == us32.items("train", "seen").content_hash()
    assert prov["trained_on"]["testbed_hash"] == us32.norms.content_hash()
    assert (model / "weights.safetensors").is_file()


def test_evaluate_model_on_testbed_and_frontier(model: Path, data_root: Path) -> None:
    out = json.loads(
        run("evaluate", "--model", str(model), "--testbed", "us-32", "--json", "--n-boot", "50", data=data_root).stdout
    )
    assert out["n_items"] == 4066 and out["split"] == "test" and not out["skipped"]
    frontier = json.loads(
        run(
            "evaluate",
            "--model",
            str(model),
            "--testbed",
            "us-32",
            "--items",
            "frontier",
            "--json",
            "--n-boot",
            "50",
            data=data_root,
        ).stdout
    )
    assert frontier["compared"] and all(c["n_items"] > 0 for c in frontier["compared"].values() if c["n_items"])


def test_evaluate_model_on_norms_counts_unknown_communities(model: Path, data_root: Path, us32, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    test = us32.items("test", "all")
    chosen = [i for i in test if i.community in ("POLPARTY:Democrat", "AGE:18-29")][:60]
    renamed = [NormItem("NEW:community", i.question, i.distribution, i.n) for i in chosen if i.community == "POLPARTY:Democrat"][
        :5
    ]
    path = write_jsonl(Norms([*chosen, *renamed]), tmp_path / "norms.jsonl")
    out = json.loads(run("evaluate", "--model", str(model), "--norms", str(path), "--json", "--n-boot", "50").stdout)
    unknown = sum(1 for i in chosen if i.community == "AGE:18-29") + 5  # AGE:18-29 is unseen in us-32
    assert out["skipped"] == {"community unknown to the model (onboard it with `valuemulch adapt`)": unknown}
    assert out["n_items"] == len(chosen) + 5 - unknown


def test_adapt_end_to_end(model: Path, data_root: Path, us32, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    community = "AGE:18-29"
    answers = write_jsonl(us32.norms.filter(communities=[community]), tmp_path / "answers.jsonl")
    adapted = tmp_path / "adapted"
    out = json.loads(
        run("adapt", "--model", str(model), "--community", community, "--norms", str(answers), "--k", "5", "--seed", "1",
            "--out", str(adapted), "--json").stdout
    )  # fmt: skip
    assert len(out["questions"]) == 5
    prov = json.loads((adapted / "policy.json").read_text())["provenance"]
    assert prov["adapted"][0]["community"] == community and prov["adapted"][0]["questions"] == out["questions"]
    assert prov["trained_on"]["testbed"] == "us-32"  # the base model's provenance is kept
    scored = json.loads(run("evaluate", "--model", str(adapted), "--norms", str(answers), "--json", "--n-boot", "50").stdout)
    assert scored["skipped"] == {"used to adapt the model to its community": 5}
    assert scored["n_items"] == len(us32.norms.filter(communities=[community])) - 5
    # the testbed way: k answers from the train split, scored on the unseen communities' test split
    from_testbed = tmp_path / "from-testbed"
    run("adapt", "--model", str(model), "--community", community, "--testbed", "us-32", "--k", "5", "--out", str(from_testbed),
        data=data_root)  # fmt: skip
    unseen = json.loads(
        run("evaluate", "--model", str(from_testbed), "--testbed", "us-32", "--communities", "unseen", "--json", "--n-boot", "50",
            data=data_root).stdout
    )  # fmt: skip
    assert set(unseen["per_community"]) == {community}
    assert sum(unseen["skipped"].values()) == len(us32.items("test", "unseen")) - unseen["n_items"]


def test_train_and_adapt_errors_are_one_line(model: Path, data_root: Path, tmp_path: Path) -> None:
    for args, needle in [
        (("train", "--testbed", "us-32", "--policy", "pooled-oracle", "--out", str(tmp_path / "x")), "oracle"),
        (("train", "--testbed", "us-32", "--policy", "encoder", "--set", "epochs", "--out", str(tmp_path / "x")), "key=value"),
        (
            ("train", "--testbed", "us-32", "--policy", "encoder", "--set", "epochs=0", "--out", str(tmp_path / "x")),
            "The 'epochs' parameter of EncoderPolicy must be an integer >= 1; got 0.",
        ),
        (
            ("adapt", "--model", str(model), "--community", "AGE:65+", "--testbed", "us-32", "--out", str(tmp_path / "y")),
            "already known",
        ),
        (
            ("adapt", "--model", str(tmp_path), "--community", "X", "--testbed", "us-32", "--out", str(tmp_path / "y")),
            "policy.json",
        ),
    ]:
        proc = run(*args, data=data_root, check=False)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
