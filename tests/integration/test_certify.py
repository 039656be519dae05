"""`valuemulch certify` / `verify` / `pipeline` end to end on global-32, with every tamper case.

One model is trained and certified per module (a real encoder on the real testbed); each tamper test
copies what it breaks, so the others see the original.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import run

from conftest import temporary_home
from valuemulch.bounds import adversarial_norms
from valuemulch.certify import RECORDS_FILE, SCHEMA, init_keys, read_records, rescore, sign_document
from valuemulch.data import write_jsonl
from valuemulch.data._globalopinionqa import extract_question_text
from valuemulch.data._testbeds import GOQA_JSON
from valuemulch.serve import Registry

TESTBED = "global-32"
N_BOOT = "200"  # enough for the CI rule (>= 200), and keeps each re-run short


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with temporary_home(tmp_path_factory.mktemp("home")) as root:
        yield root


@pytest.fixture(scope="module")
def signing_key(home: Path) -> Path:
    run("keys", "init")
    key = home / "keys" / "signing.key"
    assert key.stat().st_mode & 0o777 == 0o600
    return key


@pytest.fixture(scope="module")
def certified(home: Path, data_root: Path, signing_key: Path) -> tuple[Path, Path]:
    model = home / "model"
    run("train", "--testbed", TESTBED, "--out", str(model), data=data_root)
    cert = home / "cert"
    proc = run("certify", str(model), "--out", str(cert), "--n-boot", N_BOOT, data=data_root, check=False)
    assert proc.returncode == 0 and "NOT CERTIFIED" not in proc.stdout, proc.stdout + proc.stderr  # the encoder passes here
    for name in ("certificate.json", RECORDS_FILE, "report.html", "MODEL_CARD.md"):
        assert (cert / name).is_file(), name
    return model, cert


def _verify(cert: Path, data_root: Path, *extra: str) -> tuple[int, str]:
    proc = run("verify", str(cert / "certificate.json"), *extra, data=data_root, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout + proc.stderr


def test_certificate_has_the_schema_and_verifies(certified: tuple[Path, Path], data_root: Path) -> None:
    _, cert = certified
    doc = json.loads((cert / "certificate.json").read_text())
    assert doc["schema"] == SCHEMA == "valuemulch.certificate/2" and doc["signature"]["algorithm"] == "ed25519"
    seen = doc["evaluation"]["seen"]
    assert set(seen["per_community"]) == set(doc["testbed"]["seen"])
    assert {"uniform", "option-text-prior", "pooled-oracle"} <= set(doc["evaluation"]["baselines"])
    assert doc["evaluation"]["frontier"]["runs"] and doc["evaluation"]["unseen"]["k"] == 10
    assert set(doc["model"]["files"]) >= {"policy.json", "weights.safetensors"}
    assert doc["provenance"]["git"]["commit"] is None or len(doc["provenance"]["git"]["commit"]) == 40
    assert [r["id"] for r in doc["verdict"]["rules"]] and doc["bounds"]["violations"]["n_violations"] == 0
    code, out = _verify(cert, data_root)
    assert code == 0, out
    assert "every number matches" in out


def test_every_metric_rescores_from_the_records(certified: tuple[Path, Path]) -> None:
    """The per-item sidecar alone reproduces the signed aggregates: no model, data or re-run needed."""
    _, cert = certified
    doc = json.loads((cert / "certificate.json").read_text())
    records = read_records(cert / RECORDS_FILE)
    assert len(records) == doc["records"]["n_records"]
    n_boot, seed = doc["config"]["n_boot"], doc["config"]["seed"]
    evaluation = doc["evaluation"]
    for metric, stored in evaluation["seen"]["metrics"].items():
        assert rescore(records, "seen", metric, n_boot=n_boot, seed=seed).model_dump(mode="json") == stored, metric
    for name in ("uniform", "pooled-oracle"):
        again = rescore(records, f"baseline:{name}", "tv", n_boot=n_boot, seed=seed)
        assert again.model_dump(mode="json") == evaluation["baselines"][name]["metrics"]["tv"]
    assert (
        rescore(records, "unseen", "one_minus_jsd", n_boot=n_boot, seed=seed).model_dump(mode="json")
        == (evaluation["unseen"]["metrics"]["one_minus_jsd"])
    )


def test_edited_records_fail(certified: tuple[Path, Path], data_root: Path, tmp_path: Path) -> None:
    model, cert = certified
    copy = shutil.copytree(cert, tmp_path / "cert")
    lines = (copy / RECORDS_FILE).read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    record["scores"]["tv"] = 0.0
    lines[0] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    (copy / RECORDS_FILE).write_text("".join(lines))
    code, out = _verify(copy, data_root, "--model", str(model))  # the copy's run directory does not hold the model
    assert code == 1 and f"records: {RECORDS_FILE} hashes to" in out and "not re-run" in out


def test_an_edited_metric_fails(certified: tuple[Path, Path], data_root: Path, tmp_path: Path) -> None:
    _, cert = certified
    copy = shutil.copytree(cert, tmp_path / "cert")
    doc = json.loads((copy / "certificate.json").read_text())
    doc["evaluation"]["seen"]["metrics"]["tv"]["mean"] -= 0.05
    (copy / "certificate.json").write_text(json.dumps(doc))
    code, out = _verify(copy, data_root)
    assert code == 1
    assert "changed after it was signed" in out and "not read" in out  # nothing of an edited certificate is re-run
    assert "model files" not in out and "re-run:" not in out


def test_a_flipped_model_byte_fails(certified: tuple[Path, Path], data_root: Path, tmp_path: Path) -> None:
    model, cert = certified
    copy = shutil.copytree(model, tmp_path / "model")
    weights = copy / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    code, out = _verify(cert, data_root, "--model", str(copy))
    assert code == 1 and "weights.safetensors (content changed)" in out


def test_a_changed_data_item_fails(certified: tuple[Path, Path], data_root: Path, tmp_path: Path, global32) -> None:  # type: ignore[no-untyped-def]
    _, cert = certified
    copy = tmp_path / "data"
    shutil.copytree(data_root, copy)
    item = next(iter(global32.items("test", "seen")))
    path = copy / GOQA_JSON
    records = json.loads(path.read_text())
    hit = next(
        r for r in records if r["attribute"] == item.community and extract_question_text(r["question"]) == item.question.text
    )
    hit["gold_distribution"] = list(reversed(hit["gold_distribution"]))
    path.write_text(json.dumps(records))
    code, out = _verify(cert, copy)
    assert code == 1 and "the evaluated items changed" in out and "seen_test" in out


def test_a_signature_from_another_key_fails(certified: tuple[Path, Path], data_root: Path, tmp_path: Path) -> None:
    model, cert = certified
    other = init_keys(tmp_path / "other")
    copy = shutil.copytree(cert, tmp_path / "cert")
    doc = json.loads((copy / "certificate.json").read_text())
    (copy / "certificate.json").write_text(json.dumps(sign_document(doc, other.private)))
    code, out = _verify(copy, data_root)
    assert code == 1 and f"signed by key {other.key_id} which is not trusted" in out
    code, out = _verify(copy, data_root, "--key", str(other.public))
    assert code == 1 and "outside" in out and "--model" in out  # a copy elsewhere does not follow the signed model.dir
    code, out = _verify(copy, data_root, "--key", str(other.public), "--model", str(model))
    assert code == 0, out


def test_an_adversarial_model_is_refused(home: Path, data_root: Path) -> None:
    """Fitted to a community that chooses red-line options, the model is refused; the report is still written."""
    norms = write_jsonl(adversarial_norms(), home / "adversarial.jsonl")
    model = home / "adversarial-model"
    run("train", "--testbed", TESTBED, "--out", str(model), "--add-norms", str(norms), data=data_root)
    cert = home / "adversarial-cert"
    proc = run("certify", str(model), "--out", str(cert), "--n-boot", N_BOOT, data=data_root, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT CERTIFIED" in proc.stdout and (cert / "report.html").is_file()
    doc = json.loads((cert / "certificate.json").read_text())
    failed = {r["id"] for r in doc["verdict"]["rules"] if not r["passed"]}
    assert "no-learned-red-line-preference" in failed
    assert doc["bounds"]["redline_preference"]["max"][0] == "ADVERSARIAL:red-line-majority"
    assert doc["bounds"]["violations"]["n_violations"] == 0  # bounded answers still never choose a crossing


def test_pipeline_trains_certifies_and_registers(home: Path, data_root: Path) -> None:
    out = home / "run"
    proc = run("pipeline", "--testbed", TESTBED, "--out", str(out), "--n-boot", N_BOOT, data=data_root, check=False)
    assert proc.returncode == 0 and "NOT CERTIFIED" not in proc.stdout, proc.stdout + proc.stderr
    cert = out / "certificate" / "certificate.json"
    assert cert.is_file() and str(cert) in proc.stdout.replace("\n", "")
    entries = Registry().list()
    assert any(e.certificate == str(cert.resolve()) for e in entries)
    listed = json.loads(run("registry", "list", "--json").stdout)
    assert any(m["certificate"] == str(cert.resolve()) for m in listed["models"])


@pytest.fixture(scope="module")
def cross_fitted(home: Path, data_root: Path, signing_key: Path) -> Path:
    """A `stack` over every recorded run and the option-text prior, certified with `--cross-fit 3`."""
    model = home / "stack"
    run("train", "--testbed", TESTBED, "--policy", "stack", "--set", "backbones=recorded:*,option-text-prior", "--out", str(model), data=data_root)
    cert = home / "stack-cert"
    proc = run("certify", str(model), "--out", str(cert), "--n-boot", N_BOOT, "--cross-fit", "3", data=data_root, check=False)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    return cert


def test_cross_fitted_certificate_records_folds_and_layers_and_verifies(cross_fitted: Path, data_root: Path) -> None:
    """Issue 15, points 4 and 7: the recorded runs answer no train item, so the saved layer pools the
    prior alone; certified with --cross-fit, each fold of the test questions is answered by a layer over
    every recorded run too, and the certificate, report and card say so. verify re-runs all of it."""
    doc = json.loads((cross_fitted / "certificate.json").read_text())
    assert doc["config"]["cross_fit"] == 3 and doc["model"]["policy"] == "stack"
    assert doc["model"]["layer"]["backbones"] == ["option-text-prior"]
    cross = doc["evaluation"]["cross_fit"]
    questions = {r.question_id for r in read_records(cross_fitted / RECORDS_FILE) if r.set == "seen"}
    assert cross["folds"] == 3 and set(cross["fold_of"]) == questions and set(cross["fold_of"].values()) == {0, 1, 2}
    assert len(cross["layers"]) == 3
    for layer in cross["layers"]:
        assert any(b.startswith("recorded:") for b in layer["backbones"]) and "option-text-prior" in layer["backbones"]
        assert abs(sum(layer["weights"].values()) - 1) < 1e-6
    assert "Cross-fitted." in (cross_fitted / "report.html").read_text()
    assert "**Cross-fitted.**" in (cross_fitted / "MODEL_CARD.md").read_text()
    code, out = _verify(cross_fitted, data_root)
    assert code == 0 and "every number matches" in out, out


def test_cross_fit_refuses_a_model_that_is_not_a_layer(certified: tuple[Path, Path], data_root: Path, home: Path) -> None:
    model, _ = certified
    proc = run("certify", str(model), "--out", str(home / "never"), "--cross-fit", "3", data=data_root, check=False)
    assert proc.returncode == 2 and "stack" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (home / "never").exists()
