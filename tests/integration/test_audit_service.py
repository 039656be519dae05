"""A real `valuemulch serve` (uvicorn on 127.0.0.1, the tiny model): a clean shutdown ends the audit log on
a checkpoint signed with the service's key, and the start warns about files other users can read."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from serve_helpers import start_server

from tiny_serve import register, tiny_home
from valuemulch.certify import trusted_keys
from valuemulch.serve import AuditLog, verify_chain


def test_a_served_log_ends_signed_and_loose_modes_are_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tiny_home(tmp_path / "home")
    register(home)
    AuditLog(home.audit).close()
    home.audit.chmod(0o644)  # as the code before issue 16 created it
    monkeypatch.setenv("VALUEMULCH_REGISTRY", str(home.registry))
    monkeypatch.setenv("VALUEMULCH_KEYS", str(home.public_key.parent))  # the key that signed the certificate
    srv = start_server(["--audit", str(home.audit)], tmp_path / "logs", "audit")
    try:
        with httpx.Client(base_url=srv.base, timeout=60.0) as client:
            for i in range(5):
                body = {"community": "Britain", "question": f"Should the town keep market {i}?", "options": ["Yes", "No"]}
                r = client.post("/v1/decide", json=body)
                assert r.status_code == 200, r.text
                assert r.json()["decision_id"] == i + 1
            unsigned = verify_chain(home.audit, trusted_keys([home.public_key]))
            assert unsigned.ok and unsigned.at_risk == 5  # live: nothing signed yet (fewer than 1000 records)
    finally:
        srv.stop()  # SIGTERM: uvicorn runs the app's shutdown
    assert srv.proc.returncode in (0, -signal.SIGTERM), srv.stderr()  # uvicorn re-raises the signal once shut down
    assert f"{home.audit} is mode 0644, expected 0600" in srv.stderr(), srv.stderr()
    report = verify_chain(home.audit, trusted_keys([home.public_key]))
    assert report.ok and report.findings == [], report
    assert (report.n_records, report.last_checkpoint, report.at_risk) == (6, 6, 0)
