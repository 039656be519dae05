"""Least privilege on disk (issue 16): the audit log, the registry, the caches and written data are created
mode 600 in directories mode 700 whatever the umask, and the service warns at start about looser modes."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tiny_serve import ready_client, register, serve_app, tiny_home
from valuemulch.serve import AuditLog, Registry, backup_audit, export_audit, request_hash

DECISION = {
    "request_hash": request_hash(b"{}"),
    "community": "c",
    "model_id": "m",
    "certificate_id": None,
    "certified": False,
    "endpoint": "/v1/decide",
    "bounds": {},
    "answer": {"question": "Private?"},
}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sqlite_modes(path: Path) -> dict[str, int]:
    """The modes of a database and the -wal and -shm files SQLite made for it (all must exist)."""
    return {p.name: _mode(p) for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))}


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask 022, under which plain creation gives 644 files and 755 directories."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_the_audit_log_and_its_copies_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    path = tmp_path / "new" / "dir" / "audit.sqlite"
    with AuditLog(path) as log:
        log.append(**DECISION)
        assert set(_sqlite_modes(path).values()) == {0o600}, _sqlite_modes(path)
        assert (_mode(tmp_path / "new"), _mode(tmp_path / "new" / "dir")) == (0o700, 0o700)
        backup_audit(path, tmp_path / "copies" / "audit-copy.sqlite")
        export_audit(path, tmp_path / "copies" / "audit.jsonl")
    assert _mode(tmp_path / "copies") == 0o700
    assert (_mode(tmp_path / "copies" / "audit-copy.sqlite"), _mode(tmp_path / "copies" / "audit.jsonl")) == (0o600, 0o600)


def test_the_registry_is_owner_only(tmp_path: Path, loose_umask: None) -> None:
    home = tiny_home(tmp_path / "home")
    registry = Registry(tmp_path / "share" / "valuemulch" / "registry.sqlite")
    registry.register(home.certificate, trusted=[home.public_key])
    assert _mode(tmp_path / "share") == 0o700 and _mode(tmp_path / "share" / "valuemulch") == 0o700
    assert _mode(registry.path) == 0o600
    assert all(_mode(p) == 0o600 for p in registry.path.parent.iterdir()), {
        p.name: _mode(p) for p in registry.path.parent.iterdir()
    }


def test_the_embedding_cache_is_owner_only(tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from valuemulch.backbones import EmbeddingCache, MiniLMEncoder

    cache = tmp_path / "cache" / "valuemulch"
    monkeypatch.setenv("VALUEMULCH_CACHE", str(cache))
    embeddings = EmbeddingCache(MiniLMEncoder())  # at its default place, in the user cache
    assert embeddings.embed(["Is it private?"]).shape == (1, 384)
    assert _mode(tmp_path / "cache") == 0o700 and _mode(cache) == 0o700
    assert {p.name: _mode(p) for p in cache.iterdir()} == {"embeddings.sqlite": 0o600}


def test_the_service_log_and_registry_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    home = tiny_home(tmp_path / "home")
    register(home)
    with ready_client(serve_app(home)) as client:
        r = client.post("/v1/decide", json={"community": "Britain", "question": "Is it private?", "options": ["Yes", "No"]})
        assert r.status_code == 200, r.text
        assert set(_sqlite_modes(home.audit).values()) == {0o600}, _sqlite_modes(home.audit)
        assert _mode(home.registry) == 0o600


def test_the_guard_cache_and_written_data_are_owner_only(tmp_path: Path, loose_umask: None) -> None:
    from valuemulch.bounds import Guard
    from valuemulch.data import write_jsonl

    Guard("http://127.0.0.1:1/v1", "m", cache=tmp_path / "g" / "guard.sqlite")  # the shared response cache
    assert _mode(tmp_path / "g") == 0o700 and set(_sqlite_modes(tmp_path / "g" / "guard.sqlite").values()) == {0o600}
    out = write_jsonl([], tmp_path / "collected" / "norms.jsonl")
    assert _mode(tmp_path / "collected") == 0o700 and _mode(out) == 0o600


def test_serve_warns_at_start_about_looser_modes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tiny_home(tmp_path)
    register(home)
    AuditLog(home.audit).close()
    home.audit.chmod(0o644)
    home.registry.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="valuemulch.serve"):
        app = serve_app(home)
    messages = [r.getMessage() for r in caplog.records if r.name == "valuemulch.serve"]
    assert any(f"{home.audit} is mode 0644, expected 0600" in m for m in messages), messages
    assert any(f"{home.registry} is mode 0640, expected 0600" in m for m in messages), messages
    with TestClient(app):
        pass  # started and stopped: the warning does not stop the service
    home.audit.chmod(0o600)
    home.registry.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="valuemulch.serve"):
        serve_app(home)
    assert not [r for r in caplog.records if str(home.audit) in r.getMessage() or str(home.registry) in r.getMessage()]
