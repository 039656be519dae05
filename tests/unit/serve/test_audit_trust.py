"""An audit log nobody can quietly rewrite (issue 16): canonical stored JSON, signed checkpoints, records
at risk after the last one, the operator's own head, and copies taken with SQLite's backup API."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from test_audit import KILL_CHILD
from typer.testing import CliRunner

from valuemulch.certify import init_keys, load_private_key
from valuemulch.cli import app
from valuemulch.serve import AuditLog, backup_audit, export_audit, request_hash, verify_chain
from valuemulch.serve._audit import record_hash
from valuemulch.serve._audit_checkpoint import CHECKPOINT_ENDPOINT

EVERY = 100


def _decision(i: int) -> dict[str, Any]:
    return {
        "request_hash": request_hash({"q": i}),
        "community": "us-32",
        "model_id": "us-32-knn-1234abcd",
        "certificate_id": "1234abcd" * 8,
        "certified": True,
        "endpoint": "/v1/decide",
        "bounds": {"masked": [], "refused": False},
        "answer": {"question": f"Question {i}?", "options": ["Yes", "No"], "distribution": [0.25, 0.75]},
    }


@pytest.fixture
def key(tmp_path: Path) -> tuple[Ed25519PrivateKey, Ed25519PublicKey, Path]:
    pair = init_keys(tmp_path / "keys")
    private = load_private_key(pair.private)
    return private, private.public_key(), pair.public


def _signed_log(path: Path, key: Ed25519PrivateKey, n: int, *, every: int = EVERY) -> None:
    """``n`` decisions by a service holding ``key``, closed cleanly (so it ends on a checkpoint)."""
    with AuditLog(path, signing_key=key, checkpoint_every=every) as log:
        for i in range(n):
            log.append(**_decision(i))


def _sql(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    with con:
        rows = con.execute(sql, params).fetchall()
    con.close()
    return rows


def _checkpoints(path: Path) -> list[int]:
    return [r[0] for r in _sql(path, "SELECT seq FROM decisions WHERE endpoint = ? ORDER BY seq", (CHECKPOINT_ENDPOINT,))]


def test_duplicate_key_forgery_of_an_answer_is_caught(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 5)
    [(text,)] = _sql(path, "SELECT answer FROM decisions WHERE seq = 3")
    forged = '{"distribution":[0.99,0.01],"question":"FORGED",' + text[1:]  # the original keys come last
    _sql(path, "UPDATE decisions SET answer = ? WHERE seq = 3", (forged,))
    # SQL readers now see the forged values, while Python's json.loads keeps the last ones (the hash still matches).
    assert _sql(path, "SELECT json_extract(answer, '$.question') FROM decisions WHERE seq = 3") == [("FORGED",)]
    assert json.loads(forged) == json.loads(text)
    report = verify_chain(path, [key[1]])
    assert not report.ok
    assert report.problems == [
        "seq 3: answer has the key 'distribution' twice (SQL readers see the first value, Python the last) (record edited?)"
    ]


def test_a_stored_text_that_is_not_canonical_is_caught(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 5)
    [(text,)] = _sql(path, "SELECT bounds FROM decisions WHERE seq = 2")
    reordered = json.dumps(dict(reversed(list(json.loads(text).items()))), indent=1)  # same content, other bytes
    _sql(path, "UPDATE decisions SET bounds = ? WHERE seq = 2", (reordered,))
    assert verify_chain(path, [key[1]]).problems == [
        "seq 2: bounds is not stored as the canonical JSON of its content (record edited?)"
    ]


def test_a_clean_log_is_signed_to_its_end(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 250)
    # a checkpoint after every 100 decisions and one at close: seqs 101, 202, 253
    assert _checkpoints(path) == [101, 202, 253]
    report = verify_chain(path, [key[1]])
    assert report.ok and report.findings == [] and report.at_risk == 0, report
    assert (report.n_records, report.n_checkpoints, report.last_checkpoint, report.signed_through) == (253, 3, 253, 253)
    # checked against a key the verifier does not trust, the checkpoints prove nothing: broken
    untrusted = verify_chain(path, [Ed25519PrivateKey.generate().public_key()])
    assert not untrusted.ok and "not trusted" in untrusted.problems[0]


@pytest.mark.parametrize("cut", [1, 500, "all"])
def test_truncation_past_a_checkpoint_reports_the_records_at_risk(tmp_path: Path, key: Any, cut: int | str) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 1200)
    last = _sql(path, "SELECT MAX(seq) FROM decisions")[0][0]
    assert verify_chain(path, [key[1]]).at_risk == 0
    head_before = verify_chain(path, [key[1]]).head
    keep = 0 if cut == "all" else last - int(cut)
    _sql(path, "DELETE FROM decisions WHERE seq > ?", (keep,))
    report = verify_chain(path, [key[1]])
    assert report.ok  # a cut chain is still a valid chain ...
    left = [seq for seq in _checkpoints(path) if seq <= keep]
    expected_at_risk = keep - (left[-1] if left else 0)
    assert report.at_risk == expected_at_risk  # ... but not a signed one
    if cut == "all":
        assert report.n_records == 0 and "the log is empty" in report.findings[0]
    else:
        assert expected_at_risk > 0 and f"{expected_at_risk} records at risk" in report.findings[0]
        assert f"unverifiable beyond seq {left[-1]}" in report.findings[0]
    # the head the operator kept elsewhere tells the cut apart from a log that never grew
    kept = verify_chain(path, [key[1]], expect_head=head_before)
    assert not kept.ok and "no record's hash" in kept.problems[-1]


def test_deleted_checkpoints_and_records_before_a_checkpoint_are_broken(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 250)
    _sql(path, "DELETE FROM decisions WHERE endpoint = ?", (CHECKPOINT_ENDPOINT,))
    report = verify_chain(path, [key[1]])
    assert not report.ok and "gap: seq 102 follows seq 100 (record deleted?)" in report.problems
    other = tmp_path / "other.sqlite"
    _signed_log(other, key[0], 250)
    _sql(other, "DELETE FROM decisions WHERE seq <= 50")
    assert verify_chain(other, [key[1]]).problems[0] == "gap: the first record is seq 51, not 1 (record deleted?)"


def test_a_validly_chained_append_after_the_last_checkpoint_is_reported(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 150)
    signed = _checkpoints(path)[-1]
    with AuditLog(path) as forger:  # the chain has no key: anyone can extend it
        forger.append(**{**_decision(999), "community": "FORGED"})
    report = verify_chain(path, [key[1]])
    assert report.ok and report.at_risk == 1
    assert report.findings == [
        f"1 record at risk: seq {signed + 1}-{signed + 1} follow the last signed checkpoint (seq {signed}) and no "
        f"signature covers them, so the log is unverifiable beyond seq {signed}: records cut from its end, rewritten "
        f"or appended after seq {signed} leave no trace here (keep the head elsewhere and pass --expect-head)"
    ]
    # more unsigned records than the service ever writes between checkpoints: not the service's own
    with AuditLog(path) as forger:
        for i in range(EVERY):
            forger.append(**_decision(i))
    findings = verify_chain(path, [key[1]]).findings
    assert any(f"more than the {EVERY} the service writes between checkpoints" in f for f in findings), findings


def test_history_rewritten_under_a_checkpoint_breaks_its_signature(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 150)
    [checkpoint] = _sql(path, "SELECT * FROM decisions WHERE seq = 101")
    # rewrite seq 50-100 with a valid chain, then put the old checkpoint back on it, rehashed to link
    _sql(path, "DELETE FROM decisions WHERE seq >= 50")
    with AuditLog(path) as forger:
        for i in range(51):
            forger.append(**{**_decision(i), "community": "FORGED"})
    [(prev,)] = _sql(path, "SELECT hash FROM decisions WHERE seq = 100")
    names = [r[1] for r in _sql(path, "PRAGMA table_info(decisions)")]
    row = dict(zip(names, checkpoint, strict=True))
    fields = {**row, "certified": False, "bounds": {}, "answer": json.loads(row["answer"])}
    row.update(prev_hash=prev, hash=record_hash(prev, fields))
    _sql(path, f"INSERT INTO decisions VALUES ({', '.join('?' * len(names))})", tuple(row.values()))
    report = verify_chain(path, [key[1]])
    assert not report.ok and report.problems == ["seq 101: checkpoint's head is not the hash of the record before it"]


def test_expect_head(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:  # no key: nothing signed, only the operator's head vouches
        for i in range(30):
            log.append(**_decision(i))
    head = verify_chain(path).head
    assert verify_chain(path).at_risk == 30
    matched = verify_chain(path, expect_head=head.upper())
    assert matched.ok and matched.at_risk == 0 and matched.signed_through == 30
    with AuditLog(path) as log:
        log.append(**_decision(31))
    grown = verify_chain(path, expect_head=head)
    assert grown.ok and grown.at_risk == 1 and "1 record appended since" in grown.findings[-1]
    _sql(path, "DELETE FROM decisions WHERE seq >= 30")
    cut = verify_chain(path, expect_head=head)
    assert not cut.ok and cut.problems == [
        f"the expected head {head} is no record's hash: records were cut from the end or the log was rewritten "
        f"since it was taken (the head is now {cut.head}, seq 29)"
    ]


def test_the_verify_command(tmp_path: Path, key: Any) -> None:
    path = tmp_path / "audit.sqlite"
    _signed_log(path, key[0], 20, every=7)
    runner = CliRunner()
    args = ["audit", "verify", "--audit", str(path), "--key", str(key[2])]
    ok = runner.invoke(app, args)
    head = verify_chain(path, [key[1]]).head
    assert ok.exit_code == 0 and "23 records, chain intact" in ok.output and f"head: {head} (seq 23" in ok.output, ok.output
    assert "records at risk: 0" in ok.output
    _sql(path, "DELETE FROM decisions WHERE seq = 23")  # the shutdown checkpoint
    cut = runner.invoke(app, args)
    assert cut.exit_code == 0 and "records at risk: 6" in cut.output, cut.output  # seq 17-22, after the checkpoint at 16
    assert "finding: 6 records at risk: seq 17-22" in cut.output
    assert runner.invoke(app, [*args, "--strict"]).exit_code == 1
    mismatch = runner.invoke(app, [*args, "--expect-head", head])
    assert mismatch.exit_code == 1 and "chain BROKEN" in mismatch.output and "no record's hash" in mismatch.output


def test_a_copy_of_the_file_alone_loses_records_a_backup_keeps(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:  # closed: SQLite moves these into the main file
        for i in range(3):
            log.append(**_decision(i))
    with AuditLog(path) as log:
        for i in range(3, 50):
            log.append(**_decision(i))
        assert Path(f"{path}-wal").stat().st_size > 0  # the new records are in the WAL, not yet in the main file
        plain = tmp_path / "plain.sqlite"
        shutil.copyfile(path, plain)
        lost = verify_chain(plain)
        assert lost.ok and lost.n_records == 3  # 47 acknowledged records gone, and the copy still verifies
        copied = backup_audit(path, tmp_path / "backup.sqlite")
        exported = export_audit(path, tmp_path / "export.jsonl")
    assert (copied.n_records, exported.n_records) == (50, 50) and copied.head == exported.head == verify_chain(path).head
    assert not Path(f"{tmp_path / 'backup.sqlite'}-wal").exists()  # one self-contained file
    assert verify_chain(tmp_path / "backup.sqlite").n_records == 50
    lines = (tmp_path / "export.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, 51)) and json.loads(lines[-1])["hash"] == copied.head
    with pytest.raises(Exception, match="exists"):
        backup_audit(path, tmp_path / "backup.sqlite")


WRITER = KILL_CHILD  # four threads appending, each record printed once it is committed


def test_backup_of_a_live_log_under_write_load_keeps_every_acknowledged_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    AuditLog(path).close()
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked: list[int] = []
    try:
        for line in child.stdout:
            acked.append(int(line))
            if len(acked) >= 200:
                break
        out = tmp_path / "copy.sqlite"
        result = CliRunner().invoke(app, ["audit", "backup", "--audit", str(path), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert child.poll() is None  # the writer was still writing throughout
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    report = verify_chain(out)
    assert report.ok and report.n_records >= len(acked), report
    with AuditLog(out) as copy:
        assert [seq for seq in acked if copy.get(seq) is None] == []
