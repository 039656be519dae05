"""`verify` trusts nothing unsigned: a failed signature stops it before any path or field is used, a
signed certificate is read only inside its own directory and the model directory, and a malformed
one is one error line, never a traceback. Each case runs the real CLI on a small certificate: the
trimmed example, signed here with a key made for the test (no certify run needed)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from valuemulch.certify import init_keys, sign_document, trusted_keys, verify
from valuemulch.certify._signing import KeyPair
from valuemulch.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "fixtures" / "certificate_example.json"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return init_keys(tmp_path_factory.mktemp("keys") / "keys")


def _signed(keys: KeyPair) -> dict[str, Any]:
    return sign_document(copy.deepcopy(json.loads(EXAMPLE.read_text(encoding="utf-8"))), keys.private)


def _write(directory: Path, document: dict[str, Any] | str) -> Path:
    """``RUN/certificate/certificate.json``, as `pipeline` lays a run out."""
    path = directory / "certificate" / "certificate.json"
    path.parent.mkdir(parents=True)
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    return path


def _cli_verify(cert: Path, keys: KeyPair, *extra: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env["VALUEMULCH_DATA"] = str(cert.parent)  # an empty data root: nothing here may get as far as the data
    proc = subprocess.run(
        [sys.executable, "-m", "valuemulch.cli", "verify", str(cert), "--key", str(keys.public), *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def _one_error_line(code: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("model", "dir", "/etc"), ("verdict", "policy_file", ".."), ("model", "files", ["policy.json"])],
)
def test_an_edited_certificate_fails_its_signature_and_nothing_in_it_is_read(
    tmp_path: Path, keys: KeyPair, section: str, key: str, value: Any
) -> None:
    doc = _signed(keys)
    doc[section][key] = value
    code, out, err = _cli_verify(_write(tmp_path, doc), keys)
    assert code == 1, out + err
    assert "changed after it was signed" in out and "not read" in out
    assert "model files" not in out and "(added)" not in out and "passwd" not in out  # /etc was never listed
    assert "records:" not in out and "certificate_id" not in out  # no field of it was acted on


def test_a_signed_model_dir_outside_the_run_is_not_followed(tmp_path: Path, keys: KeyPair) -> None:
    doc = _signed(keys)
    doc["model"]["dir"] = "/etc"
    code, out, err = _cli_verify(_write(tmp_path, sign_document(doc, keys.private)), keys)
    assert code == 1, out + err
    assert "signed by trusted key" in out and "names /etc, outside" in out and "--model" in out
    assert "(added)" not in out and "passwd" not in out


def test_a_records_link_out_of_the_certificate_directory_is_not_read(tmp_path: Path, keys: KeyPair) -> None:
    cert = _write(tmp_path, _signed(keys))
    (cert.parent / "items.jsonl").symlink_to("/etc/passwd")
    code, out, err = _cli_verify(cert, keys, "--model", str(tmp_path))
    assert code == 1 and "leads outside" in out and "records: items.jsonl hashes" not in out, out + err


def test_a_model_link_out_of_the_model_directory_is_not_read(tmp_path: Path, keys: KeyPair) -> None:
    cert = _write(tmp_path, _signed(keys))
    model = tmp_path / "model"
    model.mkdir()
    (model / "policy.json").symlink_to("/etc/passwd")
    code, out, err = _cli_verify(cert, keys, "--model", str(model))
    assert code == 1 and "policy.json in" in out and "lead outside it; not read" in out, out + err
    assert "model files" not in out


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("verdict", "policy_file", "..", "verdict.policy_file: expected a plain file name such as policy.toml"),
        ("records", "file", "../../etc/passwd", "records.file: expected a plain file name"),
        ("model", "files", ["policy.json"], "model.files: expected an object, got list ['policy.json']"),
        ("model", "seed", "7", "model.seed: expected a valid integer, got str '7'"),
    ],
)
def test_a_signed_but_malformed_certificate_is_one_error_line(
    tmp_path: Path, keys: KeyPair, section: str, key: str, value: Any, needle: str
) -> None:
    doc = _signed(keys)
    doc[section][key] = value
    code, _, err = _cli_verify(_write(tmp_path, sign_document(doc, keys.private)), keys)
    line = _one_error_line(code, err)
    assert needle in line and "Fix:" in line, line


def test_a_signed_certificate_missing_a_field_is_one_error_line(tmp_path: Path, keys: KeyPair) -> None:
    doc = _signed(keys)
    del doc["verdict"]
    code, _, err = _cli_verify(_write(tmp_path, sign_document(doc, keys.private)), keys)
    line = _one_error_line(code, err)
    assert "verdict: expected a value, got none (the field is missing)" in line, line


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"schema": ', "expected JSON, got a syntax error at line 1"),
        ("[1, 2]", "expected a JSON object, got list [1, 2]"),
        ('{"a": 1, "a": 2}', "the key 'a' appears twice"),
        ('{"a": NaN}', "NaN is not a JSON number"),
    ],
)
def test_a_file_that_is_not_a_certificate_is_one_error_line(tmp_path: Path, keys: KeyPair, text: str, needle: str) -> None:
    code, _, err = _cli_verify(_write(tmp_path, text), keys)
    line = _one_error_line(code, err)
    assert needle in line and "Fix:" in line, line


def test_a_directory_in_place_of_the_certificate_is_one_error_line(tmp_path: Path, keys: KeyPair) -> None:
    code, _, err = _cli_verify(tmp_path, keys)
    assert "expected the certificate file, got a directory" in _one_error_line(code, err)


def test_signature_comes_before_the_schema(tmp_path: Path, keys: KeyPair) -> None:
    """Even the schema version is read only once a trusted key vouches for the document."""
    doc = _signed(keys)
    doc["schema"] = "valuemulch.certificate/1"
    result = verify(_write(tmp_path / "edited", doc), [], tmp_path)
    assert not result.ok and any("not read" in p for p in result.problems)
    path = _write(tmp_path / "signed", sign_document(doc, keys.private))
    with pytest.raises(ConfigError, match=r"unknown certificate schema 'valuemulch.certificate/1'"):
        verify(path, trusted_keys([keys.public]), tmp_path)
