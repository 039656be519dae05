"""Issue 16, point 8: the service under faults, on a real uvicorn on 127.0.0.1, each bounded in time.

- a full audit log (a size cap, which SQLite answers exactly as it answers a full disk: SQLITE_FULL);
- the audit log locked by another process;
- slow clients (slowloris) against the worker pool;
- a request over budget, against its deadline.

In each: the service answers with a clear status instead of failing, every decision it acknowledged
is in the log, and nothing it did not send is logged.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import uvicorn_thread

from tiny_serve import TinyHome, register, serve_app, tiny_home
from valuemulch.serve import AuditLog

LOCK_HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
print("released", flush=True)
"""


def _home(tmp_path: Path) -> TinyHome:
    home = tiny_home(tmp_path)
    register(home)
    return home


def _decide(client: httpx.Client, k: int) -> httpx.Response:
    body = {"community": "Britain", "question": f"Fault {k}: should the pool open at six?", "options": ["Yes", "No", "Not sure"]}
    return client.post("/v1/decide", json=body)


def _logged(home: TinyHome) -> dict[int, dict[str, Any]]:
    with AuditLog(home.audit) as log:
        return {r.seq: r.to_dict() for r in log.records() if r.endpoint == "/v1/decide"}


@pytest.fixture
def full(tmp_path: Path) -> Iterator[tuple[TinyHome, str]]:
    """A service whose audit log is capped at 64 KiB (a few hundred records)."""
    home = _home(tmp_path)
    app = serve_app(home, serve_settings={"audit_max_bytes": 64 * 1024})
    with uvicorn_thread(app) as base:
        yield home, base


def test_a_full_audit_log_is_503_and_loses_no_acknowledged_record(full: tuple[TinyHome, str]) -> None:
    home, base = full
    acked: dict[int, str] = {}
    statuses = []
    with httpx.Client(base_url=base, timeout=30.0) as c:
        for k in range(2_000):
            r = _decide(c, k)
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked[r.json()["decision_id"]] = f"Fault {k}: should the pool open at six?"
            else:
                error = r.json()["error"]
                assert r.status_code == 503 and error["code"] == "audit_unavailable", r.text
                assert "full" in error["message"] and r.headers["retry-after"].isdigit()
                if statuses[-3:] == [503, 503, 503]:
                    break
        assert statuses[-1] == 503, "the capped log never filled; the test means little"
        assert c.get("/v1/health").status_code == 200  # full, but alive
    logged = _logged(home)
    assert len(acked) > 20 and set(acked) <= set(logged)
    for seq, question in acked.items():
        assert logged[seq]["answer"]["question"] == question
    assert len(logged) == len(acked)  # and nothing that was refused


def test_a_log_locked_by_another_process_is_503_then_recovers(tmp_path: Path) -> None:
    home = _home(tmp_path)
    app = serve_app(home, serve_settings={"audit_busy_timeout": 0.5})
    with uvicorn_thread(app) as base, httpx.Client(base_url=base, timeout=30.0) as c:
        assert _decide(c, 0).status_code == 200
        holder = subprocess.Popen(
            [sys.executable, "-c", LOCK_HOLDER, str(home.audit), "4"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            started = time.monotonic()
            r = _decide(c, 1)
            assert r.status_code == 503 and r.json()["error"]["code"] == "audit_unavailable", r.text
            assert "locked" in r.json()["error"]["message"]
            assert time.monotonic() - started < 10  # the busy timeout, not forever
            assert holder.stdout.readline().strip() == "released"
        finally:
            holder.wait(timeout=30)
        r = _decide(c, 2)
        assert r.status_code == 200, r.text
        acked = {1, r.json()["decision_id"]}
    logged = _logged(home)
    assert acked <= set(logged) and len(logged) == 2  # the refused decision was not logged


def _trickle(base: str, n: int) -> list[socket.socket]:
    """``n`` connections that send headers and the first byte of a 200-byte body, then nothing."""
    host, port = base.removeprefix("http://").split(":")
    out = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{")
        out.append(s)
    return out


def test_slow_clients_do_not_starve_the_others_and_are_cut_off(tmp_path: Path) -> None:
    """100 connections trickling their bodies hold no worker: ordinary requests are answered meanwhile,
    and each slow one gets 408 once its body is late."""
    home = _home(tmp_path)
    app = serve_app(home, body_timeout_s=2.0, workers=4)
    with uvicorn_thread(app) as base, httpx.Client(base_url=base, timeout=10.0) as c:
        slow = _trickle(base, 100)
        try:
            started = time.monotonic()
            for k in range(10):
                assert _decide(c, k).status_code == 200
            assert time.monotonic() - started < 10
            time.sleep(2.5)
            first = slow[0]
            first.settimeout(5)
            reply = first.recv(4096).decode()
            assert reply.startswith("HTTP/1.1 408") and "body_timeout" in reply, reply[:300]
        finally:
            for s in slow:
                s.close()
    assert len(_logged(home)) == 10


def test_an_over_budget_request_is_stopped_by_its_deadline(tmp_path: Path) -> None:
    home = _home(tmp_path)
    app = serve_app(home, deadline_s=1.0, max_new_questions=64, max_total_chars=10**7)
    heavy = {
        "community": "Britain",
        "questions": [
            {"question": f"Heavy {k}: " + "should the council fund it? " * 100, "options": [f"Choice {j} " * 20 for j in range(26)]}
            for k in range(16)
        ],
    }
    with uvicorn_thread(app) as base, httpx.Client(base_url=base, timeout=120.0) as c:
        before = c.get("/v1/health").json()["audit_records"]
        started = time.monotonic()
        r = c.post("/v1/distribution", content=json.dumps(heavy).encode(), headers={"Content-Type": "application/json"})
        took = time.monotonic() - started
        assert r.status_code == 503 and r.json()["error"]["code"] == "over_deadline", r.text[:300]
        assert took < 1.0 + 30, took  # the deadline plus at most one question's work, with room for a slow machine
        assert c.get("/v1/health").json()["audit_records"] == before
