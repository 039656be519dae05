"""The audit log: appends, the hash chain across threads and processes, tamper detection, and a real kill -9."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from valuemulch.errors import ConfigError, ValuemulchError
from valuemulch.serve._audit import AUDIT_ENV, GENESIS, AuditLog, record_hash, request_hash
from valuemulch.serve._audit_verify import verify_chain
from valuemulch.settings import Settings


def _decision(i: int = 0, **over: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "request_hash": request_hash({"question": f"q{i}", "options": ["a", "b"]}),
        "community": "us-32",
        "model_id": "us-32-knn-1234abcd",
        "certificate_id": "1234abcd" * 8,
        "certified": True,
        "endpoint": "/v1/decide",
        "bounds": {"tier": 1, "redlines": [], "note": "Gemeinde — ok"},
        "answer": {"distribution": [0.25, 0.75], "i": i},
    }
    args.update(over)
    return args


def _fill(path: Path, n: int) -> None:
    with AuditLog(path) as log:
        for i in range(n):
            log.append(**_decision(i))


def test_default_path_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(AUDIT_ENV, str(tmp_path / "a.sqlite"))
    assert Settings().audit == tmp_path / "a.sqlite"
    with AuditLog() as log:
        assert log.path == tmp_path / "a.sqlite"
    monkeypatch.delenv(AUDIT_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().audit == tmp_path / "xdg" / "valuemulch" / "audit.sqlite"


def test_hashes_are_the_documented_ones() -> None:
    # `valuemulch audit verify` (another process, maybe another version) relies on these exact bytes.
    assert request_hash(b'{"b":1, "a":2}') == hashlib.sha256(b'{"b":1, "a":2}').hexdigest()
    assert request_hash({"b": 1, "a": "é"}) == hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert request_hash({"a": "é", "b": 1}) == request_hash({"b": 1, "a": "é"})
    fields = {
        "seq": 1,
        "ts": "t",
        "request_hash": "r",
        "community": "c",
        "model_id": "m",
        "certificate_id": None,
        "certified": False,
        "endpoint": "/e",
        "bounds": {},
        "answer": {"p": [0.5]},
        "hash": "ignored",
    }
    text = '{"answer":{"p":[0.5]},"bounds":{},"certificate_id":null,"certified":false,"community":"c","endpoint":"/e","model_id":"m","request_hash":"r","seq":1,"ts":"t"}'
    assert record_hash(GENESIS, fields) == hashlib.sha256((GENESIS + text).encode()).hexdigest()
    with pytest.raises(ConfigError, match="answer"):
        record_hash(GENESIS, {k: v for k, v in fields.items() if k != "answer"})


def test_append_read_back_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.sqlite"
    with AuditLog(path) as log:
        assert log.count() == 0 and log.last() is None and log.get(1) is None
        records = [log.append(**_decision(i)) for i in range(5)]
        dup = log.append(**_decision(2, certified=False, certificate_id=None))
        assert [r.seq for r in records] == [1, 2, 3, 4, 5] and dup.seq == 6
        assert records[0].prev_hash == GENESIS
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
        assert all(r.hash == record_hash(r.prev_hash, r.to_dict()) for r in records)
        assert records[0].ts.endswith("+00:00") and "." in records[0].ts
        assert log.count() == 6 and log.last() == dup
        assert log.get(3) == records[2] and log.get(7) is None
        assert log.find(records[2].request_hash) == [records[2], dup]
        assert log.find("nope") == []
        assert list(log.records()) == [*records, dup]
        assert [r.seq for r in log.records(start=4)] == [4, 5, 6]
        assert dup.certified is False and dup.certificate_id is None and log.get(6) == dup
    assert (path.parent / "audit.sqlite").exists()
    report = verify_chain(path)
    assert report.ok and report.n_records == 6 and report.problems == []


def test_records_streams_across_pages(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 1203)  # more than two pages of 500
    with AuditLog(path) as log:
        assert [r.seq for r in log.records()] == list(range(1, 1204))
        assert [r.seq for r in log.records(start=1000)] == list(range(1000, 1204))


def test_threads_append_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    got: list[int] = []
    errors: list[BaseException] = []
    with AuditLog(path) as log:
        start = threading.Barrier(8)

        def work(t: int) -> None:
            try:
                start.wait()
                for i in range(50):
                    got.append(log.append(**_decision(t * 1000 + i)).seq)
            except BaseException as err:  # surfaced below: a thread's exception would otherwise vanish
                errors.append(err)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(got) == list(range(1, 401))
        assert log.count() == 400
    report = verify_chain(path)
    assert report.ok and report.n_records == 400, report.problems


def test_two_writers_on_one_file_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as a, AuditLog(path) as b:
        seqs = [(a if i % 2 else b).append(**_decision(i)).seq for i in range(40)]
        assert seqs == list(range(1, 41))
        assert a.last() == b.last() and a.count() == b.count() == 40
    assert verify_chain(path).ok


def test_two_processes_concurrently_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    script = (
        "import sys\n"
        "from valuemulch.serve._audit import AuditLog\n"
        "log = AuditLog(sys.argv[1])\n"
        "for i in range(100):\n"
        "    log.append(request_hash='r', community='c', model_id='m', certificate_id=None, certified=False,"
        " endpoint='/e', bounds={}, answer={'who': sys.argv[2], 'i': i})\n"
    )
    AuditLog(path).close()  # create it first, so that the two do not race to set WAL mode
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(k)]) for k in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    report = verify_chain(path)
    assert report.ok and report.n_records == 200, report.problems


def _tamper(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute(sql, params)
    con.close()


def test_edited_answer_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 30)
    _tamper(path, "UPDATE decisions SET answer = ? WHERE seq = 17", (json.dumps({"distribution": [0.9, 0.1], "i": 16}),))
    report = verify_chain(path)
    assert not report.ok and report.n_records == 30
    assert report.problems == ["seq 17: hash does not match its content (record edited?)"]


def test_edited_then_rehashed_record_breaks_the_next_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 30)
    with AuditLog(path) as log:
        old = log.get(17)
    assert old is not None
    fields = {**old.to_dict(), "certified": False}
    _tamper(path, "UPDATE decisions SET certified = 0, hash = ? WHERE seq = 17", (record_hash(old.prev_hash, fields),))
    assert verify_chain(path).problems == ["seq 18: prev_hash does not link to seq 17"]


def test_deleted_record_is_a_gap(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 30)
    _tamper(path, "DELETE FROM decisions WHERE seq = 19")
    report = verify_chain(path)
    assert not report.ok and report.n_records == 29
    assert report.problems == ["gap: seq 20 follows seq 18 (record deleted?)"]
    _tamper(path, "DELETE FROM decisions WHERE seq = 1")
    assert verify_chain(path).problems[0] == "gap: the first record is seq 2, not 1 (record deleted?)"


def test_changed_prev_hash_is_a_broken_link(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 30)
    _tamper(path, "UPDATE decisions SET prev_hash = ? WHERE seq = 12", ("f" * 64,))
    _tamper(path, "UPDATE decisions SET prev_hash = ? WHERE seq = 1", ("e" * 64,))
    problems = verify_chain(path).problems
    assert "seq 12: prev_hash does not link to seq 11" in problems
    assert "seq 1: prev_hash does not link to the genesis hash" in problems


def test_swapped_records_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 30)
    con = sqlite3.connect(path)
    cols = "ts, request_hash, community, model_id, certificate_id, certified, endpoint, bounds, answer, prev_hash, hash"
    with con:
        a = con.execute(f"SELECT {cols} FROM decisions WHERE seq = 8").fetchone()
        b = con.execute(f"SELECT {cols} FROM decisions WHERE seq = 9").fetchone()
        assign = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
        con.execute("UPDATE decisions SET hash = 'x' WHERE seq = 8")  # `hash` is UNIQUE: free it first
        con.execute(f"UPDATE decisions SET {assign} WHERE seq = 9", a)
        con.execute(f"UPDATE decisions SET {assign} WHERE seq = 8", b)
    con.close()
    problems = verify_chain(path).problems
    for seq in (8, 9):
        assert f"seq {seq}: hash does not match its content (record edited?)" in problems
    assert "seq 8: prev_hash does not link to seq 7" in problems and "seq 10: prev_hash does not link to seq 9" in problems


def test_corrupt_columns_are_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 5)
    _tamper(path, "UPDATE decisions SET bounds = '{not json' WHERE seq = 2")
    _tamper(path, "UPDATE decisions SET certified = 7 WHERE seq = 4")
    assert verify_chain(path).problems == [
        "seq 2: bounds is not valid JSON (record edited?)",
        "seq 4: certified is 7, not 0 or 1 (record edited?)",
    ]


def test_problems_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 40)
    _tamper(path, "UPDATE decisions SET answer = '{}' WHERE seq > 10")
    report = verify_chain(path)
    assert not report.ok and len(report.problems) == 21
    assert report.problems[0].startswith("seq 11:") and report.problems[-1] == "... and 10 more"


def test_verify_missing_path_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "audit.sqlite"
    with pytest.raises(ConfigError, match="No audit log at"):
        verify_chain(path)
    assert not (tmp_path / "nowhere").exists()
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()  # an SQLite file, but not an audit log
    with pytest.raises(ConfigError, match="decisions"):
        verify_chain(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError):
        verify_chain(garbage)
    with pytest.raises(ConfigError, match="cannot open as an audit log"):
        AuditLog(garbage)


def test_bad_values_raise_and_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:
        log.append(**_decision(0))
        with pytest.raises(ValuemulchError, match=r"answer\['distribution'\]\[1\].*finite") as err:
            log.append(**_decision(1, answer={"distribution": [0.5, math.nan]}))
        assert "nan" in str(err.value)
        with pytest.raises(ValuemulchError, match="finite"):
            log.append(**_decision(1, bounds={"score": math.inf}))
        with pytest.raises(ValuemulchError, match="JSON values"):
            log.append(**_decision(1, answer={"x": object()}))
        with pytest.raises(ValuemulchError, match="community"):
            log.append(**_decision(1, community=32))
        with pytest.raises(ValuemulchError, match="certified"):
            log.append(**_decision(1, certified="no"))
        assert log.count() == 1
        assert log.append(**_decision(2)).seq == 2  # the failures left no transaction or lock behind
    assert verify_chain(path).ok


def test_failed_insert_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    with AuditLog(path) as log:
        log.append(**_decision(0))
        _tamper(path, "CREATE TRIGGER refuse BEFORE INSERT ON decisions BEGIN SELECT RAISE(ABORT, 'refused'); END")
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            log.append(**_decision(1))
        assert not log._con.in_transaction
        _tamper(path, "DROP TRIGGER refuse")
        assert log.append(**_decision(2)).seq == 2
    assert verify_chain(path).ok


def test_numpy_values_are_stored_as_plain_json(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        rec = log.append(**_decision(0, answer={"p": np.asarray([0.1, 0.9], dtype=np.float32), "k": np.int64(3)}))
        assert rec == log.get(1) and rec.answer["k"] == 3 and len(rec.answer["p"]) == 2
        with pytest.raises(ValuemulchError, match="finite"):
            log.append(**_decision(1, answer={"p": np.asarray([0.1, np.nan])}))
    assert verify_chain(tmp_path / "audit.sqlite").ok


KILL_CHILD = """
import sys, threading
from valuemulch.serve._audit import AuditLog

log = AuditLog(sys.argv[1])
out = threading.Lock()

def work(t):
    i = 0
    while True:
        rec = log.append(request_hash=f"r{t}-{i}", community="c", model_id="m", certificate_id=None,
                         certified=True, endpoint="/v1/decide", bounds={"t": t}, answer={"i": i, "pad": "x" * 2000})
        with out:  # acknowledged: the record is committed
            sys.stdout.write(f"{rec.seq}\\n")
            sys.stdout.flush()
        i += 1

for t in range(4):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_kill_9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    _fill(path, 3)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    acked: list[int] = []
    try:
        for line in child.stdout:
            acked.append(int(line))
            if len(acked) >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and len(acked) == 300
    assert Path(f"{path}-wal").exists()  # killed with the log open: the next reader has to recover the WAL
    # The verifier, read-only and first to open the file after the kill, recovers the WAL itself.
    report = verify_chain(path)
    assert report.ok, report.problems
    assert report.n_records >= 3 + len(acked)
    with AuditLog(path) as log:
        assert all(log.get(seq) is not None for seq in acked)
        assert log.count() == report.n_records
        log.append(**_decision(0))  # and the chain goes on after the crash
    assert verify_chain(path).ok
